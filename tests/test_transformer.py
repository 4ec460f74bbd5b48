"""The style network: exact sizes, the paper's structure, presets, the norms' two switches (group_norm for
channels_last training, recorded statistics for tiles) and the names of a network's styles."""

import pytest
import torch
import torch.nn.functional as F

from fastnst.errors import ConfigError
from fastnst.networks.transformer import (PRESETS, AffineInstanceNorm2d, ConditionalInstanceNorm2d, NormStatistics,
                                          TransformerNet, build_transformer, count_flops, network_style_names,
                                          use_layout_friendly_norms)

TINY = {"channels": (4, 8, 8), "num_residual": 1, "end_kernel": 3}


def _randomised(net: TransformerNet, seed: int = 0) -> TransformerNet:
    """Non-trivial norm scales and shifts (fresh ones are 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.4 - 0.2)
    return net.eval()


@pytest.mark.parametrize("arch", list(PRESETS))
@pytest.mark.parametrize("size", [(301, 257), (64, 64), (5, 9), (33, 18)])
def test_exact_size_any_input(arch, size):
    net = build_transformer(arch).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 3, *size))
    assert y.shape == (1, 3, *size)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_transpose_mode_exact_size():
    net = TransformerNet(channels=(4, 8, 8), num_residual=1, upsample="transpose").eval()
    for size in [(17, 23), (16, 16)]:
        assert net(torch.rand(2, 3, *size)).shape == (2, 3, *size)


def test_structure_matches_paper():
    net = build_transformer("johnson")
    assert net.down1.conv.conv.kernel_size == (9, 9) and net.out.conv.kernel_size == (9, 9)
    assert net.down2.conv.conv.stride == (2, 2) and net.down3.conv.conv.stride == (2, 2)
    assert len(net.residuals) == 5
    assert isinstance(net.down1.norm, torch.nn.InstanceNorm2d)
    assert isinstance(net.down1.conv.pad, torch.nn.ReflectionPad2d)


def test_config_roundtrip_and_preset():
    net = build_transformer("fast")
    assert net.preset == "fast"
    clone = TransformerNet.from_config(net.config)
    clone.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 20, 20)
    assert torch.equal(net.eval()(x), clone.eval()(x))
    assert TransformerNet(channels=(8, 8, 8)).preset is None
    with pytest.raises(ConfigError, match="unknown TransformerNet"):
        TransformerNet.from_config({"width": 3})


def test_bad_presets_and_settings():
    with pytest.raises(ConfigError, match="did you mean 'fast'"):
        build_transformer("fasst")
    for kwargs in ({"channels": (1, 2)}, {"num_residual": -1}, {"end_kernel": 4}, {"upsample": "pixel"}):
        with pytest.raises(ConfigError):
            TransformerNet(**kwargs)


def test_fast_preset_is_much_cheaper():
    j = count_flops(build_transformer("johnson"), 256, 256)
    f = count_flops(build_transformer("fast"), 256, 256)
    assert 19e9 < j < 21e9  # ~20 GFLOPs at 256² (Johnson et al.'s network)
    assert j / f > 5


def test_gradients_flow():
    net = TransformerNet(channels=(4, 8, 8), num_residual=1)
    y = net(torch.rand(2, 3, 12, 12))
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_single_style_norms_have_the_plain_instance_norm_state_dict():
    net = TransformerNet(**TINY)
    plain = torch.nn.InstanceNorm2d(4, affine=True)
    assert type(net.down1.norm) is AffineInstanceNorm2d
    assert net.down1.norm.state_dict().keys() == plain.state_dict().keys()  # weight, bias: old files load


@pytest.mark.parametrize("num_styles", [1, 2])
def test_layout_friendly_norms_give_the_same_output(num_styles):
    torch.manual_seed(0)
    net = _randomised(TransformerNet(**TINY, num_styles=num_styles), seed=1)
    x = torch.rand(2, 3, 20, 24).contiguous(memory_format=torch.channels_last)
    style = torch.tensor([[1.0, 0.0], [0.3, 0.7]]) if num_styles > 1 else None
    with torch.no_grad():
        ref = net(x, style)
        use_layout_friendly_norms(net)
        norms = [m for m in net.modules() if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d))]
        assert norms and all(m.group_norm for m in norms)
        assert torch.allclose(net(x, style), ref, atol=1e-4)
    assert set(net.state_dict()) == set(TransformerNet(**TINY, num_styles=num_styles).state_dict())


@pytest.mark.parametrize("num_styles", [1, 3])
def test_recorded_statistics_normalise_another_input_as_the_recorded_one(num_styles):
    """A tile run with the whole image's statistics equals the whole image's output on that tile's interior:
    here the 'tile' is the whole image shifted in value, so with the recorded statistics of the original the
    norms see the original's mean and variance, and the output is not the shifted image's own."""
    torch.manual_seed(1)
    net = _randomised(TransformerNet(**TINY, num_styles=num_styles), seed=2)
    style = torch.eye(num_styles)[[num_styles - 1]] if num_styles > 1 else None
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        plain = net(x, style)
        with net.norm_statistics(NormStatistics()) as stats:
            recorded = net(x, style)
        assert torch.equal(recorded, plain)  # recording changes nothing
        norms = [m for m in net.modules() if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d))]
        assert len(stats.values) == len(norms) and stats.values[0][0].shape == (1, 4, 1, 1)
        with net.norm_statistics(stats):
            replayed = net(x, style)
        assert torch.allclose(replayed, plain, atol=1e-5)  # the same statistics: the same picture
        with net.norm_statistics(stats):  # every block replays from the first norm
            assert torch.allclose(net(x, style), replayed)
        own = net(x * 0.5, style)
        with net.norm_statistics(stats):
            fixed = net(x * 0.5, style)
        assert (fixed - own).abs().max() > 1e-2  # normalised with x's statistics, not its own
    assert all(m.statistics is None for m in norms)  # only inside the block
    assert torch.equal(net(x, style), plain)


def test_statistics_stay_with_their_network():
    """Replaying in one network leaves every other network (and torch's instance_norm) alone."""
    torch.manual_seed(2)
    net, other = _randomised(TransformerNet(**TINY), 3), _randomised(TransformerNet(**TINY), 4)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        other_own, net_own = other(x * 0.5), net(x * 0.5)
        original = F.instance_norm
        with net.norm_statistics(NormStatistics()) as stats:
            net(x)
        with net.norm_statistics(stats):
            assert F.instance_norm is original
            assert torch.equal(other(x * 0.5), other_own)  # another network normalises as usual
            assert (net(x * 0.5) - net_own).abs().max() > 1e-2  # this one with x's statistics


def test_style_names_of_a_network():
    assert network_style_names(TransformerNet(**TINY, num_styles=2, style_names=["a", "b"])) == ["a", "b"]
    assert network_style_names(TransformerNet(**TINY, num_styles=2)) == ["style0", "style1"]

    class Custom(torch.nn.Module):  # any module with TransformerNet's interface
        num_styles = 2
        config = {"style_names": ["x", "y"]}

    assert network_style_names(Custom()) == ["x", "y"]
    Custom.config = {"style_names": ["x", "x"]}  # not distinct: numbered instead
    assert network_style_names(Custom()) == ["style0", "style1"]


def test_single_style_copy_keeps_the_convolutions_and_takes_a_style_or_the_mean():
    from fastnst.networks.transformer import single_style_copy

    torch.manual_seed(0)
    multi = TransformerNet(**PRESETS["fast"], num_styles=3, style_names=["a", "b", "c"])
    with torch.no_grad():
        for m in multi.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
    x = torch.rand(1, 3, 24, 20)
    one = single_style_copy(multi, "b")
    assert one.num_styles == 1 and one.config == {k: v for k, v in multi.config.items()
                                                   if k not in ("num_styles", "style_names")}
    with torch.no_grad():
        assert torch.allclose(one(x), multi(x, multi.style_weights("b")), atol=1e-5)
        mean = single_style_copy(multi)  # the mean of the styles' scales and shifts: a blend of all three
        assert torch.allclose(mean(x), multi(x, torch.full((1, 3), 1 / 3)), atol=1e-5)
    assert torch.equal(one.down1.conv.conv.weight, multi.down1.conv.conv.weight)
    assert one.down1.conv.conv.weight.data_ptr() != multi.down1.conv.conv.weight.data_ptr()  # a copy


def test_train_only_norms_freezes_everything_else():
    from fastnst.networks.transformer import norm_parameters, train_only_norms

    net = train_only_norms(TransformerNet(**PRESETS["fast"]))
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable and all(".norm" in n for n in trainable)
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == sum(p.numel() for p in norm_parameters(net))
    net(torch.rand(1, 3, 16, 16)).mean().backward()
    assert net.down1.conv.conv.weight.grad is None and net.down1.norm.weight.grad is not None
