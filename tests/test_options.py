"""Options declared once (fastnst.options) and the flags built from them (fastnst.commands.common)."""

from __future__ import annotations

import io
import json
import types
from dataclasses import dataclass
from typing import Optional

import pytest

from fastnst.commands.common import Parser, Progress, add_options, chosen, run_batch
from fastnst.errors import ConfigError
from fastnst.options import check_options, defaults, option


@dataclass
class Demo:
    style_weight: float = option(1.0, "style loss weight", low=0)
    iterations: int = option(500, "steps", low=1, high=100_000)
    net: str = option("vgg19", "loss network", choices=("vgg16", "vgg19"))
    layers: tuple = option(("relu1_1", "relu2_1"), "layers")
    size: Optional[int] = option(None, "long side", above=0)
    json: bool = option(False, "print JSON")
    verify: bool = option(True, "check the result")
    hidden: str = option("x", cli=False)
    tv_weight: float = option(0.0, "smoothness weight", low=0)


def parse(argv: list[str]) -> dict:
    p = Parser(prog="demo")
    add_options(p, Demo)
    return chosen(p.parse_args(argv), Demo)


def test_flags_come_from_the_fields_and_unset_flags_keep_the_dataclass_default():
    assert parse([]) == {"json": False}
    got = parse(["--style-weight", "2.5", "--net", "vgg16", "--layers", "relu1_1, relu3_1", "--json",
                 "--no-verify", "--size", "64"])
    assert got == {"style_weight": 2.5, "net": "vgg16", "layers": ["relu1_1", "relu3_1"], "json": True,
                   "verify": False, "size": 64}
    assert Demo(**got).iterations == 500


@pytest.mark.parametrize("argv, words", [
    (["--iterations", "0"], ">= 1"), (["--iterations", "2.5"], "whole number"),
    (["--style-weight", "-1"], ">= 0"), (["--net", "vgg11"], "invalid choice"), (["--hidden", "y"], "unrecognized"),
    (["--size", "0"], "> 0"), (["--style-weight", "nan"], "finite")])
def test_bad_flags_are_one_config_error_line(argv, words):
    with pytest.raises(ConfigError, match=words) as info:
        parse(argv)
    assert "\n" not in str(info.value)


def test_help_shows_every_default_including_zero():
    p = Parser(prog="demo")
    add_options(p, Demo)
    text = " ".join(p.format_help().split())
    assert "smoothness weight (default: 0.0)" in text and "steps (default: 500)" in text
    assert "print JSON (default" not in text


def test_library_calls_are_checked_with_the_same_bounds():
    check_options(Demo())
    with pytest.raises(ConfigError, match="--iterations must be >= 1 and <= 100000, got 200000"):
        check_options(Demo(iterations=200_000))
    with pytest.raises(ConfigError, match="--net"):
        check_options(Demo(net="alexnet"))
    assert defaults(Demo)["iterations"] == 500


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_in_a_log_is_a_line_every_few_seconds_with_an_eta():
    """Off a terminal: no \\r, nothing for the first seconds, then one line every LOG_EVERY seconds with an
    ETA, and the last one (a 500-iteration Gatys printed a line per 10% without ETA: minutes apart)."""
    from fastnst.commands.common import LOG_EVERY, QUIET_SECONDS

    log, clock = FakeStream(tty=False), Clock()
    bar = Progress("gatys", stream=log, clock=clock)
    for i in range(1, 101):
        clock.now = i * 0.5  # half a second per unit: 50 s in all
        bar.update(i, 100, "loss 1.0")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith(f"gatys {int(QUIET_SECONDS / 0.5)}/100 loss 1.0 | 2 s, ETA 48 s")
    assert len(lines) == 1 + int((50 - QUIET_SECONDS) / LOG_EVERY) + 1 and lines[-1] == "gatys 100/100 loss 1.0 | 50 s"
    assert all("ETA" in line for line in lines[:-1])


def test_progress_on_a_terminal_redraws_one_line_with_an_eta():
    tty, clock = FakeStream(tty=True), Clock()
    bar = Progress("images", stream=tty, clock=clock)
    clock.now = 4.0
    bar.update(1, 3)
    clock.now = 8.0
    bar.update(2.5, 3, "tile 1/2")  # fractional units: a tiled image half done
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "images 1/3 | 4 s, ETA 8 s" in text and "images 2/3 tile 1/2 | 8 s, ETA 1 s" in text


def test_progress_stays_quiet_for_quick_jobs_in_logs():
    log, clock = FakeStream(tty=False), Clock()
    bar = Progress(stream=log, clock=clock)
    for i in range(1, 6):
        clock.now = i * 0.1
        bar.update(i, 5)
    assert log.getvalue() == ""


def test_run_batch_prints_errors_json_and_the_summary(capsys):
    """commands.common.run_batch: per-file errors on stderr, one JSON line per record, exit 2 when any failed."""
    def work(inputs, options, on_item, progress):
        assert options == {"x": 1}
        on_item({"input": inputs[0], "output": "a-out.png"})
        on_item({"input": inputs[1], "error": "cannot read it"})
        return types.SimpleNamespace(failed=1, lines=["1 done, 1 failed"])

    assert run_batch(work, {"x": 1}, ["a.png", "b.png"], as_json=True) == 2
    out, err = capsys.readouterr()
    assert [json.loads(line)["input"] for line in out.splitlines()] == ["a.png", "b.png"]
    assert err.splitlines() == ["fastnst: error: b.png: cannot read it", "1 done, 1 failed"]
    ok = types.SimpleNamespace(failed=0, lines=["2 done"])
    assert run_batch(lambda inputs, options, on_item, progress: ok, None, ["a.png"]) == 0
    assert capsys.readouterr() == ("", "2 done\n")
