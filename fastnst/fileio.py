"""File output that never leaves partial files, never replaces existing ones unasked, never writes onto an input.

Torch-free; used by every command that writes (images, weights, ONNX models, checkpoints).

- :func:`check_output` checks a target before long work starts (exists, folder, writable, not an input).
- :func:`atomic_output` writes through a temporary file in the target's folder (fsync, then rename):
  a crash leaves the old file untouched, a full disk or a permission problem becomes one
  :class:`~fastnst.errors.OutputError` line.
- Temporary files are named ``.<name>.fastnst-<pid>-<random>.tmp<suffix>``; the next process that writes
  into the same folder removes those of processes that no longer run (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastnst.errors import (InputError, ModelFormatError, OutputError, OutputExistsError, UnsafePickleError,
                            os_error)

# Temporary files of fastnst: ".<target name>.fastnst-<pid>-<host>-<random>.tmp[<suffix>]".
_TEMP_MARK = "fastnst"
_TEMP_RE = re.compile(r"^\..+\.fastnst-(\d+)-([0-9a-f]{6})-[0-9a-f]{8}\.tmp[^/]*$")
_cleaned: set[str] = set()


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """Six hex digits naming this machine (CRC-32 of its host name): a temporary file whose tag is another
    machine's is never judged by its pid. zlib and os.uname, not hashlib and socket: every command writes through
    this module, and those imports (with secrets) were a tenth of fastnst's import time on the stylize path."""
    import zlib

    try:
        host = os.uname().nodename
    except AttributeError:  # Windows
        import socket

        host = socket.gethostname()
    return f"{zlib.crc32(host.encode()) & 0xFFFFFF:06x}"


def temp_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``target`` (same folder, so the final rename is atomic)."""
    target = Path(target)
    name = f".{target.name}.{_TEMP_MARK}-{os.getpid()}-{_host_tag()}-{os.urandom(4).hex()}.tmp{target.suffix}"
    return target.with_name(name)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Remove fastnst temporary files in ``folder`` left by processes that no longer run (kill -9, power loss).

    Files of live processes (and of other hosts, on a shared folder) are kept. Runs once per folder and
    process unless ``force``. Returns the removed paths; never raises.
    """
    folder = Path(folder) if str(folder) else Path(".")
    key = str(folder.resolve()) if folder.exists() else str(folder)
    if key in _cleaned and not force:
        return []
    _cleaned.add(key)
    removed: list[Path] = []
    host = _host_tag()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m or m.group(2) != host or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are the same file (same path after resolving links, or hard links: same inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        pass
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                    in_place: bool = False) -> None:
    """Refuse an output that is one of ``inputs`` (same file, hard link) or lies in a folder being read.

    ``inputs`` may hold files and folders (``None`` entries, e.g. stdin, are ignored). With ``in_place``
    an output equal to an input *file* is allowed (the caller writes atomically); an output folder
    equal to an input folder is allowed too, per-file checks still apply then.
    Raises InputError saying which input it would replace.
    """
    out = Path(output)
    for item in inputs:
        if item is None or str(item) in ("", "-"):
            continue
        src = Path(item)
        if not src.exists():
            continue
        if src.is_dir():
            if out.exists() and out.is_dir() and same_file(out, src):
                if in_place:
                    continue
                raise InputError(f"output folder '{out}' is the input folder '{src}': its images would be "
                                 f"replaced; choose another output folder")
            continue
        if out.exists() and same_file(out, src):
            if in_place:
                continue
            raise InputError(f"output '{out}' is the input '{src}' and would replace it (even with --overwrite); "
                             f"choose another output name")


def check_output(path: str | os.PathLike, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike | None] = (), in_place: bool = False) -> Path:
    """Check that ``path`` can be written before long work starts; returns it as a Path.

    Raises OutputExistsError when it exists and ``overwrite`` is false, InputError when it is empty,
    a folder, one of ``inputs`` (see :func:`check_not_input`), or its folder is missing or not writable.
    """
    if path is None or not str(path).strip():
        raise InputError("the output path is empty; give a file name, e.g. -o out.png")
    path = Path(path)
    check_not_input(path, inputs, in_place=in_place)
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name")
    if path.exists() and not overwrite and not (in_place and any(
            i is not None and str(i) not in ("", "-") and Path(i).is_file() and same_file(path, i) for i in inputs)):
        raise OutputExistsError(f"output '{path}' exists; pass --overwrite to replace it or choose another name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder '{parent}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder '{parent}' is not writable; choose another output path")
    return path


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's (or a folder's) data to the disk; folders where that is not supported are skipped."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if Path(path).is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
            raise
    finally:
        os.close(fd)


