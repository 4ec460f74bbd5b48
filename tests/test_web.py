"""The browser page (fastnst export --web): served on 127.0.0.1 and run in headless Chromium with
onnxruntime-web (wasm); its output numbers must agree with onnxruntime in Python.

Needs Chromium (Debian: ``apt-get install chromium-headless-shell`` or ``chromium``) and
onnxruntime-web (``npm install --no-save onnxruntime-web`` in the repository root, or
``FASTNST_ORT_WEB=/path/to/node_modules/onnxruntime-web/dist``); skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fastnst import cli
from fastnst.errors import InputError
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.web import find_ort_dist, write_web

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


def _browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _ort_dist() -> Path | None:
    try:
        return find_ort_dist(None, ROOT)
    except InputError:
        return None


class _Handler(SimpleHTTPRequestHandler):
    results: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).results.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def _end_group(proc: subprocess.Popen) -> None:
    """Terminate the browser and every helper process it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    time.sleep(0.5)  # helpers exit after the main process
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_page(site: Path, spec: dict, timeout: float = 120.0, ep: str | None = "wasm") -> dict:
    """Serve ``site``, open the page in headless Chromium in test mode with ``spec`` (``ep``: the one execution
    provider to ask for; None: the page's own choice); the posted result. Chromium's fake camera is on."""
    (site / "spec.json").write_text(json.dumps(spec))
    handler = type("Handler", (_Handler,), {"results": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html?test=spec.json" + (f"&ep={ep}" if ep else "")
    with tempfile.TemporaryDirectory() as profile:
        # its own session: Chromium starts helper processes, and the whole group is ended afterwards
        proc = subprocess.Popen([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                 f"--user-data-dir={profile}", url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not handler.results and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
        finally:
            _end_group(proc)
            server.shutdown()
            server.server_close()
    if not handler.results:
        raise AssertionError("the page posted no result (browser exited or timed out)")
    return handler.results[0]


@pytest.mark.browser
def test_page_matches_python_onnxruntime(tmp_path):
    if _browser() is None:
        pytest.skip("no Chromium installed (apt-get install chromium-headless-shell)")
    if _ort_dist() is None:
        pytest.skip("onnxruntime-web not installed (npm install --no-save onnxruntime-web in the repository root)")
    torch.manual_seed(0)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    model = export_onnx(net, tmp_path / "tiny.onnx")
    site = tmp_path / "site"
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(_ort_dist())]) == 0
    assert {"index.html", "app.js", "models.json", "tiny.onnx"} <= {p.name for p in site.iterdir()}
    assert json.loads((site / "models.json").read_text())[0]["file"] == "tiny.onnx"
    h, w = 40, 52
    pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    result = run_page(site, {"model": "tiny.onnx", "width": w, "height": h, "pixels": pixels.ravel().tolist()})
    assert "error" not in result, result.get("error")
    got = np.array(result["output"], np.float32).reshape(h, w, 3)
    x = (pixels.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    assert np.abs(got - ref[0].transpose(1, 2, 0)).max() <= 1e-4


def _tiny_site(tmp_path: Path) -> Path:
    if _browser() is None:
        pytest.skip("no Chromium installed (apt-get install chromium-headless-shell)")
    if _ort_dist() is None:
        pytest.skip("onnxruntime-web not installed (npm install --no-save onnxruntime-web in the repository root)")
    torch.manual_seed(0)
    model = export_onnx(TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval(), tmp_path / "tiny.onnx")
    site = tmp_path / "site"
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(_ort_dist())]) == 0
    return site


@pytest.mark.browser
def test_page_names_the_provider_that_ran_and_saves_the_result_as_png(tmp_path):
    """The status line said 'webgpu' when onnxruntime-web had fallen back to wasm (it named the first provider
    asked for), and there was no way to save the result. Headless Chromium without a GPU runs wasm."""
    site = _tiny_site(tmp_path)
    h, w = 24, 30
    pixels = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    result = run_page(site, {"model": "tiny.onnx", "width": w, "height": h, "pixels": pixels.ravel().tolist(),
                             "return_output": False, "save": True}, ep=None)
    assert "error" not in result, result.get("error")
    assert result["backend"] == "wasm" and "wasm" in result["status"] and "webgpu" not in result["status"]
    save = result["save"]
    assert save["download"].endswith(".stylized.png") and not save["hidden"]
    assert bytes(save["bytes"][:8]) == b"\x89PNG\r\n\x1a\n"
    header = bytes(save["bytes"][16:24])  # the IHDR chunk: width and height
    assert (int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")) == (w, h)


@pytest.mark.browser
def test_the_live_camera_stylises_frames_and_shows_frames_per_second(tmp_path):
    """Chromium's fake camera: the page stylises frames one after another and reports frames per second."""
    site = _tiny_site(tmp_path)
    result = run_page(site, {"model": "tiny.onnx", "width": 8, "height": 8, "pixels": [0] * 192,
                             "return_output": False, "camera": 4})
    assert "error" not in result, result.get("error")
    assert result["camera"] is not None and result["camera"]["frames"] == 4 and result["camera"]["fps"] > 0


def fake_ort_dist(folder: Path) -> Path:
    """An onnxruntime-web dist folder as npm installs it: the script names the build it loads (jsep), and three
    other WebAssembly builds lie beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ort.min.js").write_text('let i="ort-wasm-simd-threaded.jsep.mjs";')
    for variant in ("", ".jsep", ".asyncify", ".jspi"):
        (folder / f"ort-wasm-simd-threaded{variant}.mjs").write_text(f"// loader{variant}")
        (folder / f"ort-wasm-simd-threaded{variant}.wasm").write_bytes(b"\0asm" + variant.encode())
    return folder


@pytest.fixture
def web_setup(tmp_path, monkeypatch):
    """(fake onnxruntime-web dist, a real small model) with the working folder in tmp_path."""
    from fastnst.styles.builtin import MODEL_PATH

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FASTNST_ORT_WEB", raising=False)
    model = tmp_path / "builtin.onnx"
    shutil.copyfile(MODEL_PATH, model)
    return fake_ort_dist(tmp_path / "dist"), model


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("existing", ["app.js", "models.json", "builtin.onnx", "ort/ort.min.js",
                                      "ort/ort-wasm-simd-threaded.jsep.wasm"])
def test_web_never_replaces_a_users_file(web_setup, tmp_path, capsys, existing):
    """Data loss: export --web replaced app.js, models.json, a same-named model and ort/* in DIR without
    --overwrite (it refused only when DIR/index.html existed). Now the file is named and nothing is written."""
    dist, model = web_setup
    site = tmp_path / "site"
    (site / existing).parent.mkdir(parents=True, exist_ok=True)
    (site / existing).write_bytes(b"the user's own file")
    before = _tree(site)
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(dist)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{site / existing}' exists" in err and "--overwrite" in err
    assert _tree(site) == before


def test_web_into_the_current_folder_keeps_its_files(web_setup, tmp_path, capsys):
    """`--web .` wrote the page into the current folder over the user's app.js."""
    dist, model = web_setup
    (tmp_path / "app.js").write_text("my app")
    assert cli.main(["export", str(model), "--web", ".", "--ort-dist", str(dist)]) == 2
    assert "app.js' exists" in capsys.readouterr().err
    assert (tmp_path / "app.js").read_text() == "my app"
    assert not (tmp_path / "index.html").exists() and not (tmp_path / "ort").exists()


def test_web_overwrite_replaces_only_the_pages_files(web_setup, tmp_path):
    dist, model = web_setup
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.js").write_text("old page")
    (site / "notes.txt").write_text("mine")
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(dist), "--overwrite"]) == 0
    assert (site / "app.js").read_text() != "old page" and (site / "notes.txt").read_text() == "mine"
    assert json.loads((site / "models.json").read_text())[0]["styles"][0] == "mosaic"
    # a model that already is the page's copy is not a file the page replaces
    assert cli.main(["export", str(site / "builtin.onnx"), "--web", str(site), "--ort-dist", str(dist),
                     "--overwrite"]) == 0


def test_web_copies_only_the_webassembly_build_the_page_loads(web_setup, tmp_path):
    """The written site was 89 MB: every wasm variant of the npm package was copied, the page loads one."""
    dist, model = web_setup
    site = tmp_path / "site"
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(dist)]) == 0
    assert sorted(p.name for p in (site / "ort").iterdir()) == [
        "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm", "ort.min.js"]
    assert (site / "ort" / "ort.min.js").read_bytes() == (dist / "ort.min.js").read_bytes()


def test_export_refuses_an_unknown_output_suffix(tiny_model, tmp_path, capsys):
    """`fastnst export w.safetensors -o e.txt` wrote an ONNX file named .txt."""
    _, weights = tiny_model
    assert cli.main(["export", str(weights), "-o", str(tmp_path / "e.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert not (tmp_path / "e.txt").exists()


def test_web_needs_onnxruntime_web(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FASTNST_ORT_WEB", raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert cli.main(["export", str(model), "--web", str(tmp_path / "site")]) == 2
    assert "npm install onnxruntime-web" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()
