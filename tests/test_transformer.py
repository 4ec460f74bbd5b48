import pytest
import torch

from fastnst.errors import ConfigError
from fastnst.networks.transformer import PRESETS, TransformerNet, build_transformer, count_flops


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
