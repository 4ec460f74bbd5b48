"""Where results go: the one output planner of fastnst. Torch-free.

Every job that writes plans its outputs here, before any work, so that the rules hold alike for all of them:

- **names**: a result in a folder is named from its input by a template (``{stem}{suffix}``; ``generate`` writes
  ``{stem}-{style}{suffix}``), with the input's format where fastnst writes it, else ``--format``, else PNG;
- **folders**: a folder input's sub-folders are mirrored below the output folder; the output folder is created
  when its parent exists and refused when it is a file or not writable;
- **stdout**: ``-`` takes exactly one result;
- **formats**: a suffix (or ``--format``) fastnst cannot write is refused before the work;
- **collisions**: two inputs that would be written to one file are refused;
- **never onto an input**: an output that is one of the inputs (same file, hard link) is refused, unless it is
  its own input and ``in_place`` says so; a run folder inside the folder it reads is refused;
- **exists/overwrite**: an existing output is refused unless ``overwrite`` (at planning time, or just before
  each result of a batch, whose other results still go on);
- **no -o**: results go next to their inputs under a name that says what made them (:func:`beside`:
  ``photo.jpg`` -> ``photo.mosaic.jpg``, a folder ``photos/`` -> ``photos.mosaic/``), never replacing anything
  unasked.

:func:`plan` is ``fastnst stylize``/``upscale``'s ``-o``; :func:`folder_targets` names results in a folder;
:func:`check_target` checks one output file; :func:`check_run_folder` a folder a job fills (a training run).
The checks of single files are :mod:`fastnst.fileio`'s; the formats :mod:`fastnst.image`'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastnst.errors import ConfigError, InputError, OutputExistsError
from fastnst.fileio import check_batch_outputs, check_output
from fastnst.image import SAVE_FORMATS, output_format

STDOUT = "-"
DEFAULT_SUFFIX = ".png"  # the format of results whose input has none fastnst writes (stdin, .gif, ...)
NAME = "{stem}{suffix}"  # a result's name in an output folder
BESIDE = "{stem}.{label}{suffix}"  # a result's name next to its input (no -o): photo.mosaic.jpg


@dataclass
class Source:
    """One input as the planner sees it: its display name, its path (None for standard input) and its place
    below the folder it was found in (the file's relative path; None for a file named directly)."""

    name: str
    path: Path | None
    relative: Path | None = None


@dataclass
class Plan:
    """Where a batch goes: ``mode`` 'file', 'folder' or 'stdout' and one path per input (None for stdout)."""

    mode: str
    paths: list[Path | None] = field(default_factory=list)


def check_format(format: str | None) -> None:
    """InputError now (not per image) when ``format`` is given and fastnst cannot write it."""
    if format:
        output_format("x", format)


def suffix_for(path: Path | None, format: str | None = None) -> str:
    """The suffix of a result of ``path`` (None: stdin): ``format``'s, else the input's when fastnst writes it,
    else :data:`DEFAULT_SUFFIX`."""
    if format:
        return "." + format.lower().lstrip(".")
    if path is not None and path.suffix.lower() in SAVE_FORMATS:
        return path.suffix.lower()
    return DEFAULT_SUFFIX


def folder_targets(sources: Sequence[Source], folder: Path, format: str | None = None, name: str = NAME,
                   fields: Mapping[str, Any] | None = None,
                   clash: str = "'{current}' and '{earlier}' would both be written to '{target}'; "
                                "run them separately or rename one") -> list[Path]:
    """One path per source in ``folder``: its sub-folder mirrored, named by the template ``name`` (``{stem}``,
    ``{suffix}`` and ``fields``). ConfigError (``clash``, with ``{current}``, ``{earlier}`` and ``{target}``)
    when two sources would be written to one file."""
    paths: list[Path] = []
    seen: dict[Path, str] = {}
    for source in sources:
        stem = source.path.stem if source.path is not None else "stdin"
        target = folder / (source.relative.parent if source.relative is not None else Path()) / \
            name.format(stem=stem, suffix=suffix_for(source.path, format), **(fields or {}))
        if target in seen:
            raise ConfigError(clash.format(current=source.name, earlier=seen[target], target=target))
        seen[target] = source.name
        paths.append(target)
    return paths


def ensure_folder(folder: Path) -> None:
    """Create the output folder if its parent exists; refuse an unwritable one before any work."""
    if not folder.exists():
        if not folder.parent.exists():
            raise InputError(f"output folder '{folder}' cannot be created: '{folder.parent}' does not exist")
        try:
            folder.mkdir()
        except OSError as exc:
            raise InputError(f"cannot create output folder '{folder}': {exc.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"output folder '{folder}' is not writable; choose another -o")


def check_target(target: str | os.PathLike, overwrite: bool = False, inputs: Iterable[Any] = (), *,
                 in_place: bool = False, format: str | None = None, known_format: bool = True,
                 exists_hint: str | None = None) -> Path:
    """One output file checked before any work: a format fastnst writes (its suffix, or ``format``; skipped with
    ``known_format=False`` when the caller checks its own, e.g. a video container), not one of ``inputs`` (files
    or folders being read), not existing unless ``overwrite``, in a writable folder. ``exists_hint`` replaces
    the advice of the OutputExistsError. Returns the path."""
    if known_format:
        output_format(target, format)
    try:
        return check_output(target, overwrite, inputs=list(inputs), in_place=in_place)
    except OutputExistsError:
        if exists_hint is None:
            raise
        raise OutputExistsError(f"output '{target}' exists; {exists_hint}") from None


def plan(sources: Sequence[Source], output: str, *, format: str | None = None, overwrite: bool = False,
         in_place: bool = False) -> Plan:
    """Where ``sources`` go for ``-o output``: standard output ('-', one source), one file, or a folder (an
    existing folder, a name ending in '/', a name without suffix that does not exist, or several sources).

    Checked before any work: the count for stdout, the format, collisions, never onto an input (with
    ``in_place`` an output may be its own input), a file output's existence (``overwrite``) and folder, a
    folder output's creation. A folder's existing results are checked per result (:func:`check_target`).
    Raises ConfigError, InputError or OutputExistsError.
    """
    if output == STDOUT:
        if len(sources) != 1:
            raise ConfigError(f"-o - (stdout) takes exactly one input, got {len(sources)}")
        return Plan("stdout", [None])
    out = Path(output).expanduser()
    folder = out.is_dir() or output.endswith(("/", os.sep)) or len(sources) > 1 or (not out.suffix and not out.exists())
    if not folder:
        if sources[0].path is None and not format and out.suffix.lower() not in SAVE_FORMATS:
            raise ConfigError(f"cannot tell the format of '{out}'; give it a suffix such as .jpg or pass --format")
        output_format(out, format)
        check_batch_outputs([(sources[0].path, out)], in_place=in_place)
        check_output(out, overwrite, in_place=in_place, inputs=[sources[0].path])
        return Plan("file", [out])
    if out.exists() and not out.is_dir():
        raise InputError(f"output '{out}' is a file, but {len(sources)} inputs need a folder")
    paths = folder_targets(sources, out, format)
    check_batch_outputs([(s.path, p) for s, p in zip(sources, paths)], in_place=in_place)
    ensure_folder(out)
    return Plan("folder", list(paths))


def label_name(label: str) -> str:
    """``label`` made safe as part of a file name: letters, digits, '_', '+' and '-' (others become '_')."""
    return re.sub(r"[^\w+-]+", "_", str(label)).strip("_") or "styled"


def beside_root(source: Source) -> Path | None:
    """The folder a source was found in (None for a file named directly)."""
    if source.path is None or source.relative is None:
        return None
    parts = source.path.parts
    return Path(*parts[:len(parts) - len(source.relative.parts)])


def beside(sources: Sequence[Source], label: str, *, format: str | None = None, overwrite: bool = False) -> Plan:
    """Where results go without ``-o``: next to each input, named after it and ``label`` (what made them, e.g. the
    style): ``photo.jpg`` -> ``photo.mosaic.jpg``; the images of a folder ``photos/`` into the sibling folder
    ``photos.mosaic/`` (its layout mirrored), so that a later run over ``photos/`` never reads them.

    Checked before any work: standard input (it needs ``-o``), formats, collisions, never onto an input, and for
    one source its output's existence (``overwrite``); a batch's existing results are checked per result.
    """
    label = label_name(label)
    paths: list[Path | None] = []
    seen: dict[Path, str] = {}
    for source in sources:
        if source.path is None:
            raise ConfigError("standard input (-) has no name to write next to; give -o FILE, or -o - for "
                              "standard output")
        suffix = suffix_for(source.path, format)
        output_format(f"x{suffix}")
        root = beside_root(source)
        if root is None:
            target = source.path.parent / BESIDE.format(stem=source.path.stem, label=label, suffix=suffix)
        else:
            whole = root.resolve() if not root.name else root
            target = whole.parent / f"{whole.name}.{label}" / source.relative.parent / \
                NAME.format(stem=source.path.stem, suffix=suffix)  # type: ignore[union-attr]
        if target in seen:
            raise ConfigError(f"'{source.name}' and '{seen[target]}' would both be written to '{target}'; "
                              f"run them separately or give -o")
        seen[target] = source.name
        paths.append(target)
    check_batch_outputs([(s.path, p) for s, p in zip(sources, paths)])
    if len(sources) == 1:
        check_output(paths[0], overwrite, inputs=[sources[0].path])  # type: ignore[arg-type]
    return Plan("beside", paths)


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is the existing folder ``folder`` or lies below it (links resolved)."""
    if not folder.is_dir():
        return False
    inner, outer = path.resolve(), folder.resolve()
    return inner == outer or outer in inner.parents


def check_run_folder(folder: Path, marks: Sequence[str], *, keep: bool, held: str, reads: Path | None = None,
                     among: str = "", flag: str = "--out") -> Path:
    """A folder a job fills with many files (a training run's checkpoints and previews), checked before any work:
    not a file; not inside the folder it ``reads`` (InputError saying it would be written ``among`` that
    folder's files); holding none of ``marks`` unless ``keep`` (OutputExistsError ``held``)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} '{folder}' is a file; pass a folder")
    if reads is not None and is_inside(folder, reads):
        raise InputError(f"{flag} '{folder}' is inside {among}; choose another {flag}")
    if not keep and any((folder / mark).exists() for mark in marks):
        raise OutputExistsError(held)
    return folder


__all__ = ["Source", "Plan", "STDOUT", "DEFAULT_SUFFIX", "NAME", "BESIDE", "check_format", "suffix_for",
           "folder_targets", "ensure_folder", "check_target", "plan", "beside", "beside_root", "label_name",
           "is_inside", "check_run_folder"]
