"""fastnst.optimize.transfer: Gatys style transfer lowers its loss on tiny images (random VGG), coarse to fine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastnst.errors import ConfigError
from fastnst.image import to_tensor
from fastnst.optimize.transfer import gatys, gatys_result
from tests.conftest import synthetic_rgb
from tests.optimize_fixtures import RANDOM, content, style  # noqa: F401 (fixtures)

# YIQ (NTSC), the colour space of neural-style's -original_colors: the reference the result is held to.
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x):
    return torch.einsum("ij,njhw->nihw", YIQ, x)


def yiq_to_rgb(x):
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(YIQ), x)


def _run(content, style, **kw):
    seen = []
    kw.setdefault("size", 48)
    kw.setdefault("iterations", 8)
    result = gatys_result(content, style, callback=lambda p: seen.append(p), **RANDOM, **kw)
    return result, seen


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_gatys_lowers_loss(content, style, optimizer):
    result, seen = _run(content, style, optimizer=optimizer, init="noise", iterations=10)
    assert result.image.size == (48, 32)
    assert [p.iteration for p in seen] == list(range(1, 11))
    first, last = seen[0].terms["total"], seen[-1].terms["total"]
    assert last < 0.5 * first, (first, last)
    assert set(seen[0].terms) >= {"total", "content", "style", "tv", "style/relu1_1", "style/relu5_1"}
    assert result.terms["total"] < first


def test_style_blend_is_optimised(content, style):
    other = synthetic_rgb(40, 40, seed=9)
    _, seen = _run(content, [style, other], style_blend=[0.7, 0.3], iterations=6)
    assert seen[-1].terms["style"] < seen[0].terms["style"]
    with pytest.raises(ConfigError, match="2 style blend weights for 3 style images"):
        gatys(content, [style, other, style], style_blend=[1, 1], **RANDOM, size=48, iterations=1)


def test_covariance_is_optimised(content, style):
    _, seen = _run(content, style, style_stat="covariance", iterations=6)
    assert seen[-1].terms["style"] < seen[0].terms["style"]


def test_original_colors_keep_content_chroma(content, style):
    result, _ = _run(content, style, original_colors=True, iterations=5)
    plain, _ = _run(content, style, original_colors=False, iterations=5)
    out = rgb_to_yiq(to_tensor(result.image))
    ref = rgb_to_yiq(to_tensor(content.resize(result.image.size)))
    raw = rgb_to_yiq(to_tensor(plain.image))
    inside = (to_tensor(result.image) > 0.01).all(1) & (to_tensor(result.image) < 0.99).all(1)  # not clipped
    assert inside.float().mean() > 0.5
    chroma_err = (out[:, 1:] - ref[:, 1:]).abs().amax(1)[inside].max()
    assert chroma_err < 0.01                       # 8-bit rounding only
    assert (raw[:, 1:] - ref[:, 1:]).abs().amax(1).mean() > 5 * chroma_err  # plain transfer changes colours
    luma_err = (out[:, 0] - raw[:, 0]).abs()[inside]  # the luminance is the stylised one
    assert luma_err.max() < 0.02


def test_original_colors_equal_neural_styles_yiq_transfer(content, style):
    """The stylised luminance with the content's YIQ chroma (neural-style's -original_colors), to 8 bits."""
    x = torch.rand(1, 3, 5, 7)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5)
    kept, _ = _run(content, style, original_colors=True, iterations=3)
    plain, _ = _run(content, style, original_colors=False, iterations=3)  # the same optimisation, colours as they come
    s, c = rgb_to_yiq(to_tensor(plain.image)), rgb_to_yiq(to_tensor(content.resize(plain.image.size, 2)))
    expected = yiq_to_rgb(torch.cat([s[:, :1], c[:, 1:]], dim=1)).clamp(0, 1)
    got = to_tensor(kept.image)
    assert np.allclose((got * 255).numpy(), np.round((got * 255).numpy()), atol=1e-4)  # saved as 8 bits
    assert (got - expected).abs().max() < 2.5 / 255


def test_multiscale_runs_coarse_to_fine(content, style):
    result, seen = _run(content, style, size=64, scales=2, iterations=3)
    assert result.sizes == [(32, 21), (64, 43)]
    assert [p.scale for p in seen] == [1, 1, 1, 2, 2, 2]
    assert seen[-1].size == (64, 43) and result.image.size == (64, 43)
    assert seen[0].text().startswith("scale 1/2 32x21 total")
    _, seen = _run(content, style, size=64, scales=2, iterations=[1, 2])  # one count per scale
    assert [p.scale for p in seen] == [1, 2, 2]
    with pytest.raises(ConfigError, match="3 iteration counts for 2 scales"):
        gatys(content, style, size=64, scales=2, iterations=[1, 1, 1], **RANDOM)


def test_callback_can_stop_early(content, style):
    result = gatys_result(content, style, size=32, iterations=50, **RANDOM, callback=lambda p: p.iteration >= 3)
    assert result.iterations == 3 and result.stopped_early


def test_init_options(content, style, tmp_path):
    path = tmp_path / "init.png"
    synthetic_rgb(20, 20, seed=4).save(path)
    for init in ("style", "noise", str(path)):
        _, seen = _run(content, style, init=init, iterations=1)
        assert seen[0].terms["content"] > 0
    _, seen = _run(content, style, init="content", iterations=1)
    assert seen[0].terms["content"] == 0
    with pytest.raises(ConfigError, match="did you mean 'noise'"):
        gatys(content, style, init="nosie", **RANDOM, size=32, iterations=1)


def test_same_seed_same_image_other_seed_other_image(content, style):
    a, _ = _run(content, style, init="noise", iterations=2, seed=4)
    b, _ = _run(content, style, init="noise", iterations=2, seed=4)
    c, _ = _run(content, style, init="noise", iterations=2, seed=5)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))
