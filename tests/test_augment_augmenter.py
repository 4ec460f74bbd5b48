"""StyleAugmenter: the callable class for users' pipelines (Ray Data batches, datasets.map), and the renderer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from fastnst.augment import StyleAugmenter
from fastnst.augment.draws import Draws
from fastnst.augment.render import Renderer, check_pictures
from fastnst.errors import ConfigError, InputError
from tests.augment_fixtures import png_bytes
from tests.conftest import synthetic_rgb


@pytest.fixture(scope="module")
def augmenter():
    return StyleAugmenter(styles="mosaic,halftone", strength="0.5,1", seed=1, threads=1)


def test_datasets_style_batch_of_pil_images(augmenter):
    batch = {"image": [synthetic_rgb(32, 24, seed=i) for i in range(3)], "label": [0, 1, 2]}
    out = augmenter(batch)
    assert out["label"] == [0, 1, 2] and len(out["stylized_image"]) == 3
    assert all(isinstance(im, Image.Image) and im.size == (32, 24) for im in out["stylized_image"])
    from fastnst.augment.augmenter import content_key

    draws = Draws.of("mosaic,halftone", "0.5,1", 1)
    assert out["style"] == [draws.draw(content_key(im))[0].name for im in batch["image"]]
    assert out["stylized_image"][0].tobytes() != batch["image"][0].tobytes()


def test_ray_style_numpy_batch_stays_stacked_and_keyed(augmenter):
    images = np.stack([np.asarray(synthetic_rgb(32, 24, seed=i)) for i in range(4)])
    batch = {"image": images, "path": np.array([f"p{i}.jpg" for i in range(4)])}
    keyed = StyleAugmenter(styles="mosaic,halftone", strength="0.5,1", seed=1, key_column="path", threads=1)
    out = keyed(batch)
    assert out["stylized_image"].shape == images.shape and out["stylized_image"].dtype == np.uint8
    draws = Draws.of("mosaic,halftone", "0.5,1", 1)
    assert list(out["style"]) == [draws.draw(f"p{i}.jpg")[0].name for i in range(4)]
    assert list(out["strength"]) == [draws.draw(f"p{i}.jpg")[1] for i in range(4)]
    floats = keyed({"image": images.astype(np.float32) / 255, "path": batch["path"]})["stylized_image"]
    assert floats.dtype == np.float32 and np.abs(floats * 255 - out["stylized_image"]).max() <= 0.51


def test_encoded_images_come_back_encoded_and_bad_rows(augmenter):
    batch = {"image": [png_bytes(0), {"bytes": png_bytes(1), "path": "x.png"}, b"junk"], "id": ["a", "b", "c"]}
    with pytest.raises(InputError, match="cannot be stylised"):
        augmenter(batch)
    skip = StyleAugmenter(styles="mosaic", key_column="id", on_error="skip", format="png", threads=1)
    out = skip(batch)
    assert out["id"] == ["a", "b"]
    assert isinstance(out["stylized_image"][0], bytes) and out["stylized_image"][1]["path"] is None
    assert Image.open(__import__("io").BytesIO(out["stylized_image"][1]["bytes"])).format == "PNG"


def test_pickles_without_its_session(augmenter):
    augmenter({"image": [synthetic_rgb(16, 16)]})  # opens the session
    clone = pickle.loads(pickle.dumps(augmenter))
    assert clone._renderer is None and clone.draws == augmenter.draws


def test_datasets_map(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": [synthetic_rgb(24, 16, seed=i) for i in range(3)], "label": [7, 8, 9]})
    ds = ds.cast_column("image", datasets.Image())
    out = ds.map(StyleAugmenter(styles="brick", threads=1), batched=True, batch_size=2)
    assert out["label"] == [7, 8, 9] and out["style"] == ["brick"] * 3
    assert out[0]["stylized_image"].size == (24, 16)


def test_same_bits_for_any_batch_size_and_thread_count():
    """What lets every engine give the same output: onnxruntime's CPU kernels do not depend on them."""
    images = [np.asarray(synthetic_rgb(40, 32, seed=i)) for i in range(4)]
    picks = [Draws.of("mosaic", "0.7").draw(str(i)) for i in range(4)]
    one = Renderer("cpu", 1, batch_size=1).render(images, picks)
    four = Renderer("cpu", 2, batch_size=4).render(images, picks)
    assert all(np.array_equal(a, b) for a, b in zip(one, four))


def test_style_pictures_need_the_universal_model(tmp_path):
    synthetic_rgb(16, 16).save(tmp_path / "wave.png")
    with pytest.raises(ConfigError, match="universal"):
        check_pictures(Draws.of(f"{tmp_path / 'wave.png'},mosaic").choices)
    assert check_pictures(Draws.of("mosaic").choices) == {}
