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
    assert set(cached) == {"conv1_1", "conv1_2", "conv2_1", "gram/relu1_1", "gram/relu1_2", "gram/relu2_1"}
    # a second network loads the same statistics (and applies the same factors)
    again = normalize_vgg(VGGFeatures(["relu2_1"], arch="vgg16", weights="random"), folder, size=32)
    assert all(torch.equal(first[k], again[k]) for k in first)
    # ... read from the cache, not recomputed: statistics edited in the file are the ones applied
    torch.save({k: v * 2 for k, v in cached.items()}, path)
    edited = normalize_vgg(VGGFeatures(["relu2_1"], arch="vgg16", weights="random"), folder, size=32)
    for k in first:
        alive = cached[k] > 0
        assert alive.any() and torch.allclose(edited[k][alive], 2 * first[k][alive]), k
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


def test_rms_statistic_and_style_norms(folder):
    """'rms': every live filter's root-mean-square activation is one; style_norms = 1 / mean(G²)."""
    from fastnst.losses import gram_matrix

    vgg = VGGFeatures(["relu2_1"], arch="vgg16", weights="random")
    scales = normalize_vgg(vgg, folder, size=32, statistic="rms")
    rms = activation_means(vgg, _images(folder, 32), statistic="rms")
    alive = scales["conv2_1"] > 0.1 * scales["conv2_1"].pow(2).mean().sqrt() + 1e-6  # above the floor
    assert alive.float().mean() > 0.5
    assert torch.allclose(rms["conv2_1"][alive], torch.ones(int(alive.sum())), atol=1e-4)
    assert (rms["conv2_1"][~alive] < 1).all()  # floored filters: a smaller gain, so below one
    energy = sum(float(gram_matrix(vgg(x)["relu2_1"].double()).pow(2).mean()) for x in _images(folder, 32)) / 3
    assert vgg.style_norms["relu2_1"] == pytest.approx(1.0 / energy, rel=1e-4)
    assert vgg.normalized == "rms"


def test_default_normalisation_gives_one_loss_scale_for_scaled_weights(tmp_path, monkeypatch):
    """Random weights and the same weights x50 in the first layer (all activations x50) get the same
    weighted content and style losses with the default normalisation (the bundled reference photos)."""
    from fastnst.losses import PerceptualLoss

    monkeypatch.setenv("FASTNST_CACHE_DIR", str(tmp_path / "cache"))
    full = VGGFeatures(["relu5_3"], arch="vgg16", weights="random")  # a whole state dict for the file
    sd = {f"features.{k}": v.clone() for k, v in full.features.state_dict().items()}
    sd["features.0.weight"] *= 50.0
    sd["features.0.bias"] *= 50.0
    big = tmp_path / "x50.pth"
    torch.save(sd, big)
    x = to_tensor(synthetic_rgb(40, 40, seed=5))
    content = to_tensor(synthetic_rgb(40, 40, seed=6))
    style = to_tensor(synthetic_rgb(40, 40, seed=7))
    terms = []
    for weights, normalize in (("random", "rms"), (str(big), "rms"), ("random", "none"), (str(big), "none")):
        vgg = VGGFeatures(["relu1_2", "relu2_2"], arch="vgg16", weights=weights, normalize=normalize)
        loss = PerceptualLoss(vgg, ["relu2_2"], ["relu1_2", "relu2_2"], content_weight=1.0, style_weight=1.0)
        loss.set_style(style)
        with torch.no_grad():
            t = loss(x, content)
        terms.append((float(t["content"]), float(t["style"])))
    (c1, s1), (c2, s2), (c3, s3), (c4, s4) = terms
    assert c1 == pytest.approx(c2, rel=1e-3) and s1 == pytest.approx(s2, rel=1e-3)
    assert c4 / c3 == pytest.approx(2500, rel=1e-2) and s4 / s3 == pytest.approx(50 ** 4, rel=1e-2)  # raw: not invariant
