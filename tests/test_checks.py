"""fastnst.checks: bounds of numeric options, pixel cap, memory estimates, CPU caps."""

from __future__ import annotations

import logging

import pytest

from fastnst import checks
from fastnst.errors import ConfigError, ResourceError


def test_whole_numbers_and_ranges():
    assert checks.whole("--n", 3) == 3 and checks.whole("--n", "7") == 7 and checks.whole("--n", 4.0) == 4
    assert checks.whole("--n", None, allow_none=True) is None
    for bad in (0, -1, True, 2.5, "x", None):
        with pytest.raises(ConfigError, match="--n"):
            checks.whole("--n", bad)
    with pytest.raises(ConfigError, match="at most 10"):
        checks.whole("--n", 11, maximum=10)
    assert checks.number("--x", "0.5", 0, 1) == 0.5
    for bad in ("nan", "inf", -1, 2, "abc"):
        with pytest.raises(ConfigError):
            checks.number("--x", bad, 0, 1)


def test_threads_are_capped_and_said(caplog):
    cpus = checks.available_cpus()
    with caplog.at_level(logging.WARNING, logger="fastnst.checks"):
        assert checks.threads(100_000) == cpus
    assert "using" in caplog.text and str(cpus) in caplog.text
    assert checks.threads(1) == 1 and checks.threads(None) is None
    with pytest.raises(ConfigError):
        checks.threads(0)
    with pytest.raises(ConfigError, match="use at most"):
        checks.workers(10 ** 6)


def test_sides_against_the_pixel_cap(monkeypatch):
    monkeypatch.setenv("FASTNST_MAX_PIXELS", str(100 * 100))
    assert checks.side("--size", 100) == 100
    with pytest.raises(ConfigError, match="at most 100"):
        checks.side("--size", 101)
    with pytest.raises(ResourceError, match="limit"):
        checks.pixels(200, 100, "the image")
    assert checks.tile(None) is None and checks.tile(0) == 0
    with pytest.raises(ConfigError, match="at least 16"):
        checks.tile(8, minimum=16)


def test_memory_estimates_refuse_what_cannot_fit(monkeypatch):
    monkeypatch.setattr(checks, "available_memory", lambda: 2 * 2**30)  # a 2 GB machine
    checks.train_sizes(128, 4)  # 128² x 4 crops x 8 KB/px = 0.5 GB: fits
    with pytest.raises(ResourceError, match="needs about"):
        checks.train_sizes(512, 8)
    with pytest.raises(ResourceError, match="smaller --size"):
        checks.optimize_size(4096, 4096, "the image")
    monkeypatch.setattr(checks, "available_memory", lambda: None)  # unknown: let it run
    checks.train_sizes(512, 8)
