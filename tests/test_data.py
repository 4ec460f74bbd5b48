"""ContentDataModule: local folders and parquet files (through Hugging Face datasets), bad images, errors."""

from __future__ import annotations

import io

import pytest
import torch

from fastnst.training import data as fdata
from fastnst.errors import InputError
from tests.conftest import synthetic_rgb


def _png_bytes(seed: int, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    synthetic_rgb(*size, seed=seed).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def photo_folder(tmp_path):
    """Six images, flat and nested, plus a corrupt one and a text file."""
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    for i in range(3):
        synthetic_rgb(48, 36, seed=i).save(root / f"a{i}.jpg")
    synthetic_rgb(36, 48, seed=5).save(root / "sub" / "b.png")
    synthetic_rgb(40, 40, seed=6).save(root / "sub" / "deeper" / "c.webp")
    synthetic_rgb(50, 30, seed=7).save(root / "sub" / "d.JPG")
    (root / "a0_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    synthetic_rgb(20, 20).save(root / ".hidden" / "skip.png")
    return root


def _parquet(path, rows, features=True):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")}) if features else None
    ds = datasets.Dataset.from_dict({"image": rows, "caption": [f"c{i}" for i in range(len(rows))]}, features=feats)
    ds.to_parquet(str(path))
    return path


def test_folder_lists_nested_images_and_skips_corrupt(photo_folder, caplog):
    from fastnst.image import find_images

    files = find_images(photo_folder)
    assert len(files) == 7  # six good + the corrupt .jpg; no .txt, nothing hidden
    dm = fdata.ContentDataModule(str(photo_folder), image_size=24, batch_size=2, num_workers=0, num_previews=2)
    with caplog.at_level("WARNING", logger="fastnst.training.data"):
        dm.check()
    assert dm.kind == "folder"
    assert dm.previews.shape == (2, 3, 24, 24)
    assert dm.skipped == 1 and "a0_broken.jpg" in caplog.text  # sorted order meets it among the previews
    # previews held out: 7 files - 3 consumed (a0, a0_broken, a1) = 4 left for training
    assert dm.describe().startswith("4 images in")
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    assert len(batches) == 2
    for images, skipped in batches:
        assert images.shape == (2, 3, 24, 24) and images.dtype == torch.float32
        assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0


def test_folder_dataset_replaces_unreadable_item_and_counts_it(tmp_path, caplog):
    synthetic_rgb(30, 30).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    ds = fdata.FolderImages([tmp_path / "bad.png", tmp_path / "good.png"], image_size=16)
    with caplog.at_level("WARNING", logger="fastnst.training.data"):
        image, skipped = ds[0]
    assert image.shape == (3, 16, 16) and skipped == 1
    assert "bad.png" in caplog.text


def test_parquet_streams_through_datasets_and_skips_corrupt_rows(tmp_path, caplog):
    rows = [{"bytes": _png_bytes(i), "path": None} for i in range(6)]
    rows[4] = {"bytes": b"not an image", "path": None}
    path = _parquet(tmp_path / "train.parquet", rows)
    dm = fdata.ContentDataModule(str(path), image_size=20, batch_size=2, num_workers=0, num_previews=2)
    dm.check()
    assert dm.kind == "parquet" and dm.previews.shape == (2, 3, 20, 20)
    with caplog.at_level("WARNING", logger="fastnst.training.data"):
        batches = list(dm.train_dataloader())
    # rows 2..5 remain after the held-out previews (not 0..5); one is corrupt: 3 images -> one full batch of 2
    assert len(batches) == 1 and batches[0][0].shape == (2, 3, 20, 20)
    assert "skipping unreadable image" in caplog.text
    # the crops are the (decoded, cropped) images, not constants
    assert float(batches[0][0].std()) > 0.01


def test_parquet_binary_column_is_detected_by_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [1, 2, 3], "img_bytes": [_png_bytes(i) for i in range(3)]})
    pq.write_table(table, tmp_path / "plain.parquet")
    dm = fdata.ContentDataModule(str(tmp_path), image_size=16, batch_size=1, num_workers=0, num_previews=1).check()
    assert dm.kind == "parquet" and dm.previews.shape == (1, 3, 16, 16)


def test_parquet_without_image_column_is_an_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2], "text": ["a", "b"]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match="no image column"):
        fdata.ContentDataModule(str(tmp_path / "t.parquet"), num_workers=0).check()


