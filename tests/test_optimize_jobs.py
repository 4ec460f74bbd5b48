"""fastnst.optimize.jobs: each job checks everything before any work, runs, writes its files and reports."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from fastnst.errors import ConfigError, FastNSTError, OptimizationInterrupted
from fastnst.optimize.jobs import JOBS, DreamJob, GatysJob, InvertJob, TextureJob, parse_size, run_job
from fastnst.optimize.settings import DreamSettings, GatysSettings
from tests.conftest import synthetic_rgb


@pytest.fixture
def files(tmp_path):
    synthetic_rgb(48, 32, seed=1).save(tmp_path / "c.png")
    synthetic_rgb(40, 40, seed=5).save(tmp_path / "s.png")
    return tmp_path


def test_parse_size(monkeypatch):
    assert parse_size(64) == 64 and parse_size("64") == 64
    assert parse_size("72x24") == (72, 24) and parse_size((72, 24)) == (72, 24)
    with pytest.raises(ConfigError, match="--size must be a positive integer"):
        parse_size("0x20")
    with pytest.raises(ConfigError, match="--size must be N or WxH"):
        parse_size((1, 2, 3))
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "100")  # each side at most 10: its square under the pixel cap
    assert parse_size("10x10") == (10, 10)
    with pytest.raises(ConfigError, match="--size must be at most 10, got 20"):
        parse_size("5x20")


def test_jobs_declare_their_settings_once():
    fields = {f.name for f in dataclasses.fields(DreamJob)}
    assert {f.name for f in dataclasses.fields(DreamSettings)} <= fields
    assert {f.name for f in dataclasses.fields(GatysSettings)} <= {f.name for f in dataclasses.fields(GatysJob)}
    assert set(JOBS) == {"gatys", "invert", "texture", "dream"}


def test_jobs_check_everything_before_work_and_write_their_files(files):
    out = files / "out.png"
    job = GatysJob(content=str(files / "c.png"), style=[str(files / "s.png")], output=str(out), size=32,
                   iterations=2, save_every=1, vgg_weights="random")
    report = run_job(job)
    assert report.outputs == [str(out)] and report.intermediates == [str(files / "out-0001.png"),
                                                                     str(files / "out-0002.png")]
    assert report.summary()["loss"] == report.results["gatys"].terms and "wrote" in report.text()
    assert Image.open(out).size == (32, 21)
    with pytest.raises(FastNSTError, match="exists; pass --overwrite"):
        run_job(job)
    with pytest.raises(ConfigError, match=r"--iterations must be >= 1 and <= 1e\+06, got 10000000"):
        run_job(DreamJob(image=str(files / "c.png"), output=str(files / "d.png"), iterations=10 ** 7))
    with pytest.raises(ConfigError, match="--octaves must be >= 1 and <= 32"):
        run_job(DreamJob(image=str(files / "c.png"), output=str(files / "d.png"), octaves=40))
    with pytest.raises(ConfigError, match="--grid needs --layers"):
        run_job(InvertJob(image=str(files / "c.png"), output=str(files / "i.png"), grid=True))
    with pytest.raises(ConfigError, match="--style is missing"):
        run_job(TextureJob(output=str(files / "t.png")))
    assert not (files / "d.png").exists() and not (files / "i.png").exists() and not (files / "t.png").exists()


def test_invert_job_writes_one_file_per_layer_and_a_grid(files):
    job = InvertJob(image=str(files / "c.png"), layers=["relu1_2", "relu2_1"], grid=True, output=str(files / "i.png"),
                    size=32, iterations=2, vgg_weights="random")
    assert job.targets() == [files / "i-relu1_2.png", files / "i-relu2_1.png", files / "i.png"]
    report = run_job(job)
    assert report.outputs == [str(p) for p in job.targets()]
    assert set(report.summary()["layers"]) == {"relu1_2", "relu2_1"} and "relu2_1: feature loss" in report.text()


def test_ctrl_c_keeps_the_current_image(files):
    """Ctrl-C during Gatys left nothing (without --save-every) and said so only as 'nothing was saved'."""
    job = GatysJob(content=str(files / "c.png"), style=[str(files / "s.png")], output=str(files / "g.png"),
                   size=32, iterations=10, vgg_weights="random")

    def interrupt(step):
        if step.iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(OptimizationInterrupted, match="after 3 of 10 iterations; kept the current image as "
                                                      ".*g-interrupted-0003.png$"):
        run_job(job, interrupt)
    assert Image.open(files / "g-interrupted-0003.png").size == (32, 21) and not (files / "g.png").exists()
    with pytest.raises(OptimizationInterrupted, match="g-interrupted-0003-2.png"):  # never replaced unasked
        run_job(job, interrupt)


def test_ctrl_c_names_the_last_intermediate_image(files):
    job = TextureJob(style=[str(files / "s.png")], output=str(files / "t.png"), size="32", iterations=10,
                     save_every=2, vgg_weights="random")

    def interrupt(step):
        if step.iteration == 5:
            raise KeyboardInterrupt

    with pytest.raises(OptimizationInterrupted, match="the last intermediate image is .*t-0004.png"):
        run_job(job, interrupt)
    assert (files / "t-0004.png").exists() and not (files / "t.png").exists()
