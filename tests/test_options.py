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


def test_progress_writes_no_carriage_returns_when_not_a_terminal():
    log = FakeStream(tty=False)
    bar = Progress("images", stream=log)
    for i in range(1, 101):
        bar.update(i, 100)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 10 <= len(lines) <= 11 and lines[-1].startswith("images 100/100")
    tty = FakeStream(tty=True)
    bar = Progress("images", stream=tty)
    bar.update(1, 2)
    bar.close()
    assert tty.getvalue().startswith("\r") and tty.getvalue().endswith("\n")


def test_progress_stays_quiet_for_small_jobs_in_logs():
    log = FakeStream(tty=False)
    Progress(stream=log, min_total=5).update(1, 2)
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
