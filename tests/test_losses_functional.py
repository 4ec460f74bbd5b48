"""fastnst.losses.functional: the loss maths on small known tensors; behaviour, not recorded numbers."""

import pytest
import torch

from fastnst.errors import ConfigError
from fastnst.losses.functional import (check_shape, content_loss, covariance_matrix, gram_matrix, inverse_energy,
                                       inversion_loss, layer_weights, style_layer_losses, style_loss,
                                       style_statistic, total_variation)


def test_gram_of_a_known_tensor_in_both_memory_formats():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4.0  # F Fᵀ / (C·H·W)
    assert torch.allclose(gram_matrix(f)[0], expected)
    assert torch.allclose(gram_matrix(f.contiguous(memory_format=torch.channels_last))[0], expected)


def test_gram_is_symmetric_size_invariant_and_quadratic_in_scale():
    f = torch.rand(2, 5, 6, 7)
    g = gram_matrix(f)
    assert g.shape == (2, 5, 5) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(gram_matrix(f.repeat(1, 1, 3, 2)), g, atol=1e-6)  # the same statistics, 6x the map
    assert torch.allclose(gram_matrix(3.0 * f), 9.0 * g, rtol=1e-5)
    assert torch.linalg.eigvalsh(g.double()).min() > -1e-6  # positive semi-definite


def test_covariance_is_the_gram_of_the_centred_features():
    f = torch.rand(1, 3, 4, 4)
    centred = f - f.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(covariance_matrix(f), gram_matrix(centred))
    assert torch.allclose(covariance_matrix(f + 10.0), covariance_matrix(f), atol=1e-4)
    assert torch.allclose(covariance_matrix(torch.full((1, 3, 4, 4), 2.0)), torch.zeros(1, 3, 3))


def test_style_statistic_names():
    f = torch.rand(1, 3, 4, 4)
    assert torch.equal(style_statistic(f, "gram"), gram_matrix(f))
    assert torch.equal(style_statistic(f, "covariance"), covariance_matrix(f))
    with pytest.raises(ConfigError, match="did you mean 'gram'"):
        style_statistic(f, "gramm")


def test_content_loss_is_a_mean_square_whose_gradient_vanishes_at_the_target():
    assert float(content_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))) == pytest.approx(5.0)
    target = torch.rand(1, 4, 5, 5)
    x = target.clone().requires_grad_(True)
    loss = content_loss(x, target)
    loss.backward()
    assert float(loss.detach()) == 0 and float(x.grad.abs().max()) == 0
    batch = torch.rand(3, 4, 5, 5)  # one target broadcasts over a batch
    assert torch.allclose(content_loss(batch, target), ((batch - target) ** 2).mean())


def test_inversion_loss_is_relative_to_the_target_energy():
    f, target = torch.rand(1, 4, 5, 5), torch.rand(1, 4, 5, 5)
    assert inverse_energy(target) == pytest.approx(1.0 / float(target.pow(2).mean()))
    assert float(inversion_loss(10.0 * f, 10.0 * target)) == pytest.approx(float(inversion_loss(f, target)), rel=1e-5)
    assert float(inversion_loss(torch.zeros_like(target), target)) == pytest.approx(1.0)  # nothing matched: 1


def test_style_loss_vanishes_at_the_target_and_weights_scale_it():
    f = torch.rand(2, 3, 4, 4, requires_grad=True)
    at_target = style_layer_losses({"a": f}, {"a": gram_matrix(f.detach())})["a"]
    at_target.backward()
    assert float(at_target.detach()) == 0 and float(f.grad.abs().max()) == 0
    other = {"a": torch.rand(1, 3, 3), "b": torch.rand(1, 3, 3)}
    feats = {"a": f.detach(), "b": f.detach() * 2}
    plain = style_layer_losses(feats, other)
    weighted = style_layer_losses(feats, other, {"a": 3.0})
    assert torch.allclose(weighted["a"], 3.0 * plain["a"]) and torch.equal(weighted["b"], plain["b"])
    assert torch.allclose(style_loss(feats, other, {"a": 3.0}), weighted["a"] + weighted["b"])


def test_style_loss_of_a_known_tensor():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    g = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4.0
    assert float(style_loss({"a": f}, {"a": torch.zeros(1, 2, 2)})) == pytest.approx(float((g ** 2).mean()))


def test_item_weights_scale_each_batch_item():
    feats = {"a": torch.rand(2, 3, 4, 4)}
    targets = {"a": torch.rand(2, 3, 3)}
    per_item = [style_layer_losses({"a": feats["a"][i:i + 1]}, {"a": targets["a"][i:i + 1]})["a"] for i in range(2)]
    got = style_layer_losses(feats, targets, item_weights=torch.tensor([0.0, 4.0]))["a"]
    assert torch.allclose(got, 4.0 * per_item[1] / 2)  # the mean over the batch, item 0 weighed 0


def test_layer_weights_is_the_one_check_of_style_layer_weights():
    assert layer_weights(["a", "b"], None) == {"a": 1.0, "b": 1.0}
    assert layer_weights(["a", "b"], [2, 0]) == {"a": 2.0, "b": 0.0}
    assert layer_weights(["a", "b"], {"b": 3}) == {"a": 1.0, "b": 3.0}
    with pytest.raises(ConfigError, match=r"1 style layer weights for 2 style layers \(a, b\)"):
        layer_weights(["a", "b"], [1])
    with pytest.raises(ConfigError, match="unknown style layer 'c'"):
        layer_weights(["a", "b"], {"c": 1})
    with pytest.raises(ConfigError, match="zero or positive"):
        layer_weights(["a"], [-1])


def test_total_variation_of_known_images():
    img = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).view(1, 1, 2, 2)
    assert float(total_variation(img)) == pytest.approx(1.0 + 4.0)  # horizontal steps of 1, vertical of 2
    assert float(total_variation(torch.full((1, 3, 5, 5), 0.7))) == 0
    ramp = torch.linspace(0, 1, 5).view(1, 1, 1, 5).expand(1, 1, 5, 5)
    assert float(total_variation(ramp)) == pytest.approx(0.25 ** 2)


def test_terms_check_their_input_shapes():
    with pytest.raises(ValueError, match=r"features must be a 4-d tensor \(N, C, H, W\), got \(3, 4\)"):
        gram_matrix(torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"images must be a 4-d tensor"):
        total_variation(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="does not fit features"):
        content_loss(torch.rand(1, 4, 5, 5), torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"style target of a has shape \(1, 3, 3\)"):
        style_loss({"a": torch.rand(1, 4, 5, 5)}, {"a": torch.rand(1, 3, 3)})
    with pytest.raises(ValueError, match="all zeros"):
        inversion_loss(torch.rand(1, 2, 3, 3), torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match=r"x must be a 3-d tensor \(C, C\), got list"):
        check_shape([1], "x", 3, "(C, C)")


def test_style_norm_factors_measure_against_the_style_or_the_contents_distance():
    from fastnst.losses.functional import style_norm_factors

    targets = {"a": torch.full((1, 2, 2), 2.0)}
    content = {"a": torch.full((1, 2, 2), 3.0)}
    assert style_norm_factors(targets, "reference") is None
    assert style_norm_factors(targets, "style") == {"a": pytest.approx(1 / 4)}
    assert style_norm_factors(targets, "distance", content) == {"a": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="content"):
        style_norm_factors(targets, "distance")
    with pytest.raises(ConfigError, match="did you mean 'style'"):
        style_norm_factors(targets, "styl")
