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


def run_page(site: Path, spec: dict, timeout: float = 120.0) -> dict:
    """Serve ``site``, open the page in headless Chromium in test mode with ``spec``; the posted result."""
    (site / "spec.json").write_text(json.dumps(spec))
    handler = type("Handler", (_Handler,), {"results": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html?test=spec.json&ep=wasm"
    with tempfile.TemporaryDirectory() as profile:
        # its own session: Chromium starts helper processes, and the whole group is ended afterwards
        proc = subprocess.Popen([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
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


def test_web_needs_onnxruntime_web(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FASTNST_ORT_WEB", raising=False)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    assert cli.main(["export", str(model), "--web", str(tmp_path / "site")]) == 2
    assert "npm install onnxruntime-web" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()
