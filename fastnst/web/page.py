"""Writing the static browser page that stylises photos with onnxruntime-web (``fastnst export --web DIR``).

:func:`write_web` copies the page (``index.html``, ``app.js``, from this folder), the model(s) and
onnxruntime-web's browser files into one folder that any static web server can serve, e.g.
``python -m http.server -d DIR`` then http://127.0.0.1:8000/. Nothing is fetched from the internet
at run time. onnxruntime-web itself is not shipped with fastnst (its WebAssembly files are tens of
MB): it is copied from an npm install, ``npm install onnxruntime-web`` (found in ``./node_modules``,
``DIR/node_modules``, ``$FASTNST_ORT_WEB`` or ``ort_dist``). Torch-free.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from fastnst.errors import InputError, OutputExistsError

PAGE_FILES = ("index.html", "app.js")
ORT_WEB_ENV = "FASTNST_ORT_WEB"
# onnxruntime-web's files the page needs: the JS API (wasm + WebGPU backends) and its wasm builds.
ORT_FILES = ("ort.min.js",)
ORT_PATTERNS = ("ort-wasm-simd-threaded*.wasm", "ort-wasm-simd-threaded*.mjs")


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
            if (d / "ort.min.js").is_file() and any(d.glob("ort-wasm-simd-threaded*.wasm")):
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


def write_web(folder: str | os.PathLike, models: list[str | os.PathLike], ort_dist: str | os.PathLike | None = None,
              overwrite: bool = False) -> Path:
    """Write the page, ``models`` (.onnx files) and onnxruntime-web into ``folder``; returns it.

    Raises InputError when a model or onnxruntime-web is missing or the folder cannot be made,
    OutputExistsError when the folder already holds a page and ``overwrite`` is false.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--web '{folder}' is a file; pass a folder")
    if not folder.parent.exists():
        raise InputError(f"cannot create '{folder}': '{folder.parent}' does not exist")
    if (folder / "index.html").exists() and not overwrite:
        raise OutputExistsError(f"'{folder}' already holds a page; pass --overwrite or another --web folder")
    dist = find_ort_dist(ort_dist, folder)
    entries = [model_entry(Path(m)) for m in models]  # every model is checked before anything is written
    folder.mkdir(exist_ok=True)
    here = Path(__file__).resolve().parent
    for name in PAGE_FILES:
        shutil.copyfile(here / name, folder / name)
    ort_dir = folder / "ort"
    ort_dir.mkdir(exist_ok=True)
    for name in ORT_FILES:
        shutil.copyfile(dist / name, ort_dir / name)
    for pattern in ORT_PATTERNS:
        for f in dist.glob(pattern):
            shutil.copyfile(f, ort_dir / f.name)
    for m in models:
        if Path(m).resolve() != (folder / Path(m).name).resolve():
            shutil.copyfile(m, folder / Path(m).name)
    (folder / "models.json").write_text(json.dumps(entries, indent=2) + "\n")
    return folder
