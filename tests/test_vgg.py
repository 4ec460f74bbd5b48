import pickle
import urllib.error

import pytest
import torch

from fastnst.constants import VGG16_LAYERS, VGG19_LAYERS
from fastnst.errors import UnsafePickleError, ConfigError, WeightsUnavailableError
from fastnst.networks import vgg as vgg_mod
from fastnst.networks.vgg import VGGFeatures, check_layers, resolve_weights


def test_layer_names():
    assert VGG16_LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert len(VGG16_LAYERS) == 31 and len(VGG19_LAYERS) == 37
    assert "relu5_4" in VGG19_LAYERS and "relu5_4" not in VGG16_LAYERS


def test_taps_shapes_and_truncation():
    net = VGGFeatures(["relu1_2", "relu2_2", "conv3_1"], weights="random")
    out = net(torch.rand(2, 3, 32, 24))
    assert list(out) == ["relu1_2", "relu2_2", "conv3_1"]
    assert out["relu1_2"].shape == (2, 64, 32, 24)
    assert out["relu2_2"].shape == (2, 128, 16, 12)
    assert out["conv3_1"].shape == (2, 256, 8, 6)
    assert len(net.features) == VGG16_LAYERS.index("conv3_1") + 1  # nothing deeper is built
    sub = net(torch.rand(1, 3, 16, 16), layers=["relu1_2"])
    assert list(sub) == ["relu1_2"]


def test_unknown_layer_suggests():
    with pytest.raises(ConfigError, match="did you mean 'relu2_2'"):
        check_layers("relu2_3", "vgg16")
    with pytest.raises(ConfigError, match="valid:"):
        VGGFeatures(["relu9_9"], weights="random")
    assert check_layers("relu1_1, relu5_4", "vgg19") == ("relu1_1", "relu5_4")
    with pytest.raises(ConfigError):
        check_layers("relu5_4", "vgg16")
    with pytest.raises(ConfigError, match="loss network"):
        VGGFeatures(["relu1_1"], arch="vgg11", weights="random")


def test_frozen_eval_and_gradient_to_input():
    net = VGGFeatures(["relu2_1"], weights="random")
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["relu2_1"].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_random_is_deterministic_and_seeded():
    x = torch.rand(1, 3, 16, 16)
    a = VGGFeatures(["relu2_2"], weights="random")(x)["relu2_2"]
    torch.manual_seed(123)
    b = VGGFeatures(["relu2_2"], weights="random")(x)["relu2_2"]
    assert torch.equal(a, b)


def test_conv_tap_not_clobbered_by_inplace_relu():
    net = VGGFeatures(["conv1_2", "relu1_2", "relu2_1"], weights="random")
    out = net(torch.rand(1, 3, 16, 16))
    assert float(out["conv1_2"].min()) < 0  # a conv output keeps its negative values
    assert torch.equal(out["relu1_2"], out["conv1_2"].clamp_min(0))


