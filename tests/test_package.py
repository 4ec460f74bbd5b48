"""The package itself in the torch-free base install: import, help, star import, a clear missing-extra error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Simulate the base install (numpy, pillow, onnxruntime, onnx) by hiding the train extra's packages.
BASE_INSTALL = """
import sys
for name in ("torch", "torchvision", "pytorch_lightning", "lightning", "lightning_fabric", "datasets",
             "safetensors", "jsonargparse", "onnxscript"):
    sys.modules[name] = None
import io, contextlib, pydoc
import fastnst
from fastnst import *
with contextlib.redirect_stdout(io.StringIO()) as text:
    pydoc.help(fastnst)
assert "Unavailable in this install" in text.getvalue(), text.getvalue()[:300]
assert callable(train) and callable(gatys) and Stylizer.__module__ == "fastnst.runtime.stylizer"
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
try:
    fastnst.train(style="x.jpg")
except fastnst.FastNSTError as exc:
    print(exc)
"""


def test_base_install_imports_helps_and_names_the_missing_extra():
    run = subprocess.run([sys.executable, "-c", BASE_INSTALL], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == ("fastnst.train needs the 'train' extra, which is not installed; "
                                  "install it with: pip install 'fastnst[train]'")


def test_cli_names_the_base_install_for_a_base_dependency(monkeypatch, capsys):
    from fastnst import cli

    def run(argv):
        raise ModuleNotFoundError("No module named 'onnx'", name="onnx")

    monkeypatch.setitem(cli.COMMANDS, "fake", ("fastnst.cli", "fake_run", "test"))
    monkeypatch.setattr(cli, "fake_run", run, raising=False)
    assert cli.main(["fake"]) == 2
    err = capsys.readouterr().err
    assert "pip install --force-reinstall fastnst" in err and "[train]" not in err
