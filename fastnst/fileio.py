"""File output that never leaves partial files and never replaces existing ones unasked.

Torch-free; used by every command that writes (images, weights, ONNX models).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastnst.errors import InputError, OutputExistsError


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check that ``path`` can be written before long work starts; returns it as a Path.

    Raises OutputExistsError when it exists and ``overwrite`` is false, InputError when it is a
    folder or its folder is missing or not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite to replace it or choose another name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder '{parent}' is not writable; choose another output path")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = check_output(path, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and path.exists():  # appeared while we worked
            raise OutputExistsError(f"output '{path}' appeared while writing; pass --overwrite to replace it")
        # mkstemp creates 0600 files; give the result the usual permissions (umask applied).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