def test_normalisation_inside():
    net = VGGFeatures(["conv1_1"], weights="random")
    x = torch.rand(1, 3, 8, 8)
    conv = net.features[0]
    expected = conv((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) /
                    torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    assert torch.allclose(net(x)["conv1_1"], expected, atol=1e-5)


def test_avg_pooling():
    net = VGGFeatures(["relu2_1"], weights="random", pooling="avg")
    assert isinstance(net.features[4], torch.nn.AvgPool2d)
    with pytest.raises(ConfigError):
        VGGFeatures(["relu2_1"], weights="random", pooling="min")


@pytest.mark.parametrize("fmt", ["pth_full", "pth_features", "safetensors"])
def test_local_weights_file(tmp_path, fmt):
    ref = VGGFeatures(["relu2_2"], arch="vgg16", weights="random")
    full = VGGFeatures(["relu5_3"], arch="vgg16", weights="random")  # all conv layers
    sd = {k: v * 0.5 for k, v in full.features.state_dict().items()}
    if fmt == "pth_full":
        path = tmp_path / "vgg16.pth"
        torch.save({"features." + k: v for k, v in sd.items()} | {"classifier.0.weight": torch.zeros(2)}, path)
    elif fmt == "pth_features":
        path = tmp_path / "vgg16.pt"
        torch.save(sd, path)
    else:
        from safetensors.torch import save_file
        path = tmp_path / "vgg16.safetensors"
        save_file({"features." + k: v.contiguous() for k, v in sd.items()}, str(path))
    net = VGGFeatures(["relu2_2"], weights=str(path))
    assert torch.allclose(net.features[0].weight, ref.features[0].weight * 0.5)


def test_bad_weights_files(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        VGGFeatures(["relu1_1"], weights=str(tmp_path / "nope.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsUnavailableError, match="not a VGG16 state dict"):
        VGGFeatures(["relu1_1"], weights=str(wrong))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(UnsafePickleError, match="is not a weights-only checkpoint.* calls builtins.print"):
        VGGFeatures(["relu1_1"], weights=str(evil))


def test_imagenet_offline_message(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        VGGFeatures(["relu1_1"], weights="imagenet")
    msg = str(info.value)
    assert "--vgg-weights" in msg and "FASTNST_VGG_WEIGHTS" in msg and "vgg16-397923af.pth" in msg


def test_weights_default_from_env(monkeypatch):
    monkeypatch.delenv("FASTNST_VGG_WEIGHTS", raising=False)
    assert resolve_weights(None) == "imagenet"
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", "random")
    assert resolve_weights(None) == "random"
    assert VGGFeatures(["relu1_1"]).weights == "random"
    assert vgg_mod.resolve_weights("imagenet") == "imagenet"


def test_random_weights_independent_of_truncation():
    shallow = VGGFeatures(["relu1_2"], weights="random")
    deep = VGGFeatures(["relu5_3"], weights="random")
    assert torch.equal(shallow.features[2].weight, deep.features[2].weight)


def test_min_side_and_check_size_follow_the_pooling_layers():
    assert vgg_mod.min_side(["relu1_1"], "vgg19") == 1
    assert vgg_mod.min_side(["relu1_1", "relu3_1"], "vgg19") == 4  # two poolings before block 3
    assert vgg_mod.min_side(["relu5_1"], "vgg19") == 16
    vgg_mod.check_size((16, 40), ["relu5_1"], "vgg19", "image")
    with pytest.raises(ConfigError, match=r"image 15x40 is too small for layer relu5_1 \(needs at least 16"):
        vgg_mod.check_size((15, 40), ["relu1_1", "relu5_1"], "vgg19", "image")


def test_normalization_options(tmp_path):
    assert vgg_mod.normalization(None) == ("none", None)
    assert vgg_mod.normalization("rms", tmp_path) == ("rms", str(tmp_path))
    assert vgg_mod.normalization(str(tmp_path)) == ("mean", str(tmp_path))  # a folder: Gatys' mean over it
    with pytest.raises(ConfigError, match="did you mean 'rms'"):
        vgg_mod.normalization("rsm")


def test_build_vgg_is_channels_last_frozen_and_kept_for_the_next_call():
    vgg_mod.clear_vgg_cache()
    a = vgg_mod.build_vgg(["relu2_1"], "vgg16", "random", vgg_normalize="none")
    assert a is vgg_mod.build_vgg(["relu2_1"], "vgg16", "random", vgg_normalize="none")
    assert a.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(not p.requires_grad for p in a.parameters())
    other = vgg_mod.build_vgg(["relu2_1"], "vgg16", "random", pooling="avg", vgg_normalize="none")
    assert other is not a and isinstance(other.features[4], torch.nn.AvgPool2d)
    vgg_mod.clear_vgg_cache()
    assert vgg_mod.build_vgg(["relu2_1"], "vgg16", "random", pooling="avg", vgg_normalize="none") is not other
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(other(x)["relu2_1"], VGGFeatures(["relu2_1"], weights="random", pooling="avg")(x)["relu2_1"],
                          atol=1e-5)
    vgg_mod.clear_vgg_cache()


def test_a_weights_file_needs_only_the_layers_the_network_uses(tmp_path):
    """An encoder cut at relu2_1 loads from a file holding conv1_1..conv2_1 (in float16), not from a shorter one."""
    from safetensors.torch import save_file

    full = VGGFeatures(["relu2_1"], arch="vgg16", weights="random")
    state = {f"features.{k}": v.half() for k, v in full.features.state_dict().items()}
    save_file(state, str(tmp_path / "cut.safetensors"))
    cut = VGGFeatures(["relu2_1"], arch="vgg16", weights=str(tmp_path / "cut.safetensors"))
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(cut(x)["relu2_1"], full(x)["relu2_1"], rtol=1e-2, atol=1e-3)
    with pytest.raises(WeightsUnavailableError, match="missing"):
        VGGFeatures(["relu3_1"], arch="vgg16", weights=str(tmp_path / "cut.safetensors"))
