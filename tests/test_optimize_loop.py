"""fastnst.optimize.loop: the pixel optimiser on a known quadratic (no network), its steps and its result."""

from __future__ import annotations

import math

import pytest
import torch

from fastnst.errors import FastNSTError
from fastnst.image import round_to_8bit
from fastnst.optimize.loop import Step, minimize, optimize_one_scale, terms_text

TARGET = torch.linspace(0.1, 0.9, 3 * 4 * 5).view(1, 3, 4, 5)


def quadratic(x: torch.Tensor) -> dict[str, torch.Tensor]:
    d = (x - TARGET).pow(2).sum()
    return {"total": d, "distance": d}


@pytest.mark.parametrize("optimizer, lr, iterations", [("lbfgs", None, 5), ("adam", 0.05, 60)])
def test_minimize_reaches_the_minimum(optimizer, lr, iterations):
    reports = []
    x, done, stopped = minimize(torch.zeros_like(TARGET), quadratic, optimizer, iterations, lr,
                                lambda terms, cur: reports.append(terms["total"]) or False)
    assert done == iterations == len(reports) and not stopped
    assert float(quadratic(x)["total"]) < 1e-2 * reports[0]


def test_pixels_stay_in_range_and_the_best_image_is_returned():
    target = TARGET * 3 - 1  # partly outside [0, 1]: the clamped optimum is the target clipped
    seen = []
    x, _, _ = minimize(torch.full_like(TARGET, 0.5), lambda v: {"total": (v - target).pow(2).sum()}, "lbfgs", 10, None,
                       lambda terms, cur: seen.append(terms["total"]) or False)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert float((x - target).pow(2).sum()) == pytest.approx(min(seen))
    assert torch.allclose(x, target.clamp(0, 1), atol=1e-3)


def test_report_stops_and_a_non_finite_loss_is_an_error():
    _, done, stopped = minimize(torch.zeros_like(TARGET), quadratic, "adam", 50, None, lambda t, c: True)
    assert done == 1 and stopped
    with pytest.raises(FastNSTError, match="NaN or infinite; lower the loss weights or --lr"):
        minimize(torch.zeros_like(TARGET), lambda v: {"total": v.sum() * math.inf}, "lbfgs", 3, None,
                 lambda t, c: False)


def test_one_scale_reports_steps_and_scores_the_saved_image():
    steps = []
    r = optimize_one_scale("demo", torch.zeros_like(TARGET), quadratic, "lbfgs", 4, None, steps.append, dict, "a stage")
    assert [(s.task, s.iteration, s.total, s.size, s.stage) for s in steps] == \
        [("demo", i, 4, (5, 4), "a stage") for i in range(1, 5)]
    assert r.iterations == 4 and r.sizes == [(5, 4)] and not r.stopped_early and r.image.size == (5, 4)
    from fastnst.image import to_tensor

    saved = to_tensor(r.image)
    assert torch.equal(saved, round_to_8bit(saved))
    assert r.terms["total"] == pytest.approx(float(quadratic(saved)["total"]), rel=1e-5)
    assert steps[-1].image().size == (5, 4)


def test_step_text_and_terms_text():
    terms = {"total": 1.23456, "style": 0.5, "style/relu1_1": 0.25}
    assert terms_text(terms) == "total 1.235  style 0.5"
    assert terms_text(terms, detailed=True) == "total 1.235  style 0.5  style/relu1_1 0.25"
    step = Step("gatys", 3, 10, 2, 3, (64, 43), terms, 1.0)
    assert step.text() == "scale 2/3 64x43 total 1.235  style 0.5"
    assert Step("invert", 1, 2, 1, 1, (8, 8), {"total": 2.0}, 0.1, stage="relu2_2").text() == "relu2_2 total 2"
    assert Step("texture", 1, 2, 1, 1, (8, 8), {"total": 2.0}, 0.1).text() == "total 2"
