"""The optimisation loop over an image's pixels (L-BFGS or Adam), what it reports and what it returns.

The library never prints: each loss evaluation is reported to a callback as a :class:`Step` (the one progress
display is :class:`fastnst.commands.common.Progress`, which the commands feed from these callbacks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from PIL import Image

from fastnst.errors import FastNSTError
from fastnst.image import round_to_8bit, to_pil
from fastnst.optimize.settings import ADAM_LR, LBFGS_HISTORY


def terms_text(terms: Mapping[str, float], detailed: bool = False) -> str:
    """Loss terms as ``total 1.2  content 0.3 ...`` (per-layer ``style/<layer>`` terms only when ``detailed``)."""
    return "  ".join(f"{k} {v:.4g}" for k, v in terms.items() if detailed or "/" not in k)


@dataclass
class Step:
    """What a progress callback sees after each loss evaluation."""

    task: str                      # "gatys", "invert", "texture" or "dream"
    iteration: int                 # 1-based, counted over all scales/octaves (and layers of invert_layers)
    total: int                     # iterations planned over all scales/octaves
    scale: int                     # 1-based scale (octave) index
    scales: int
    size: tuple[int, int]          # (width, height) being optimised
    terms: dict[str, float]        # loss terms of the image just evaluated
    seconds: float                 # since the optimisation started
    _image: Callable[[], Image.Image] = field(repr=False, default=lambda: Image.new("RGB", (1, 1)))
    stage: str = ""                # what is being optimised, when there are several (a layer, a scale)

    def image(self) -> Image.Image:
        """The current image (as it would be saved), computed on request."""
        return self._image()

    def text(self) -> str:
        """This step in one line: the stage (or scale) and the loss terms."""
        stage = self.stage or (f"scale {self.scale}/{self.scales} {self.size[0]}x{self.size[1]}"
                               if self.scales > 1 else "")
        return f"{stage} {terms_text(self.terms)}".strip()


# Called after each loss evaluation; returning True stops the optimisation.
ProgressCallback = Callable[[Step], Union[bool, None]]


@dataclass
class OptimizationResult:
    """Result of an optimisation: the image, the loss terms of that image, and bookkeeping."""

    image: Image.Image
    terms: dict[str, float]
    iterations: int
    seconds: float
    sizes: list[tuple[int, int]]
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def minimize(x: torch.Tensor, evaluate: Callable[[torch.Tensor], dict[str, torch.Tensor]], optimizer: str,
             iterations: int, lr: float | None,
             report: Callable[[dict[str, float], torch.Tensor], bool]) -> tuple[torch.Tensor, int, bool]:
    """Minimise ``evaluate(x)['total']`` over the pixels of ``x`` for ``iterations`` loss evaluations.

    ``report(terms, x)`` runs after every evaluation; returning True stops. L-BFGS (no line search,
    one evaluation per iteration, as in neural-style) or Adam (``optimizer``, checked by the caller);
    pixels are clamped to [0, 1] after each step (as the PyTorch tutorial does), so the saved image is
    the one optimised (measured: without it a texture from noise ended at loss 0.29 while its clamped,
    saved image scored 2.9). Returns (the evaluated image with the lowest loss, evaluations done, stopped early).
    """
    x = x.detach().clone().contiguous().requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=1,
                                                       history_size=LBFGS_HISTORY, tolerance_grad=0.0,
                                                       tolerance_change=0.0)
    else:
        opt = torch.optim.Adam([x], lr=ADAM_LR if lr is None else lr)
    done = 0
    stop = False
    best_loss, best_x = math.inf, x.detach().clone()

    def closure() -> torch.Tensor:
        nonlocal done, stop, best_loss, best_x
        opt.zero_grad(set_to_none=True)
        terms = evaluate(x)
        total = terms["total"]
        if not torch.isfinite(total):
            raise FastNSTError("the loss became NaN or infinite; lower the loss weights or --lr "
                               f"(after {done} iterations)")
        if float(total.detach()) < best_loss:  # L-BFGS without line search can overshoot: keep the best
            best_loss, best_x = float(total.detach()), x.detach().clone()
        total.backward()
        done += 1
        if report({k: float(v.detach()) for k, v in terms.items()}, x):
            stop = True
        return total

    for _ in range(iterations):
        opt.step(closure)
        with torch.no_grad():  # keep pixels displayable: what is optimised is what gets saved
            x.clamp_(0, 1)
        if stop:
            break
    return best_x, done, stop


def optimize_one_scale(task: str, x0: torch.Tensor, evaluate: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                       optimizer: str, iterations: int, lr: float | None, callback: ProgressCallback | None,
                       tidy: Callable[[dict[str, float]], dict[str, float]], stage: str = "") -> OptimizationResult:
    """Optimise ``x0`` at its size with :func:`minimize`, reporting each evaluation (terms through ``tidy``)
    as a :class:`Step` of ``task``; the result holds the saved (8-bit) image's terms."""
    wh = (x0.shape[-1], x0.shape[-2])
    start = time.perf_counter()
    done = 0

    def report(terms: dict[str, float], cur: torch.Tensor) -> bool:
        nonlocal done
        done += 1
        if callback is None:
            return False
        return bool(callback(Step(task, done, iterations, 1, 1, wh, tidy(terms), time.perf_counter() - start,
                                  lambda: to_pil(round_to_8bit(cur)), stage)))

    x, _, stopped = minimize(x0, evaluate, optimizer, iterations, lr, report)
    final = round_to_8bit(x)
    with torch.inference_mode():
        terms = tidy({k: float(v) for k, v in evaluate(final).items()})
    return OptimizationResult(to_pil(final), terms, done, time.perf_counter() - start, [wh], stopped)
