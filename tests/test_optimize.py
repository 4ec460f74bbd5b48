"""fastnst.optimize: every method lowers (or for DeepDream raises) its objective on tiny images, random VGG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastnst.errors import ConfigError, FastNSTError
from fastnst.image import to_tensor
from fastnst import optimize as O
from tests.conftest import synthetic_rgb

RANDOM = {"vgg_weights": "random"}
# YIQ (NTSC), the colour space of neural-style's -original_colors: the reference the result is held to.
YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(x):
    return torch.einsum("ij,njhw->nihw", YIQ, x)


def yiq_to_rgb(x):
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(YIQ), x)



@pytest.fixture(scope="module")
def content():
    return synthetic_rgb(48, 32, seed=1)


@pytest.fixture(scope="module")
def style():
    return synthetic_rgb(40, 40, seed=5)


def _run(content, style, **kw):
    seen = []
    kw.setdefault("size", 48)
    kw.setdefault("iterations", 8)
    result = O.gatys_result(content, style, callback=lambda p: seen.append(p), **RANDOM, **kw)
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


def test_score_matches_the_optimisers_loss(content, style):
    settings = dict(content_weight=3e4, style_weight=5e8, tv_weight=2.0, style_scale=0.8,
                    style_layer_weights=[1, 2, 1, 0.5, 1], pooling="avg")
    result, seen = _run(content, style, iterations=4, **settings)
    scored = O.score(result.image, content, style, **RANDOM, **settings)
    assert scored.keys() == result.terms.keys()
    for k, v in result.terms.items():
        assert scored[k] == pytest.approx(v, rel=1e-4, abs=1e-7), k
    # and for an intermediate image: score of the tensor the optimiser evaluated equals what it reported
    seen_x = []
    O.gatys_result(content, style, size=48, iterations=2, **RANDOM, **settings,
                   callback=lambda p: seen_x.append((p.terms, p.image())))
    terms, img = seen_x[0]  # iteration 1 evaluates the init (the content, exactly representable in 8 bits)
    s = O.score(img, content, style, **RANDOM, **settings)
    assert s["total"] == pytest.approx(terms["total"], rel=1e-4)


def test_style_blend(content, style):
    other = synthetic_rgb(40, 40, seed=9)
    s_one = O.score(content, None, style, **RANDOM)
    s_blend_10 = O.score(content, None, [style, other], style_blend=[1, 0], **RANDOM)
    s_blend_01 = O.score(content, None, [style, other], style_blend=[0, 3], **RANDOM)
    s_other = O.score(content, None, other, **RANDOM)
    assert s_blend_10["style"] == pytest.approx(s_one["style"], rel=1e-5)
    assert s_blend_01["style"] == pytest.approx(s_other["style"], rel=1e-5)
    result, seen = _run(content, [style, other], style_blend=[0.7, 0.3], iterations=6)
    assert seen[-1].terms["style"] < seen[0].terms["style"]
    with pytest.raises(ConfigError, match="2 style blend weights for 3 style images"):
        O.gatys(content, [style, other, style], style_blend=[1, 1], **RANDOM, size=48, iterations=1)


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


def test_covariance_differs_from_gram_and_is_optimised(content, style):
    gram = O.score(content, None, style, style_stat="gram", **RANDOM)
    cov = O.score(content, None, style, style_stat="covariance", **RANDOM)
    assert cov["style"] != pytest.approx(gram["style"], rel=1e-3)
    # covariance ignores a constant offset of the features: a style image's own statistic is zero loss
    assert O.score(style, None, style, style_stat="covariance", **RANDOM)["style"] == pytest.approx(0, abs=1e-6)
    _, seen = _run(content, style, style_stat="covariance", iterations=6)
    assert seen[-1].terms["style"] < seen[0].terms["style"]


def test_multiscale_runs_coarse_to_fine(content, style):
    result, seen = _run(content, style, size=64, scales=2, iterations=3)
    assert result.sizes == [(32, 21), (64, 43)]
    assert [p.scale for p in seen] == [1, 1, 1, 2, 2, 2]
    assert seen[-1].size == (64, 43) and result.image.size == (64, 43)
    _, seen = _run(content, style, size=64, scales=2, iterations=[1, 2])  # one count per scale
    assert [p.scale for p in seen] == [1, 2, 2]
    with pytest.raises(ConfigError, match="3 iteration counts for 2 scales"):
        O.gatys(content, style, size=64, scales=2, iterations=[1, 1, 1], **RANDOM)


def test_callback_can_stop_early(content, style):
    result = O.gatys_result(content, style, size=32, iterations=50, **RANDOM, callback=lambda p: p.iteration >= 3)
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
        O.gatys(content, style, init="nosie", **RANDOM, size=32, iterations=1)


def test_invert_reaches_lower_feature_loss_than_start(content, tmp_path):
    r = O.invert_result(content, "relu2_2", size=48, iterations=15, **RANDOM)
    assert r.terms["feature"] < 0.3 * r.extra["start_terms"]["feature"]
    assert r.image.size == (48, 32)
    other = tmp_path / "other.png"
    synthetic_rgb(48, 32, seed=7).save(other)
    r2 = O.invert_result(content, "relu3_1", init=str(other), size=48, iterations=8, **RANDOM)
    assert r2.terms["feature"] < r2.extra["start_terms"]["feature"]


def test_texture_any_size_lowers_style_loss(style):
    seen = []
    r = O.texture_result(style, (56, 24), iterations=15, **RANDOM, callback=seen.append)
    assert r.image.size == (56, 24)
    assert "content" not in r.terms
    assert r.terms["style"] < 0.7 * seen[0].terms["style"]  # the result is the best image evaluated
    assert r.terms["style"] <= 1.01 * min(p.terms["style"] for p in seen)


def test_dream_raises_activation(content):
    seen = []
    r = O.dream_result(content, "relu3_3", size=48, octaves=2, iterations=4, jitter=4, **RANDOM, callback=seen.append)
    assert r.sizes == [(34, 23), (48, 32)]
    assert r.image.size == (48, 32)
    assert r.terms["activation"] > 1.2 * r.terms["start_activation"]


def test_public_api_returns_pil(content, style):
    import fastnst

    img = fastnst.gatys(content, style, size=32, iterations=1, **RANDOM)
    assert img.size == (32, 21) and img.mode == "RGB"
    assert isinstance(fastnst.score(img, content, style, **RANDOM)["total"], float)


@pytest.mark.parametrize("kwargs, message", [
    (dict(content_layers="relu4_9"), "did you mean 'relu4_"),
    (dict(style_layers="relu1_1,rleu2_1"), "did you mean 'relu2_1'"),
    (dict(iterations=0), "iterations must be an integer >= 1"),
    (dict(size=0), "size must be an integer >= 1"),
    (dict(size=8), "too small for the chosen layers"),
    (dict(size=32, scales=3), "fewer --scales"),
    (dict(style_layer_weights=[1, 2]), "2 style layer weights for 5 style layers"),
    (dict(content_weight=-1), "content weight must be zero or positive"),
    (dict(optimizer="sgd"), "unknown optimizer 'sgd'"),
    (dict(net="vgg11"), "unknown loss network"),
])
def test_bad_options_are_one_line_errors(content, style, kwargs, message):
    with pytest.raises(FastNSTError, match=message) as info:
        O.gatys(content, style, **RANDOM, **{"iterations": 1, **kwargs})
    assert "\n" not in str(info.value)


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


def test_jobs_check_everything_before_work_and_write_their_files(content, style, tmp_path):
    content.save(tmp_path / "c.png")
    style.save(tmp_path / "s.png")
    out = tmp_path / "out.png"
    job = O.GatysJob(content=str(tmp_path / "c.png"), style=[str(tmp_path / "s.png")], output=str(out), size=32,
                     iterations=2, save_every=1, vgg_weights="random")
    report = O.run_job(job)
    assert report.outputs == [str(out)] and report.intermediates == [str(tmp_path / "out-0001.png"),
                                                                     str(tmp_path / "out-0002.png")]
    assert report.summary()["loss"] == report.results["gatys"].terms and "wrote" in report.text()
    with pytest.raises(FastNSTError, match="exists; pass --overwrite"):
        O.run_job(job)
    with pytest.raises(ConfigError, match=r"--iterations must be <= 1e\+06, got 10000000"):
        O.run_job(O.DreamJob(image=str(tmp_path / "c.png"), output=str(tmp_path / "d.png"), iterations=10 ** 7))
    with pytest.raises(ConfigError, match="--octaves must be >= 1 and <= 32"):
        O.run_job(O.DreamJob(image=str(tmp_path / "c.png"), output=str(tmp_path / "d.png"), octaves=40))
    assert not (tmp_path / "d.png").exists()


def test_invert_layers_shares_one_network_and_counts_over_layers(content):
    seen = []
    results = O.invert_layers(content, "relu1_2,relu2_1", size=32, iterations=2, callback=seen.append, **RANDOM)
    assert list(results) == ["relu1_2", "relu2_1"]
    assert [(p.iteration, p.total, p.stage) for p in seen] == [
        (1, 4, "relu1_2 (1/2)"), (2, 4, "relu1_2 (1/2)"), (3, 4, "relu2_1 (2/2)"), (4, 4, "relu2_1 (2/2)")]
    grid = O.inversion_grid(content, results)
    assert grid.width > 3 * 32


OWN_MODULES = ("fastnst/optimize/__init__.py", "fastnst/losses/__init__.py", "fastnst/networks/vgg.py",
               "fastnst/networks/vgg_normalize.py", "fastnst/networks/vgg_import.py", "fastnst/commands/optimize.py", "fastnst/commands/vgg.py")
NN_OVERRIDES = {"train"}  # torch.nn.Module's signature: VGGFeatures.train(mode) ignores mode on purpose


def dead_code(source: str) -> list[str]:
    """Private module-level names nothing uses, conditionals with identical branches, unused parameters."""
    import ast

    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    found = []
    for node in tree.body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        found += [f"unused {n}" for n in names if n.startswith("_") and not n.startswith("__") and n not in used]
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and ast.dump(node.body) == ast.dump(node.orelse):
            found.append(f"identical branches at line {node.lineno}")
        if isinstance(node, ast.If) and node.orelse and [ast.dump(x) for x in node.body] == \
                [ast.dump(x) for x in node.orelse]:
            found.append(f"identical branches at line {node.lineno}")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in NN_OVERRIDES:
            if any(isinstance(x, ast.Raise) and "NotImplementedError" in ast.dump(x) for x in node.body):
                continue  # an interface stub
            inside = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                if a.arg not in ("self", "cls") and not a.arg.startswith("_") and a.arg not in inside:
                    found.append(f"unused parameter {a.arg} of {node.name}")
    return found


@pytest.mark.parametrize("path", OWN_MODULES)
def test_no_dead_code(path):
    from pathlib import Path

    assert dead_code((Path(__file__).resolve().parent.parent / path).read_text()) == []
