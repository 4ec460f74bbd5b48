"""Execution providers, session options and threads (fastnst.runtime.providers)."""

from __future__ import annotations

import logging

import pytest

from fastnst import cli
from fastnst.checks import available_cpus
from fastnst.errors import ConfigError
from fastnst.runtime import Stylizer, check_threads, parse_provider, resolve_providers, session_options
from fastnst.runtime.providers import short_name
from tests.conftest import synthetic_rgb


@pytest.fixture
def plain(tiny_model):
    return None, tiny_model[0]


def test_provider_parsing(monkeypatch):
    import onnxruntime

    assert parse_provider("cuda:device_id=1,arena_extend_strategy=kSameAsRequested") == (
        "cuda", {"device_id": "1", "arena_extend_strategy": "kSameAsRequested"})
    assert parse_provider("cpu") == "cpu"
    with pytest.raises(ConfigError, match="key=value"):
        parse_provider("cuda:device_id")
    assert resolve_providers([("cpu", {"arena_extend_strategy": "kSameAsRequested"})]) == [
        ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    with pytest.raises(ConfigError, match=r"\(name, dict\)"):
        resolve_providers([("cpu", "x")])
    with pytest.raises(ConfigError, match="did you mean 'openvino'"):
        resolve_providers("openvion")
    everything = ["CPUExecutionProvider", "OpenVINOExecutionProvider", "CUDAExecutionProvider",
                  "TensorrtExecutionProvider", "CoreMLExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: everything)
    assert resolve_providers("auto") == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                         "CoreMLExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(["cuda"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert resolve_providers(None) == ["CPUExecutionProvider"]
    with pytest.raises(ConfigError, match="has no DmlExecutionProvider"):
        resolve_providers("directml")


def test_cli_provider_errors(plain, tmp_path, capsys):
    photo = tmp_path / "p.png"
    synthetic_rgb(20, 20).save(photo)
    for flags in (["--provider", "cdua"], ["--provider", "cpu:nokeyvalue"], ["--threads", "0"],
                  ["--threads", "-3"], ["--provider", "cpu", "--device", "cpu"]):
        assert cli.main(["stylize", "-m", str(plain[1]), str(photo), "-o", str(tmp_path / "o.png")] + flags) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fastnst: error:"), flags
    assert not (tmp_path / "o.png").exists()
    assert cli.main(["stylize", "-m", str(plain[1]), str(photo), "-o", str(tmp_path / "o.png"),
                     "--provider", "cpu", "--optimization", "basic"]) == 0


def test_threads_capped_at_available_cpus(plain, caplog):
    cpus = available_cpus()
    with caplog.at_level(logging.WARNING, logger="fastnst.checks"):
        s = Stylizer(plain[1], providers="cpu", threads=100000)
    assert s.threads == cpus
    assert any(f"the {cpus} CPUs available; using {cpus}" in r.getMessage() for r in caplog.records)
    assert check_threads(1) == 1
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            check_threads(bad)


def test_session_options_and_short_names():
    options = session_options(1, "basic", arena=False)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
    assert session_options(1).enable_cpu_mem_arena
    with pytest.raises(ConfigError, match="did you mean 'basic'"):
        session_options(1, "basik")
    assert short_name("CUDAExecutionProvider") == "cuda" and short_name("MyExecutionProvider") == "MyExecutionProvider"
