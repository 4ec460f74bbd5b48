"""fastnst augment end to end on the local engine: outputs, reproducible draws, resume after a kill, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastnst
from fastnst import cli
from fastnst.augment import render
from fastnst.augment.draws import Draws
from fastnst.augment.store import STATE
from tests.augment_fixtures import (BAD_ROW, LABELS, interrupt_at_part, labelled_parquet,  # noqa: F401
                                    photo_dir, tree)

pq = pytest.importorskip("pyarrow.parquet")
ROOT = Path(__file__).resolve().parent.parent
FAST = {"rows_per_part": 3, "threads": 1}  # several parts from a few rows; one thread: stable timing on 2 cores


def read_rows(dest: Path) -> list[dict]:
    files = sorted(dest.glob("train-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_parquet_keeps_every_column_and_records_reproducible_styles(labelled_parquet, tmp_path):
    dest = tmp_path / "out"
    report = fastnst.augment(labelled_parquet, dest, styles="mosaic,halftone:2", strength="0.5,1", seed=7, **FAST)
    assert sorted(p.name for p in dest.iterdir()) == ["augment.json", "errors.jsonl", "train-00000-of-00003.parquet",
                                                      "train-00001-of-00003.parquet", "train-00002-of-00003.parquet"]
    rows = read_rows(dest)
    good = [i for i in range(len(LABELS)) if i != BAD_ROW]
    assert [r["label"] for r in rows] == [LABELS[i] for i in good]  # labels kept, row order kept
    assert [r["name"] for r in rows] == [f"photo {i}" for i in good]
    draws = Draws.of("mosaic,halftone:2", "0.5,1", 7)
    assert [(r["style"], r["strength"]) for r in rows] == \
        [(c.name, s) for c, s in (draws.draw(f"photos.parquet#{i}") for i in good)]
    assert all(r["stylized_image"]["bytes"][:2] == b"\xff\xd8" for r in rows)  # JPEG, as datasets stores images
    errors = [json.loads(line) for line in (dest / "errors.jsonl").read_text().splitlines()]
    assert [e["key"] for e in errors] == [f"photos.parquet#{BAD_ROW}"] and report.failed == 1
    summary = json.loads((dest / "augment.json").read_text())
    assert summary["rows"] == 7 and summary["failed"] == 1 and sum(summary["styles"].values()) == 7
    assert not (dest / STATE).exists()


def test_datasets_reads_the_output_as_images(labelled_parquet, tmp_path):
    datasets = pytest.importorskip("datasets")
    fastnst.augment(labelled_parquet, tmp_path / "out", styles="brick", **FAST)
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train")
    assert isinstance(ds.features["stylized_image"], datasets.Image) and isinstance(ds.features["image"], datasets.Image)
    assert ds[0]["stylized_image"].size == ds[0]["image"].size and ds["style"] == ["brick"] * 7


def test_same_files_with_several_worker_processes(labelled_parquet, tmp_path):
    fastnst.augment(labelled_parquet, tmp_path / "one", seed=2, **FAST)
    report = fastnst.augment(labelled_parquet, tmp_path / "two", seed=2, workers=2, **FAST)
    assert report.workers == {"process": 3}
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_folder_mirrors_the_input_and_keeps_its_metadata(photo_dir, tmp_path):
    dest = tmp_path / "out"
    fastnst.augment(photo_dir, dest, styles="pointillist", strength=0.8, format="png", **FAST)
    assert sorted(tree(dest)) == ["a0.png", "a1.png", "a2.png", "augment.json", "c.png", "errors.jsonl",
                                  "metadata.jsonl", "sub/b.png"]
    meta = [json.loads(line) for line in (dest / "metadata.jsonl").read_text().splitlines()]
    assert meta[0] == {"file_name": "a0.png", "label": "cat", "style": "pointillist", "strength": 0.8}
    assert {"file_name": "sub/b.png", "label": "dog", "style": "pointillist", "strength": 0.8} in meta
    assert [json.loads(line)["key"] for line in (dest / "errors.jsonl").read_text().splitlines()] == ["sub/broken.jpg"]


def test_an_interrupted_job_resumes_to_the_same_files(labelled_parquet, tmp_path, monkeypatch):
    fastnst.augment(labelled_parquet, tmp_path / "whole", seed=5, **FAST)
    undo = interrupt_at_part(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fastnst.augment(labelled_parquet, tmp_path / "cut", seed=5, **FAST)
    undo()
    visible = sorted(p.name for p in (tmp_path / "cut").iterdir() if not p.name.startswith("."))
    assert visible == ["train-00000-of-00003.parquet"]  # only whole parts; no summary yet
    with pytest.raises(fastnst.FastNSTError, match="unfinished augment job; pass --resume"):
        fastnst.augment(labelled_parquet, tmp_path / "cut", seed=5, **FAST)
    report = fastnst.augment(labelled_parquet, tmp_path / "cut", seed=5, resume=True, **FAST)
    assert report.parts == 2 and "1 ... " not in report.lines[0]
    assert tree(tmp_path / "cut") == tree(tmp_path / "whole")
    again = fastnst.augment(labelled_parquet, tmp_path / "cut", seed=5, resume=True, **FAST)
    assert "nothing to do" in again.lines[0]


def test_a_killed_command_resumes_to_the_same_files(photo_dir, tmp_path):
    """SIGKILL at an arbitrary moment (after some parts were written), then the same command with --resume."""
    args = [sys.executable, "-m", "fastnst", "augment", str(photo_dir), "--rows-per-part", "1", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert subprocess.run(args + ["-o", str(tmp_path / "whole")], env=env, capture_output=True).returncode == 0
    proc = subprocess.Popen(args + ["-o", str(tmp_path / "cut")], env=env, stderr=subprocess.PIPE)
    parts = tmp_path / "cut" / STATE / "parts"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("*.json")) if parts.is_dir() else []) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "cut" / "augment.json").exists()
    done = subprocess.run(args + ["-o", str(tmp_path / "cut"), "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "already done" in done.stderr
    assert tree(tmp_path / "cut") == tree(tmp_path / "whole")


def test_overwrite_replaces_only_an_earlier_job(labelled_parquet, tmp_path):
    dest = tmp_path / "out"
    fastnst.augment(labelled_parquet, dest, seed=1, **FAST)
    fastnst.augment(labelled_parquet, dest, seed=2, overwrite=True, rows_per_part=8, threads=1)
    assert sorted(p.name for p in dest.glob("*.parquet")) == ["train-00000-of-00001.parquet"]  # none of the old 3
    assert json.loads((dest / "augment.json").read_text())["job"]["draws"]["seed"] == 2


def test_picture_styles_run_through_the_universal_model_slot(photo_dir, tmp_path, monkeypatch):
    """The extension point: a stand-in for the universal model gets the style picture's bytes."""
    from tests.conftest import synthetic_rgb

    (tmp_path / "paintings").mkdir()
    for name in ("wave.png", "stars.png"):
        synthetic_rgb(16, 16, seed=len(name)).save(tmp_path / "paintings" / name)
    seen = []

    class StandIn:
        def render(self, images, picture, strengths):
            seen.append(picture[:4])
            return [np.full_like(im, 200) for im in images]

    monkeypatch.setattr(render, "picture_model_factory", lambda: lambda providers, threads: StandIn())
    dest = tmp_path / "out"
    fastnst.augment(photo_dir, dest, styles=f"{tmp_path / 'paintings'},mosaic:0.01", **FAST)
    meta = [json.loads(line) for line in (dest / "metadata.jsonl").read_text().splitlines()]
    assert {m["style"].rsplit("/", 1)[-1] for m in meta} == {"wave.png", "stars.png"}
    assert set(seen) == {b"\x89PNG"}
    from PIL import Image

    assert np.asarray(Image.open(dest / meta[0]["file_name"])).mean() > 190