def commit_temp(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make a finished temporary file the real one: fsync it, give it the usual permissions, rename, fsync the folder."""
    tmp, path = Path(tmp), Path(path)
    fsync_path(tmp)
    umask = os.umask(0)  # mkstemp-like files are 0600; give the result the usual permissions (umask applied)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    fsync_path(path.parent if str(path.parent) else ".")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False,
                  inputs: Iterable[str | os.PathLike | None] = (), in_place: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. OS errors (disk
    full, permission denied, read-only folder) become :class:`~fastnst.errors.OutputError` with one
    line. Stale temporary files of killed runs in the same folder are removed first.
    """
    inputs = list(inputs)
    path = check_output(path, overwrite, inputs, in_place)
    remove_stale_temps(path.parent)
    tmp = temp_path(path)
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise os_error(exc, path) from None
        os.close(fd)
        try:
            yield tmp
            if not overwrite and not in_place and path.exists():  # appeared while we worked
                raise OutputExistsError(f"output '{path}' appeared while writing; pass --overwrite to replace it")
            commit_temp(tmp, path)
        except OSError as exc:
            raise os_error(exc, path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def read_safetensors(path: str | os.PathLike, hint: str, framework: str = "pt") -> tuple[dict, dict[str, str]]:
    """(tensors, metadata) of the .safetensors file ``path`` (``framework`` 'pt' or 'numpy').

    Raises ModelFormatError, ending in ``hint`` (what to pass instead), when it cannot be read.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework=framework) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelFormatError(f"'{path}' is not a readable safetensors file ({detail}); {hint}") from None


def load_weights_only(path: str | os.PathLike, what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with torch's warnings kept quiet (e.g. its pickle
    protocol warning); torch is imported here.

    A PyTorch file or pickle that the weights-only unpickler refuses (it holds Python objects, perhaps code) raises
    UnsafePickleError: one line saying that it is not a weights-only checkpoint and will not be loaded. Any
    other failure (a truncated zip, a file that is no PyTorch file) is raised as torch raised it, for the
    caller to describe.
    """
    import pickle
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            with open(path, "rb") as f:
                head = f.read(4)
            if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # neither torch.save's zip nor a pickle
                raise
            found = re.search(r"unsupported GLOBAL (\S+)", str(exc))
            name = found.group(1) if found else _foreign_global(Path(path))
            calls = f" (it calls {name})" if name else ""
            raise UnsafePickleError(
                f"{what} '{path}' is not a weights-only checkpoint: only a full unpickle, which can run code in the "
                f"file, would load it{calls}, so fastnst will not load it; pass a file written by fastnst (or "
                f".safetensors weights)") from None


_SAFE_GLOBALS = ("torch.", "collections.", "_codecs.")  # what a plain tensor file refers to


def _foreign_global(path: Path, limit: int = 100_000) -> str | None:
    """The first callable a pickle (or torch.save's zip) names outside torch and collections, found by reading its
    opcodes (nothing is executed); None when there is none or the file cannot be read that way."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name) if name else b""
        else:
            with open(path, "rb") as f:
                data = f.read(64 << 20)
        strings: list[str] = []
        for i, (op, arg, _) in enumerate(pickletools.genops(data)):
            if i > limit:
                break
            if op.name == "GLOBAL":
                found = str(arg).replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found = f"{strings[-2]}.{strings[-1]}"
            else:
                if isinstance(arg, str):
                    strings.append(arg)
                continue
            if not found.startswith(_SAFE_GLOBALS):
                return found
    except Exception:  # noqa: BLE001 - a damaged pickle: the message stays without the name
        return None
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["OutputError", "atomic_output", "check_not_input", "check_output", "commit_temp", "fsync_path",
           "remove_stale_temps", "same_file", "sha256_file", "temp_path"]


def check_batch_outputs(pairs: Iterable[tuple[str | os.PathLike | None, str | os.PathLike | None]],
                        in_place: bool = False) -> None:
    """Refuse, before any work, a batch in which some output is one of the inputs (same file or hard link).

    ``pairs`` are (input, output) with None for stdin/stdout. With ``in_place`` an output may be *its own*
    input (written atomically), never another one (that input would be replaced before it is read).
    """
    pairs = [(None if i is None else Path(i), None if o is None else Path(o)) for i, o in pairs]
    ids: dict[tuple[int, int], Path] = {}
    for src, _ in pairs:
        if src is not None:
            with contextlib.suppress(OSError):
                st = os.stat(src)
                ids[(st.st_dev, st.st_ino)] = src
    for src, out in pairs:
        if out is None:
            continue
        try:
            st = os.stat(out)
        except OSError:
            continue
        clash = ids.get((st.st_dev, st.st_ino))
        if clash is None:
            continue
        if in_place and src is not None and same_file(src, out):
            continue
        hint = "choose another output" + ("" if in_place else " (or pass --in-place to replace each input with its result)")
        raise InputError(f"output '{out}' is the input '{clash}' and would replace it (even with --overwrite); {hint}")
