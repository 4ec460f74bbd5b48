"""fastnst augment --engine ray: the same files as the local engine (a local Ray of 2 CPUs; slow: Ray starts
in ~15 s on this machine). Skipped, with the reason, where Ray is not installed or cannot start."""

from __future__ import annotations

import logging

import pytest

import fastnst
from tests.augment_fixtures import interrupt_at_part, labelled_parquet, photo_dir, tree  # noqa: F401

pytestmark = pytest.mark.slow
FAST = {"rows_per_part": 3, "threads": 1}


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'fastnst[ray]')")
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any reason Ray cannot start here
        pytest.skip(f"Ray cannot start on this machine: {type(exc).__name__}: {exc}")
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_engines_files(ray_session, labelled_parquet, photo_dir, tmp_path):
    for name, source in (("parquet", labelled_parquet), ("folder", photo_dir)):
        fastnst.augment(source, tmp_path / f"{name}-local", styles="mosaic,halftone", strength="0.4,1", seed=3, **FAST)
        report = fastnst.augment(source, tmp_path / f"{name}-ray", styles="mosaic,halftone", strength="0.4,1", seed=3,
                                 engine="ray", **FAST)
        assert tree(tmp_path / f"{name}-ray") == tree(tmp_path / f"{name}-local"), name
        assert sum(report.workers.values()) == report.parts and "ray (2 workers x 1 threads" in report.lines[0]
    assert ray_session.is_initialized()  # a session the caller started is the caller's to end


def test_a_local_job_finishes_on_ray(ray_session, labelled_parquet, tmp_path, monkeypatch):
    fastnst.augment(labelled_parquet, tmp_path / "whole", seed=4, **FAST)
    undo = interrupt_at_part(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fastnst.augment(labelled_parquet, tmp_path / "cut", seed=4, **FAST)
    undo()
    report = fastnst.augment(labelled_parquet, tmp_path / "cut", seed=4, engine="ray", resume=True, **FAST)
    assert report.parts == 2
    assert tree(tmp_path / "cut") == tree(tmp_path / "whole")