def test_sources_without_usable_images_are_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="has no images"):
        fdata.ContentDataModule(str(empty), num_workers=0).check()
    with pytest.raises(InputError, match="does not exist"):
        fdata.ContentDataModule(str(tmp_path / "missing"), num_workers=0).check()
    with pytest.raises(InputError, match="does not exist"):
        fdata.ContentDataModule("photos_typo", num_workers=0).check()  # not owner/name: never the hub
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.jpg").write_bytes(b"junk")
    with pytest.raises(InputError, match="can be read"):
        fdata.ContentDataModule(str(broken), num_workers=0).check()
    rows = [{"bytes": b"junk", "path": None}]
    bad_parquet = _parquet(tmp_path / "bad.parquet", rows)
    with pytest.raises(InputError, match="no readable image"):
        fdata.ContentDataModule(str(bad_parquet), num_workers=0).check()


def test_decompression_bomb_cap_applies_to_training_images(tmp_path, monkeypatch):
    synthetic_rgb(64, 64).save(tmp_path / "big.png")
    synthetic_rgb(16, 16).save(tmp_path / "small.png")
    monkeypatch.setenv("FASTNST_MAX_PIXELS", "1000")
    dm = fdata.ContentDataModule(str(tmp_path), image_size=16, batch_size=1, num_workers=0, num_previews=1).check()
    assert dm.skipped == 1 and dm.preview_names == [str(tmp_path / "small.png")]


def test_resolve_source_kinds(tmp_path):
    assert fdata.resolve_source("coco") == ("hub", fdata.COCO_HUB_ID)
    assert fdata.resolve_source("someone/some-images") == ("hub", "someone/some-images")
    with pytest.raises(InputError):
        fdata.resolve_source("")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        fdata.resolve_source(str(tmp_path / "f.txt"))


def test_random_crop_box_is_inside_and_reproducible():
    for w, h in [(100, 50), (50, 100), (17, 17), (300, 20)]:
        boxes = []
        for _ in range(2):
            gen = torch.Generator().manual_seed(3)
            boxes.append([fdata.random_crop_box(w, h, gen) for _ in range(20)])
        assert boxes[0] == boxes[1]
        for left, top, right, bottom in boxes[0]:
            assert 0 <= left < right <= w and 0 <= top < bottom <= h
    assert fdata.center_crop_box(100, 50) == (25, 0, 75, 50)


def test_datamodule_of_a_run_config_takes_its_checked_values(photo_folder):
    from fastnst.training.config import TrainConfig

    config = TrainConfig(style="s.png", data=str(photo_folder), image_size="24", batch_size=2, num_workers=None,
                         num_previews=1, seed=5, vgg_weights="random").check()  # "24": checked to 24 there
    dm = fdata.ContentDataModule.from_config(config).check()
    assert (dm.data, dm.image_size, dm.batch_size, dm.num_previews, dm.seed) == (str(photo_folder), 24, 2, 1, 5)
    assert dm.num_workers == fdata.default_num_workers()  # None: the default, decided once
    assert dm.previews.shape == (1, 3, 24, 24)


def test_parquet_struct_column_without_feature_metadata_is_detected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.array([{"bytes": _png_bytes(i), "path": f"{i}.png"} for i in range(2)])
    pq.write_table(pa.table({"photo": column, "n": [1, 2]}), tmp_path / "s.parquet")
    dm = fdata.ContentDataModule(str(tmp_path / "s.parquet"), image_size=16, num_workers=0, num_previews=1).check()
    assert dm.previews.shape == (1, 3, 16, 16) and dm.preview_names == ["row 0 (0.png)"]


def test_a_bad_parquet_file_is_one_line_naming_it(tmp_path, capfd):
    """A bad parquet file let pyarrow's (datasets') own stderr line through before fastnst's."""
    from fastnst.cli import main

    folder = tmp_path / "pq"
    folder.mkdir()
    _parquet(folder / "good.parquet", [synthetic_rgb(20, 20)])
    (folder / "bad.parquet").write_bytes(b"PAR1 not parquet at all PAR1")
    synthetic_rgb(24, 24, seed=3).save(tmp_path / "wave.png")
    capfd.readouterr()  # datasets' own progress bar while writing the good file
    code = main(["train", "--style", str(tmp_path / "wave.png"), "--data", str(folder), "--vgg-weights", "random",
                 "--export", "false", "--out", str(tmp_path / "run")])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"'{folder / 'bad.parquet'}' is not a readable parquet file" in err
    assert not (tmp_path / "run").exists()