def test_cli_shows_rows_per_second(labelled_parquet, tmp_path, capsys, monkeypatch):
    from fastnst.commands import common

    monkeypatch.setattr(common, "QUIET_SECONDS", 0.0)  # a log line for every report of this short job
    monkeypatch.setattr(common, "LOG_EVERY", 0.0)
    assert cli.main(["augment", str(labelled_parquet), "-o", str(tmp_path / "out"), "--rows-per-part", "3",
                     "--styles", "halftone", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "rows/s" in err and "left" in err and "8/8 rows" in err and "could not be read" in err


def _bad(tmp_path, labelled_parquet, photo_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("mine")
    src = str(labelled_parquet)
    out = str(tmp_path / "new")
    return [
        (["augment", src, "-o", out, "--styles", "mosiac"], "did you mean 'mosaic'"),
        (["augment", str(tmp_path / "empty"), "-o", out], "has no images"),
        (["augment", str(tmp_path / "nope"), "-o", out], "does not exist"),
        (["augment", str(photo_dir), "-o", str(photo_dir / "out")], "source"),
        (["augment", str(photo_dir), "-o", str(photo_dir)], "source"),
        (["augment", src, "-o", str(tmp_path / "taken")], "not empty"),
        (["augment", src, "-o", str(tmp_path / "taken"), "--overwrite"], "not written by fastnst augment"),
        (["augment", src, "-o", out, "--gpus", "1"], "--engine ray"),
        (["augment", src, "-o", out, "--strength", "2"], "--strength"),
        (["augment", src, "-o", out, "--column", "label"], "holds int64, not images"),
        (["augment", src, "-o", out, "--column", "nope"], "no column 'nope'"),
        (["augment", src, "-o", out, "--resume", "--overwrite"], "give one of them"),
        (["augment", src, "-o", str(tmp_path / "no" / "such")], "does not exist"),
    ]


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, labelled_parquet, photo_dir, capsys):
    before = tree(tmp_path)
    for args, match in _bad(tmp_path, labelled_parquet, photo_dir):
        assert cli.main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err, (args, err)
        assert not (tmp_path / "new").exists()
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(("empty", "taken"))} == before


def test_resume_with_other_arguments_is_refused(labelled_parquet, tmp_path, capsys):
    fastnst.augment(labelled_parquet, tmp_path / "out", seed=1, **FAST)
    assert cli.main(["augment", str(labelled_parquet), "-o", str(tmp_path / "out"), "--resume", "--seed", "2",
                     "--rows-per-part", "3"]) == 2
    assert "other arguments (draws differ)" in capsys.readouterr().err


def test_missing_ray_extra(labelled_parquet, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as in an install without the 'ray' extra
    assert cli.main(["augment", str(labelled_parquet), "-o", str(tmp_path / "new"), "--engine", "ray"]) == 2
    assert "pip install 'fastnst[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_unreachable_cluster(labelled_parquet, tmp_path, capsys):
    pytest.importorskip("ray")
    out = str(tmp_path / "new")
    assert cli.main(["augment", str(labelled_parquet), "-o", out, "--engine", "ray", "--address", "127.0.0.1:9"]) == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:9'" in capsys.readouterr().err
    assert not Path(out).exists()


def test_an_offline_hub_id_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: as offline
    for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["augment", "someone/no-such-dataset", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot open Hugging Face dataset 'someone/no-such-dataset'" in err and len(err.strip().splitlines()) == 1


def test_a_hub_dataset_is_read_through_its_parquet_files(labelled_parquet, tmp_path, monkeypatch):
    """The hub path with the network replaced: datasets resolves the id to parquet files, fastnst reads them."""
    datasets = pytest.importorskip("datasets")

    class Builder:
        class config:  # noqa: N801 - the shape of a datasets builder
            name = "default"
            data_files = {"train": [str(labelled_parquet)]}

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets, "load_dataset_builder", lambda repo_id: Builder)
    report = fastnst.augment("someone/photos", tmp_path / "out", styles="halftone", **FAST)
    rows = read_rows(tmp_path / "out")
    assert report.rows == 7 and [r["label"] for r in rows] == [v for i, v in enumerate(LABELS) if i != BAD_ROW]
    with pytest.raises(fastnst.FastNSTError, match="no parquet files for split 'test'"):
        Builder.config.data_files = {"train": []}
        monkeypatch.setattr("huggingface_hub.HfFileSystem.glob", lambda self, pattern: [])
        fastnst.augment("someone/photos", tmp_path / "out2", split="test")


def test_folders_need_only_the_base_install(photo_dir, labelled_parquet, tmp_path, monkeypatch, capsys):
    for name in ("pyarrow", "pyarrow.parquet", "datasets"):
        monkeypatch.setitem(sys.modules, name, None)  # as in `pip install fastnst` without extras
    assert fastnst.augment(photo_dir, tmp_path / "out", styles="brick", **FAST).rows == 5
    assert cli.main(["augment", str(labelled_parquet), "-o", str(tmp_path / "out2")]) == 2
    assert "pip install 'fastnst[augment]'" in capsys.readouterr().err
