"""The browser page (fastnst export --web): served on 127.0.0.1 and run in headless Chromium with
onnxruntime-web (wasm); its output numbers must agree with onnxruntime in Python.

Needs Chromium (Debian: ``apt-get install chromium-headless-shell`` or ``chromium``) and
onnxruntime-web (``npm install --no-save onnxruntime-web`` in the repository root, or
``FASTNST_ORT_WEB=/path/to/node_modules/onnxruntime-web/dist``); skips with the reason otherwise.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
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
from PIL import Image

from fastnst import cli
from fastnst.errors import InputError
from fastnst.training.export import export_onnx
from fastnst.networks.transformer import TransformerNet
from fastnst.web import find_ort_dist, site_size, write_web

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
    served: set = set()

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).served.add(self.path.split("?")[0].lstrip("/"))
        super().do_GET()

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


FAKE_CAMERA = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


def run_page(site: Path, spec: dict, timeout: float = 120.0, query: str = "ep=wasm", flags: tuple = ()) -> dict:
    """Serve ``site``, open the page in headless Chromium in test mode with ``spec``; the posted result, with
    ``_served``: the site's paths the page fetched. ``query`` is added to the page's address (``ep=wasm``
    forces the WebAssembly provider), ``flags`` to Chromium's command line (e.g. :data:`FAKE_CAMERA`)."""
    (site / "spec.json").write_text(json.dumps(spec))
    handler = type("Handler", (_Handler,), {"results": [], "served": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html?test=spec.json" + (f"&{query}" if query else "")
    with tempfile.TemporaryDirectory() as profile:
        # its own session: Chromium starts helper processes, and the whole group is ended afterwards
        proc = subprocess.Popen([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                 f"--user-data-dir={profile}", *flags, url],
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
    return dict(handler.results[0], _served=sorted(handler.served))


def _needs_browser() -> None:
    if _browser() is None:
        pytest.skip("no Chromium installed (apt-get install chromium-headless-shell)")
    if _ort_dist() is None:
        pytest.skip("onnxruntime-web not installed (npm install --no-save onnxruntime-web in the repository root)")


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    """(tiny exported model, the page written for it by `fastnst export --web` with the real onnxruntime-web)."""
    _needs_browser()
    tmp = tmp_path_factory.mktemp("web")
    torch.manual_seed(0)
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    model = export_onnx(net, tmp / "tiny.onnx")
    site = tmp / "site"
    assert cli.main(["export", str(model), "--web", str(site), "--ort-dist", str(_ort_dist())]) == 0
    return model, site


def _reference(model: Path, pixels: np.ndarray) -> np.ndarray:
    """onnxruntime in Python on HxWx3 uint8 pixels: HxWx3 float32 in [0, 1] (unclipped)."""
    x = (pixels.astype(np.float32) / 255).transpose(2, 0, 1)[None]
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    return ref[0].transpose(1, 2, 0)


def _photo_spec(h: int = 40, w: int = 52, **extra) -> tuple[np.ndarray, dict]:
    pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return pixels, {"model": "tiny.onnx", "width": w, "height": h, "pixels": pixels.ravel().tolist(), **extra}


@pytest.mark.browser
def test_page_matches_python_onnxruntime(tiny_site):
    model, site = tiny_site
    assert {"index.html", "app.js", "models.json", "tiny.onnx"} <= {p.name for p in site.iterdir()}
    assert json.loads((site / "models.json").read_text())[0]["file"] == "tiny.onnx"
    pixels, spec = _photo_spec()
    result = run_page(site, spec)
    assert "error" not in result, result.get("error")
    got = np.array(result["output"], np.float32).reshape(pixels.shape)
    assert np.abs(got - _reference(model, pixels)).max() <= 1e-4


@pytest.mark.browser
def test_written_site_holds_only_what_the_page_loads(tiny_site):
    """The written site was 89 MB: every WebAssembly variant of the npm package was copied. Every file written
    is one the page fetches (the script, the one WebAssembly build it asks for, the page, the model)."""
    model, site = tiny_site
    _, spec = _photo_spec()
    result = run_page(site, spec)
    assert "error" not in result, result.get("error")
    written = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()} - {"spec.json"}
    served = set(result["_served"])
    assert written <= served, f"written but never loaded: {sorted(written - served)}"
    assert served - written <= {"spec.json", "favicon.ico"}, f"loaded but not written: {sorted(served - written)}"
    assert sorted(p.name for p in (site / "ort").iterdir()) == [
        "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm", "ort.min.js"]
    assert site_size(site) < 30 * 2**20


@pytest.mark.browser
def test_status_names_the_provider_that_ran(tiny_site):
    """The status said "webgpu" (the first provider asked for) when onnxruntime-web fell back to wasm: headless
    Chromium with --disable-gpu has navigator.gpu but no adapter. The provider the session was created with is
    the one named."""
    _, site = tiny_site
    _, spec = _photo_spec()
    result = run_page(site, spec, query="")  # the page's own choice: webgpu first where navigator.gpu exists
    assert "error" not in result, result.get("error")
    assert result["backend"] == "wasm"
    ready = [s for s in result["statuses"] if s.startswith("model ready")]
    done = [s for s in result["statuses"] if s.startswith("done in")]
    assert ready and done and all("wasm" in s and "webgpu" not in s for s in ready + done), result["statuses"]


@pytest.mark.browser
def test_save_downloads_the_result_as_png(tiny_site):
    """The page had no way to keep the result. Save is disabled until there is one; then it downloads the
    canvas as NAME.stylized.png (the download the Save button starts is caught and its blob read back)."""
    model, site = tiny_site
    pixels, spec = _photo_spec(name="holiday.jpg", save=True)
    result = run_page(site, spec)
    assert "error" not in result, result.get("error")
    save = result["save"]
    assert save["disabled_before"] is True and save["disabled_after"] is False
    assert save["download"] == "holiday.stylized.png" and save["type"] == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(save["png"]))) as im:
        assert im.format == "PNG" and im.size == (pixels.shape[1], pixels.shape[0])
        got = np.asarray(im.convert("RGB"), np.int16)
    want = np.round(np.clip(_reference(model, pixels), 0, 1) * 255).astype(np.int16)
    assert np.abs(got - want).max() <= 1
    assert any("saved holiday.stylized.png" in s for s in result["statuses"]), result["statuses"]


