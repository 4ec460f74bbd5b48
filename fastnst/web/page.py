"""Writing the static browser page that stylises photos and a live camera with onnxruntime-web
(``fastnst export --web DIR``).

:func:`write_web` copies the page (``index.html``, ``app.js``, from this folder), the model(s) and the
onnxruntime-web files the page loads into one folder that any static web server can serve, e.g.
``python -m http.server -d DIR`` then http://127.0.0.1:8000/. Nothing is fetched from the internet
at run time. onnxruntime-web itself is not shipped with fastnst (its WebAssembly build is about 30 MB):
it is copied from an npm install, ``npm install onnxruntime-web`` (found in ``./node_modules``,
``DIR/node_modules``, ``$FASTNST_ORT_WEB`` or ``ort_dist``). Only the script the page loads
(``ort.min.js``) and the one WebAssembly build that script asks for are copied, not every variant of the
npm package.

Every file the page writer would replace follows the rule of every other output: without ``overwrite``
an existing file is refused (named) before anything is written; each file is written whole (temporary
file, rename). Torch-free.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fastnst.errors import ConfigError, InputError, OutputExistsError

PAGE_FILES = ("index.html", "app.js")
MANIFEST = "models.json"
ORT_DIR = "ort"
ORT_WEB_ENV = "FASTNST_ORT_WEB"
ORT_SCRIPT = "ort.min.js"  # the page's <script>: the JS API with the WebAssembly and WebGPU backends
# The WebAssembly build a script of onnxruntime-web loads is named in it: its .mjs loader, and the .wasm
# of the same stem (onnxruntime-web 1.2x: ort.min.js loads ort-wasm-simd-threaded.jsep.*).
_WASM_LOADER = re.compile(r"ort-wasm-simd-threaded[\w.]*?\.mjs")


def ort_files(dist: Path) -> list[Path]:
    """The files of the onnxruntime-web ``dist`` folder the page loads: the script and the WebAssembly build it
    names (loader and binary). Empty when ``dist`` lacks any of them."""
    script = dist / ORT_SCRIPT
    if not script.is_file():
        return []
    try:
        loaders = sorted(set(_WASM_LOADER.findall(script.read_text(encoding="utf-8", errors="ignore"))))
    except OSError:
        return []
    files = [script]
    for loader in loaders:
        files += [dist / loader, dist / (loader[: -len(".mjs")] + ".wasm")]
    return files if loaders and all(f.is_file() for f in files) else []


def find_ort_dist(hint: str | os.PathLike | None = None, folder: Path | None = None) -> Path:
    """The ``dist`` folder of an onnxruntime-web npm install; InputError saying how to get one."""
    candidates = []
    if hint:
        candidates.append(Path(hint).expanduser())
    if os.environ.get(ORT_WEB_ENV):
        candidates.append(Path(os.environ[ORT_WEB_ENV]).expanduser())
    candidates += [Path.cwd() / "node_modules" / "onnxruntime-web" / "dist"]
    if folder is not None:
        candidates.append(folder / "node_modules" / "onnxruntime-web" / "dist")
    for c in candidates:
        for d in (c, c / "dist", c / "node_modules" / "onnxruntime-web" / "dist"):
            if ort_files(d):
                return d
    raise InputError("onnxruntime-web was not found; run 'npm install onnxruntime-web' here (or in the web "
                     f"folder), or pass --ort-dist PATH/TO/node_modules/onnxruntime-web/dist (or set {ORT_WEB_ENV})")


def model_entry(path: Path) -> dict:
    """models.json entry of an .onnx model: file, name, io convention, input range, styles."""
    from fastnst.runtime import Stylizer

    s = Stylizer(path, providers="cpu")
    return {"file": path.name, "name": s.metadata.get("style_name") or path.stem, "io": s.io_kind,
            "input_range": int(s.input_range), "stride": s.stride, "min_size": s.min_size,
            "styles": list(s.style_names), "input": s.input_name, "output": s.output_name}


@dataclass
class WebPlan:
    """What :func:`write_web` writes: ``copies`` (source file, target) and the manifest's path, all checked."""

    folder: Path
    dist: Path
    copies: list[tuple[Path, Path]] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.folder / MANIFEST

    def targets(self) -> list[Path]:
        return [t for _, t in self.copies] + [self.manifest]


