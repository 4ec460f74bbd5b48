"""Normalised VGG: each filter's mean activation is one on the normalising images; same function up to scale."""

from __future__ import annotations

import pytest
import torch

from fastnst.errors import InputError
from fastnst.image import load_rgb, resize, to_tensor
from fastnst.networks.vgg import VGGFeatures
from fastnst.networks.vgg_normalize import activation_means, list_images, normalize_vgg, stats_path
from tests.conftest import synthetic_rgb

LAYERS = ["relu1_2", "relu2_1", "conv2_2", "relu3_1"]



@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNST_CACHE_DIR", str(tmp_path / "cache"))
    d = tmp_path / "norm"
    (d / "sub").mkdir(parents=True)
    synthetic_rgb(40, 32, seed=11).save(d / "a.png")
    synthetic_rgb(32, 32, seed=12).save(d / "b.jpg")
    synthetic_rgb(36, 28, seed=13).save(d / "sub" / "c.png")
    (d / "notes.txt").write_text("not an image")
    return d


def _images(folder, size):
    return [to_tensor(resize(load_rgb(p), long_edge=size)) for p in list_images(folder)]


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_mean_activation_is_one_and_function_same_up_to_positive_scale(folder, pooling):
    plain = VGGFeatures(LAYERS, arch="vgg19", weights="random", pooling=pooling)
    norm = VGGFeatures(LAYERS, arch="vgg19", weights="random", pooling=pooling)
    scales = normalize_vgg(norm, folder, size=32)
    assert list(scales) == ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"]
    assert all((s > 0).all() for s in scales.values())
    means = activation_means(norm, _images(folder, 32))
    for name, m in means.items():
        alive = scales[name] != 1.0  # dead filters (mean 0) keep their scale of one
        assert alive.float().mean() > 0.5
        assert torch.allclose(m[alive], torch.ones_like(m[alive]), atol=1e-4), name
    x = to_tensor(synthetic_rgb(44, 36, seed=99))  # not a normalising image
    a, b = plain(x), norm(x)
    for name in LAYERS:
        conv = "conv" + name[4:]
        expect = a[name] / scales[conv].view(1, -1, 1, 1)
        assert torch.allclose(b[name], expect, rtol=1e-4, atol=1e-5 * float(expect.abs().max())), name


def test_statistics_are_cached_and_keyed_by_the_images(folder, tmp_path):
    vgg = VGGFeatures(["relu2_1"], arch="vgg16", weights="random")
    first = normalize_vgg(vgg, folder, size=32)
    path = stats_path(vgg, list_images(folder), 32)
    assert path.is_file() and path.parent == tmp_path / "cache" / "vgg-normalize"
    assert vgg.normalize_stats_path == str(path)
    cached = torch.load(path, weights_only=True)
    assert set(cached) == {"conv1_1", "conv1_2", "conv2_1"}
    # a second network loads the same statistics (and applies the same factors)
    again = normalize_vgg(VGGFeatures(["relu2_1"], arch="vgg16", weights="random"), folder, size=32)
    assert all(torch.equal(first[k], again[k]) for k in first)
    synthetic_rgb(30, 30, seed=14).save(folder / "d.png")
    assert stats_path(vgg, list_images(folder), 32) != path


def test_weights_file_caches_next_to_it(folder, tmp_path):
    src = VGGFeatures(["relu5_3"], arch="vgg16", weights="random")  # a full state dict
    weights = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in src.features.state_dict().items()}, weights)
    vgg = VGGFeatures(["relu1_2"], arch="vgg16", weights=str(weights))
    normalize_vgg(vgg, folder, size=32)
    assert vgg.normalize_stats_path.startswith(str(weights) + ".normalize-")


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    vgg = VGGFeatures(["relu1_1"], arch="vgg16", weights="random")
    with pytest.raises(InputError, match="no images in"):
        normalize_vgg(vgg, tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        normalize_vgg(vgg, tmp_path / "missing")
