"""What the fastnst.augment tests share: a tiny labelled parquet dataset and a tiny image folder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.conftest import synthetic_rgb

LABELS = [3, 1, 4, 1, 5, 9, 2, 6]
BAD_ROW = 5  # row 5 of the parquet file holds bytes that are not an image


def png_bytes(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    synthetic_rgb(*size, seed=seed).save(buf, "PNG")
    return buf.getvalue()


def write_parquet(path: Path, rows: int = len(LABELS), row_group_size: int = 3) -> Path:
    """A parquet file as ``datasets`` writes one: image {bytes, path} (an Image feature), label, name; one bad row."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    images = [{"bytes": b"not an image" if i == BAD_ROW else png_bytes(i, (32 + 8 * (i % 2), 24)),
               "path": f"img{i}.png"} for i in range(rows)]
    features = {"image": {"_type": "Image"}, "label": {"dtype": "int64", "_type": "Value"},
                "name": {"dtype": "string", "_type": "Value"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.int64()),
                        ("name", pa.string())],
                       metadata={b"huggingface": json.dumps({"info": {"features": features}}).encode()})
    table = pa.table({"image": images, "label": LABELS[:rows], "name": [f"photo {i}" for i in range(rows)]},
                     schema=schema)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.fixture
def labelled_parquet(tmp_path) -> Path:
    return write_parquet(tmp_path / "photos.parquet")


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    """Five small images (one in a sub-folder, one PNG), a corrupt one, and a metadata.jsonl with labels."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        synthetic_rgb(32, 24, seed=i).save(root / f"a{i}.jpg", quality=95)
    synthetic_rgb(24, 32, seed=7).save(root / "sub" / "b.jpg", quality=95)
    synthetic_rgb(32, 32, seed=8).save(root / "c.png")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    rows = [{"file_name": "a0.jpg", "label": "cat"}, {"file_name": "sub/b.jpg", "label": "dog"}]
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative name -> bytes): what a job wrote."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupt_at_part(monkeypatch, n: int):
    """Make the n-th part a worker starts raise KeyboardInterrupt (a kill, in this process); returns a function
    that undoes it."""
    from fastnst.augment import engines

    run = engines.PartWorker.run
    started = []

    def run_or_die(self, part, on_rows=None):
        started.append(part.index)
        if len(started) == n:
            raise KeyboardInterrupt
        return run(self, part, on_rows)

    monkeypatch.setattr(engines.PartWorker, "run", run_or_die)
    return lambda: monkeypatch.setattr(engines.PartWorker, "run", run)