@pytest.mark.browser
def test_camera_stylises_frames_and_shows_fps(tiny_site):
    """Live camera (Chromium's fake camera, 640x480): frames are stylised one after another at the default
    longer side of 320, the status line shows frames per second, and Stop ends the camera's tracks."""
    model, site = tiny_site
    result = run_page(site, {"model": "tiny.onnx", "camera": {"frames": 4}}, flags=FAKE_CAMERA)
    assert "error" not in result, result.get("error")
    cam = result["camera"]
    assert cam["frames"] >= 4 and (cam["width"], cam["height"]) == (320, 240)
    assert re.search(r"\b\d+(\.\d+)? fps\b", cam["status"]) and "wasm" in cam["status"], cam["status"]
    assert cam["tracks_ended"] is True and cam["camera_enabled"] is True and cam["stop_enabled"] is False
    assert cam["save_enabled"] is True
    pixels = np.array(cam["input"], np.uint8).reshape(240, 320, 3)
    assert pixels.std() > 1  # a real picture from the fake camera, not a blank frame
    got = np.array(cam["output"], np.float32).reshape(240, 320, 3)
    # the fake camera's frame is nearly flat (mostly one green): instance normalisation of so small a variance
    # magnifies the float rounding differences of wasm and the CPU provider (measured: max 0.004, ~1/255)
    diff = np.abs(got - _reference(model, pixels))
    assert diff.max() <= 1e-2 and diff.mean() <= 1e-3, (diff.max(), diff.mean())
    assert cam["status_after"].startswith("camera stopped"), cam["status_after"]


@pytest.mark.browser
@pytest.mark.parametrize("flags, says", [
    (("--use-fake-device-for-media-stream", "--deny-permission-prompts"), "camera access was denied"),
    (("--use-fake-ui-for-media-stream",), "no camera found"),
], ids=["denied", "absent"])
def test_camera_denied_or_absent_is_one_status_line(tiny_site, flags, says):
    _, site = tiny_site
    if says == "no camera found" and any(Path("/dev").glob("video*")):
        pytest.skip("this machine has a camera")
    result = run_page(site, {"model": "tiny.onnx", "camera": {"frames": 1}}, flags=flags)
    assert "error" not in result, result.get("error")
    cam = result["camera"]
    assert cam["frames"] == 0 and cam["camera_enabled"] is True and cam["stop_enabled"] is False
    assert says in cam["status"] and "\n" not in cam["status"], cam["status"]


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


def test_page_elements_exist():
    """Every element app.js looks up is in index.html (Save, Camera, Stop and the camera size included), so the
    page does not fail in a browser on a missing id; runs without Chromium."""
    import fastnst.web.page as page

    here = Path(page.__file__).parent
    ids = set(re.findall(r'\$\("(\w+)"\)', (here / "app.js").read_text()))
    html_ids = set(re.findall(r'id="(\w+)"', (here / "index.html").read_text()))
    assert {"save", "camera", "stop", "camSize", "status", "out"} <= ids
    assert ids <= html_ids, sorted(ids - html_ids)