def plan_web(folder: str | os.PathLike, models: list[str | os.PathLike], ort_dist: str | os.PathLike | None = None,
             overwrite: bool = False) -> WebPlan:
    """Check, before anything is written, where the page, ``models`` (.onnx paths; they need not exist yet) and
    onnxruntime-web go in ``folder``.

    Raises InputError (the folder is a file or cannot be created, a target is a folder, onnxruntime-web is
    missing), ConfigError (two models of one name) and OutputExistsError naming the first file the page would
    replace when ``overwrite`` is false. A model that already is the file in ``folder`` is left as it is.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--web '{folder}' is a file; pass a folder")
    parent = folder.parent if str(folder.parent) else Path(".")
    if not folder.exists() and not parent.is_dir():
        raise InputError(f"cannot create '{folder}': '{parent}' does not exist")
    dist = find_ort_dist(ort_dist, folder)
    here = Path(__file__).resolve().parent
    plan = WebPlan(folder, dist, [(here / name, folder / name) for name in PAGE_FILES])
    plan.copies += [(f, folder / ORT_DIR / f.name) for f in ort_files(dist)]
    seen: dict[str, Path] = {}
    for m in map(Path, models):
        if m.name in seen:
            raise ConfigError(f"'{m}' and '{seen[m.name]}' would both be written to '{folder / m.name}'; "
                              f"rename one")
        seen[m.name] = m
        if m.name in PAGE_FILES + (MANIFEST,):
            raise ConfigError(f"a model cannot be named '{m.name}' (a file of the page); rename it")
        target = folder / m.name
        if not (target.exists() and m.exists() and target.resolve() == m.resolve()):
            plan.copies.append((m, target))
    ort_dir = folder / ORT_DIR
    if ort_dir.exists() and not ort_dir.is_dir():
        raise InputError(f"'{ort_dir}' is a file, and the page needs a folder of that name; pass another --web folder")
    existing = [t for t in plan.targets() if t.exists() or t.is_symlink()]
    for t in existing:
        if t.is_dir():
            raise InputError(f"'{t}' is a folder, and the page would write a file of that name; pass another "
                             f"--web folder")
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more of the page's files)" if len(existing) > 1 else ""
        raise OutputExistsError(f"'{existing[0]}' exists{more}; the page would replace it: pass --overwrite to "
                                f"replace the page's files, or another --web folder")
    return plan


def write_web(folder: str | os.PathLike, models: list[str | os.PathLike], ort_dist: str | os.PathLike | None = None,
              overwrite: bool = False) -> Path:
    """Write the page, ``models`` (.onnx files) and onnxruntime-web into ``folder``; returns it.

    Everything is checked first (:func:`plan_web`; every model is opened), then each file is written whole.
    Other files in ``folder`` are never touched.
    """
    from fastnst.fileio import atomic_output

    plan = plan_web(folder, models, ort_dist, overwrite)
    entries = [model_entry(Path(m)) for m in models]  # every model is checked before anything is written
    try:
        plan.folder.mkdir(exist_ok=True)
        (plan.folder / ORT_DIR).mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create '{plan.folder}': {exc.strerror}") from None
    for source, target in plan.copies:
        with atomic_output(target, overwrite=overwrite) as tmp:
            shutil.copyfile(source, tmp)
    with atomic_output(plan.manifest, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(entries, indent=2) + "\n")
    return plan.folder


def site_size(folder: str | os.PathLike) -> int:
    """Bytes of the files in a written page folder (what a server would send at most)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
