"""The one model/session object (fastnst.runtime.session.Model): opening and checking a file, its task, sessions
built lazily and kept, one object shared by every model kind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from fastnst.contract import META_VERSION, SR_TASK
from fastnst.errors import InputError, ModelFormatError
from fastnst.networks.sr import SRNet, sr_metadata
from fastnst.runtime import Model, Stylizer, Upscaler
from tests.conftest import plain_onnx


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    torch.manual_seed(4)
    net = SRNet(2, channels=8, num_residual=1).eval()
    return plain_onnx(net, tmp_path_factory.mktemp("session") / "x2.onnx", sr_metadata(net))


def test_a_file_is_opened_and_checked_once(tiny_model):
    model = Model(tiny_model[0], providers="cpu", threads=1)
    assert model.task == "style" and model.threads == 1 and model.providers == ["CPUExecutionProvider"]
    assert META_VERSION in model.metadata and model.describe()["metadata"][META_VERSION] == model.metadata[META_VERSION]
    info = model.describe(io="float")
    assert list(info)[:3] == ["model", "size_bytes", "io"] and info["inputs"][0]["name"] == "image"
    assert info["providers_used"] == ["CPUExecutionProvider"]
    y = model.run({"image": np.zeros((1, 3, 16, 20), np.float32)})  # any feeds: images or feature maps
    assert len(y) == 1 and y[0].shape == (1, 3, 16, 20)
    stylizer = Stylizer(model)
    assert stylizer.model is model and stylizer.session is model.session  # no second session
    assert stylizer.stylize(np.zeros((20, 24, 3), np.uint8)).shape == (20, 24, 3)


def test_the_task_is_checked_against_the_contract(tiny_model, sr_model):
    with pytest.raises(ModelFormatError, match="is a super-resolution model; enlarge images with 'fastnst upscale"):
        Model(sr_model, task="style")
    with pytest.raises(ModelFormatError, match="is a style model, not a super-resolution model"):
        Model(tiny_model[0], task=SR_TASK)
    opened = Model(sr_model)  # no task asked: any model opens
    assert opened.task == SR_TASK and Upscaler(opened).model is opened
    with pytest.raises(ModelFormatError, match="super-resolution"):
        Stylizer(opened)


def test_a_style_runner_refuses_a_super_resolution_model(sr_model):
    """Before the engine checked the task, Stylizer ran an SR model and cropped its enlarged output to the
    input's size: a wrong picture and no error."""
    with pytest.raises(ModelFormatError, match="super-resolution"):
        Stylizer(sr_model)


def test_files_that_are_not_models(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        Model(tmp_path / "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="empty .* fastnst train-sr"):
        Model(empty, task=SR_TASK)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf" * 20)
    with pytest.raises(ModelFormatError, match="onnxruntime can load .* written by fastnst export"):
        Model(garbage, task="style")


def test_variants_are_built_on_first_use_and_kept(tiny_model):
    model = Model(tiny_model[0], providers="cpu")
    calls = []

    def build():
        calls.append(1)
        return model.open(str(model.path), arena=False)

    assert calls == []
    threads = [threading.Thread(target=model.variant, args=("spare", build)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = model.variant("spare", build)
    assert calls == [1] and model.variant("spare", build) is first and first is not model.session
    assert model.variant("none", lambda: False) is False  # "no such variant" is kept too


def test_no_onnx_import_on_the_common_path(tiny_model, tmp_path):
    """Files written by fastnst export carry their rewrites: no size imports the onnx package (about 0.8 s of CPU
    time) or builds a second session; nor does `fastnst stylize` with the built-in model, the common command."""
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from fastnst.runtime import Stylizer
        s = Stylizer({str(tiny_model[0])!r}, providers="cpu")
        first = s.session
        s.stylize(np.zeros((64, 48, 3), np.uint8))
        print("small", "onnx" in sys.modules)
        s.stylize(np.zeros((776, 776, 3), np.uint8), tile=0)  # above REWRITE_PIXELS
        print("large", "onnx" in sys.modules, s.session is first)
        from PIL import Image
        Image.new("RGB", (40, 30)).save({str(tmp_path / "p.png")!r})
        from fastnst.cli import main
        print("cli", main(["stylize", {str(tmp_path / "p.png")!r}, "-o", {str(tmp_path / "o.png")!r}]),
              "onnx" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["small", "False", "large", "False", "True", "cli", "0", "False"]


def test_metadata_are_read_without_onnx_and_equal_onnx_reading(tiny_model, tmp_path):
    """runtime.session.read_metadata (the lazy Model's metadata: no onnx import, no session) gives what onnx
    gives; a file that is not an ONNX protobuf is a ValueError, and a lazy Model of it a ModelFormatError."""
    import onnx

    from fastnst.runtime.session import read_metadata

    path = tiny_model[0]
    assert read_metadata(path) == {p.key: p.value for p in onnx.load(str(path)).metadata_props} != {}
    data = open(path, "rb").read()
    for i, bad in enumerate([b"hello, not a model", data[: len(data) // 2], b"\x08\x07" + b"\xff" * 12]):
        (tmp_path / f"bad{i}.onnx").write_bytes(bad)
        with pytest.raises(ValueError):
            read_metadata(tmp_path / f"bad{i}.onnx")
        with pytest.raises(ModelFormatError, match="not an ONNX model"):
            Model(tmp_path / f"bad{i}.onnx", lazy=True)
