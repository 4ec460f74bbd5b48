import subprocess
import sys
import types

import pytest

from fastnst import cli
from fastnst.errors import InputError


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fastnst ")
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("train", "stylize", "export", "info", "demo", "gatys", "invert", "texture", "dream"):
        assert f"  {name}" in out
    assert cli.main([]) == 2


def test_unknown_command(capsys):
    assert cli.main(["stylze"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fastnst: error: unknown command 'stylze' (did you mean 'stylize'?); "
                   "run 'fastnst --help' for the list"]


@pytest.fixture
def fake_command(monkeypatch):
    mod = types.ModuleType("fastnst_fake_cmd")
    sys.modules["fastnst_fake_cmd"] = mod
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fastnst_fake_cmd", "run", "test"))
    yield mod
    del sys.modules["fastnst_fake_cmd"]


def test_errors_become_one_line_exit_2(fake_command, capsys):
    def run(argv):
        raise InputError("'x.png' does not exist; check the path\nsecond line dropped")

    fake_command.run = run
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == "fastnst: error: 'x.png' does not exist; check the path\n"


def test_missing_extra_named(fake_command, capsys):
    def run(argv):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    fake_command.run = run
    assert cli.main(["fake"]) == 2
    assert "pip install 'fastnst[train]'" in capsys.readouterr().err


def test_interrupt_and_passthrough(fake_command, capsys):
    def run(argv):
        if argv == ["--boom"]:
            raise KeyboardInterrupt
        return len(argv)

    fake_command.run = run
    assert cli.main(["fake", "--boom"]) == 130
    assert capsys.readouterr().err == "fastnst: interrupted\n"
    assert cli.main(["fake", "a", "b", "c"]) == 3  # the command's own exit code, not the error code 2
    assert cli.main(["fake"]) == 0  # None or 0: success
    assert capsys.readouterr().err == ""


def test_console_script_runs():
    res = subprocess.run([sys.executable, "-m", "fastnst", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("fastnst 0.")


def test_help_into_a_closed_pipe_is_quiet():
    """`fastnst --help | head -1`: no traceback when the reader goes away (help was printed outside the guard)."""
    import os

    code = ("import sys, os\nr, w = os.pipe()\nos.close(r)\nos.dup2(w, 1)\nfrom fastnst import cli\n"
            "sys.exit(cli.main(['--help']))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert run.returncode == 1 and "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr


def test_every_command_in_the_table_names_a_function_of_its_family_module():
    """The table is the one map from a command to code: each entry imports (torch-free) and is callable."""
    import importlib.util

    code = ("import importlib, sys\n"
            "from fastnst import cli\n"
            "for name, (module, function, _) in cli.COMMANDS.items():\n"
            "    assert callable(getattr(importlib.import_module(module), function)), name\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    modules = {module.rpartition(".")[2] for module, _, _ in cli.COMMANDS.values()}
    assert modules == {"train", "train_sr", "train_decoder", "upscale", "models", "stylize", "styles", "demo", "optimize",
                       "vgg", "augment"}
    assert all(importlib.util.find_spec(f"fastnst.commands.{m}") for m in modules)
