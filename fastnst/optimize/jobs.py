"""The jobs behind ``fastnst gatys|invert|texture|dream``: their options (the command's flags), the checks
made before any work, the run (:func:`run_job`: progress to a callback, intermediate images, Ctrl-C) and
the report.

Each job is a dataclass whose fields are declared once (:func:`fastnst.options.option`), most of them by
the settings it shares with the public functions (:mod:`fastnst.optimize.settings`); ``check()`` checks
them all, the outputs included, before ``execute()`` calls the public function.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import torch
from PIL import Image

from fastnst import checks
from fastnst.constants import VGG_NORMALIZE_CHOICES
from fastnst.errors import ConfigError, FastNSTError, InputError, OptimizationInterrupted
from fastnst.image import load_rgb
from fastnst.networks.vgg import check_layers
from fastnst.optimize.deepdream import dream_result
from fastnst.optimize.inversion import inversion_grid, invert_layers
from fastnst.optimize.loop import OptimizationResult, ProgressCallback, Step, terms_text
from fastnst.optimize.settings import (DREAM_ITERATIONS, DREAM_LAYER, DREAM_SIZE, GATYS_ITERATIONS, GATYS_SIZE,
                                       INIT_CHOICES, INVERT_ITERATIONS, INVERT_LAYER, INVERT_SIZE, INVERT_TV_WEIGHT,
                                       MAX_SCALES, TEXTURE_ITERATIONS, TEXTURE_SIZE, TEXTURE_TV_WEIGHT, DreamSettings,
                                       GatysSettings, NetworkSettings, OptimizerSettings, check_settings,
                                       iterations_option)
from fastnst.optimize.synthesis import texture_result
from fastnst.optimize.transfer import gatys_result
from fastnst.options import flag_name, option


def parse_size(size: Any, flag: str = "--size") -> int | tuple[int, int]:
    """An output size: a positive int N, or 'WxH' / (width, height); each side under the pixel cap."""
    text = str(size).lower()
    if isinstance(size, (tuple, list)) or "x" in text:
        parts = size if isinstance(size, (tuple, list)) else text.split("x", 1)
        if len(parts) != 2:
            raise ConfigError(f"{flag} must be N or WxH, got '{size}'")
        w, h = (parse_size(p, flag) for p in parts)  # each side's square under the pixel cap, so w x h too
        return int(w), int(h)
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a positive integer, got '{size}'") from None
    if value <= 0 or isinstance(size, bool):
        raise ConfigError(f"{flag} must be a positive integer, got {size}")
    return checks.side(flag, value)  # its square under the pixel cap




def _side(default: Any, help: str = "long side of the output in pixels") -> Any:
    return option(default, help)


def _required(help: str) -> Any:
    return option("", help)


@dataclass
class RunOptions:
    """What every optimisation job takes besides its loss: output, randomness, device."""

    output: str = option("", "output image (.png, .jpg, .webp, ...)", short="-o")
    overwrite: bool = option(False, "replace existing output files")
    seed: int = option(0, "random seed for noise and jitter", low=0, high=2 ** 63 - 1)
    device: str = option("auto", "cpu, cuda, cuda:N or auto (auto: cuda if available)")

    TASK: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    CLI: ClassVar[dict[str, dict[str, Any]]] = {"output": {"required": True},
                                                "vgg_normalize": {"nargs": "?", "const": "mean"}}
    SKIP: ClassVar[tuple[str, ...]] = ()
    #: The field the command also takes as its positional argument (``fastnst gatys photo.jpg``), or "".
    POSITIONAL: ClassVar[str] = ""

    def inputs(self) -> list[Any]:
        """The input files (outputs must not replace them)."""
        return []

    def targets(self) -> list[Path]:
        """The files the job writes (checked before any work)."""
        return [Path(self.output)]

    def interrupted(self, iteration: int) -> Path:
        """Where the current image goes when the job is interrupted after ``iteration`` iterations: beside the
        output, named as such (``out-interrupted-0123.png``; a free name, nothing is replaced)."""
        out = Path(self.output)
        path = out.with_name(f"{out.stem}-interrupted-{iteration:04d}{out.suffix}")
        n = 2
        while path.exists() and not self.overwrite:
            path = out.with_name(f"{out.stem}-interrupted-{iteration:04d}-{n}{out.suffix}")
            n += 1
        return path

    def check(self) -> None:
        """Everything that can be checked before any work: options, sizes, memory, outputs."""
        from fastnst.outputs import check_target

        check_settings(self)
        if not str(self.output).strip():
            raise ConfigError("-o/--output is empty; give an image file name such as out.png")
        for f in dataclasses.fields(self):
            if (self.CLI.get(f.name, {}).get("required") or f.name == self.POSITIONAL) and not getattr(self, f.name):
                either = f" (fastnst {self.TASK} FILE or {flag_name(f)} FILE)" if f.name == self.POSITIONAL else ""
                raise ConfigError(f"{flag_name(f)} is missing; give the {f.metadata['help'].split(' (')[0]}{either}")
        for target in self.targets():  # out.xyz: refused now, not after the optimisation
            check_target(target, self.overwrite, inputs=[i for i in self.inputs() if isinstance(i, (str, os.PathLike))
                                                          and str(i) not in INIT_CHOICES])
        w, h = _pair(parse_size(getattr(self, "size")))
        checks.optimize_size(w, h, "the image", "--size", self.device_kind())

    def device_kind(self) -> str:
        """'cuda' or 'cpu': whose memory the job's estimates are checked against."""
        return "cuda" if str(self.device).startswith("cuda") else "cpu"

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        """Run the optimisation(s): ``{name: result}``."""
        raise NotImplementedError

    def images(self, results: Mapping[str, OptimizationResult]) -> list[tuple[Path, Image.Image]]:
        """What to write where, once the results are in."""
        return [(Path(self.output), next(iter(results.values())).image)]


@dataclass
class StyleJobOptions(RunOptions, OptimizerSettings, GatysSettings):
    """What gatys and texture share: style images (files or names), intermediate images."""

    style: list[str] = option(help="style image(s) or names (a painting such as starry_night, downloaded once; a "
                              "generated style such as mosaic); repeat or list several to blend them",
                              metavar="S", default_factory=list)
    save_every: int = option(0, "also write OUTPUT-stem-NNNN.ext every N iterations (kept if interrupted)",
                             low=0, metavar="N")

    CLI: ClassVar[dict[str, dict[str, Any]]] = {**RunOptions.CLI, "style": {
        "action": "extend", "nargs": "+", "type": str, "required": True}}

    def inputs(self) -> list[Any]:
        return [*self.style, getattr(self, "init", None)]

    def intermediate(self, n: int) -> Path:
        """The intermediate image written after ``n`` iterations."""
        out = Path(self.output)
        return out.with_name(f"{out.stem}-{n:04d}{out.suffix}")

    def check(self) -> None:
        super().check()
        GatysSettings.check(self)  # the loss settings' own checks (RunOptions.check comes first in the MRO)
        self.check_blend(len(self.style))
        side = max(1, int(round(max(_pair(parse_size(getattr(self, "size")))) * self.style_scale)))
        hint = "use a smaller --style-scale or --size"
        what = f"the style image at --style-scale {self.style_scale:g}"
        checks.pixels(side, side, what, hint)
        checks.memory(checks.FORWARD_BYTES_PER_PIXEL * side * side * len(self.style), f"the style image at {side} px",
                      hint, self.device_kind())
        total = getattr(self, "iterations") * getattr(self, "scales", 1)
        for n in range(self.save_every, total + 1, self.save_every) if self.save_every and not self.overwrite else ():
            if self.intermediate(n).exists():
                raise ConfigError(f"intermediate image '{self.intermediate(n)}' exists; pass --overwrite or choose "
                                  f"another output name")

    def resolved_styles(self) -> list[str]:
        """Style files for the ``style`` values: files as given, painting names downloaded once, generated made."""
        from fastnst.styles.registry import resolve_style

        return [str(resolve_style(s)) for s in self.style]

    def settings(self) -> GatysSettings:
        """The loss settings of this job."""
        return GatysSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(GatysSettings)})


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return size if isinstance(size, tuple) else (size, size)


@dataclass
class GatysJob(StyleJobOptions):
    """``fastnst gatys``: style transfer by optimising the image (Gatys et al. 2016)."""

    content: str = _required("content image")
    init: str = option("content", "content | noise | style | PATH")
    iterations: int = iterations_option(GATYS_ITERATIONS)
    size: int = _side(GATYS_SIZE)
    scales: int = option(1, "coarse-to-fine scales, each twice the previous size", low=1, high=MAX_SCALES)
    original_colors: bool = option(False, "keep the content's colours (luminance transfer)")

    TASK: ClassVar[str] = "gatys"
    DESCRIPTION: ClassVar[str] = "Style transfer by optimising the image (Gatys et al. 2016)."
    POSITIONAL: ClassVar[str] = "content"

    def inputs(self) -> list[Any]:
        return [self.content, *super().inputs()]

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        return {"gatys": gatys_result(self.content, self.resolved_styles(), settings=self.settings(), init=self.init,
                                      optimizer=self.optimizer, iterations=self.iterations, lr=self.lr,
                                      size=parse_size(self.size), scales=self.scales,
                                      original_colors=self.original_colors, seed=self.seed, device=self.device,
                                      callback=callback)}


@dataclass
class TextureJob(StyleJobOptions):
    """``fastnst texture``: texture synthesis from style statistics (Gatys et al. 2015)."""

    init: str = option("noise", "noise (paper) | style | PATH")
    iterations: int = iterations_option(TEXTURE_ITERATIONS)
    size: str = _side(str(TEXTURE_SIZE), "output size: N (square) or WxH")
    tv_weight: float = option(TEXTURE_TV_WEIGHT, "total-variation weight (0: paper; a texture has no photo's "
                                                  "speckle to guard against)", low=0)

    TASK: ClassVar[str] = "texture"
    DESCRIPTION: ClassVar[str] = "Texture synthesis from style statistics (Gatys et al. 2015)."
    SKIP: ClassVar[tuple[str, ...]] = ("content_layers", "content_weight")

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        size = _pair(parse_size(self.size))
        return {"texture": texture_result(self.resolved_styles(), size, settings=self.settings(),
                                          iterations=self.iterations, optimizer=self.optimizer, lr=self.lr,
                                          init=self.init, seed=self.seed, device=self.device, callback=callback)}


@dataclass
class ImageJobOptions(RunOptions, NetworkSettings):
    """What invert and dream share: one image, raw features unless asked (their losses are scale-free)."""

    image: str = _required("image to start from / to invert")
    vgg_normalize: Optional[str] = option("none", "loss-network normalisation: none (their losses are scale-free "
                                          "already), mean (Gatys' normalised VGG; the bare flag; implied by "
                                          "--normalize-images) or rms", choices=VGG_NORMALIZE_CHOICES)

    POSITIONAL: ClassVar[str] = "image"

    def inputs(self) -> list[Any]:
        return [self.image]

    def normalization(self) -> str | None:
        """``vgg_normalize`` for :func:`build_vgg`: a folder given means Gatys' mean over it."""
        if self.normalize_images is None:
            return self.vgg_normalize
        if not os.path.isdir(self.normalize_images):
            raise InputError(f"--normalize-images '{self.normalize_images}' is not a folder")
        if self.vgg_normalize == "rms":
            raise ConfigError("--normalize-images with invert/dream takes --vgg-normalize mean (or no --vgg-normalize)")
        return self.normalize_images

    def check(self) -> None:
        super().check()
        self.normalization()


@dataclass
class InvertJob(ImageJobOptions, OptimizerSettings):
    """``fastnst invert``: reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015)."""

    layer: Optional[str] = option(None, f"layer to invert (default {INVERT_LAYER})")
    layers: Optional[list[str]] = option(None, "several layers, comma-separated: writes OUTPUT-stem-LAYER.ext for each")
    grid: bool = option(False, "with --layers: also write OUTPUT as the image and its reconstructions side by side")
    init: str = option("noise", "noise | PATH: start from another image")
    tv_weight: float = option(INVERT_TV_WEIGHT, "total-variation weight", low=0)
    iterations: int = iterations_option(INVERT_ITERATIONS)
    size: int = _side(INVERT_SIZE)

    TASK: ClassVar[str] = "invert"
    DESCRIPTION: ClassVar[str] = "Reconstruct an image from one layer's activations (Mahendran & Vedaldi 2015)."

    def inputs(self) -> list[Any]:
        return [self.image, self.init]

    def chosen_layers(self) -> tuple[str, ...]:
        """The layers to invert (checked)."""
        if self.layer and self.layers:
            raise ConfigError("give --layer or --layers, not both")
        if self.grid and not self.layers:
            raise ConfigError("--grid needs --layers a,b,c")
        return check_layers(self.layers or self.layer or INVERT_LAYER, self.net)

    def targets(self) -> list[Path]:
        out, names = Path(self.output), self.chosen_layers()
        if not self.layers:
            return [out]
        return [out.with_name(f"{out.stem}-{n}{out.suffix}") for n in names] + ([out] if self.grid else [])

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        init = self.init if self.init == "noise" else load_rgb(self.init)
        return invert_layers(load_rgb(self.image), self.chosen_layers(), net=self.net, size=parse_size(self.size),
                             pooling=self.pooling, vgg_weights=self.vgg_weights, vgg_normalize=self.normalization(),
                             device=self.device, callback=callback, init=init, iterations=self.iterations,
                             optimizer=self.optimizer, lr=self.lr, tv_weight=self.tv_weight, seed=self.seed)

    def images(self, results: Mapping[str, OptimizationResult]) -> list[tuple[Path, Image.Image]]:
        if not self.layers:
            return [(Path(self.output), results[self.chosen_layers()[0]].image)]
        out = [(t, r.image) for t, r in zip(self.targets(), results.values())]
        return out + ([(Path(self.output), inversion_grid(self.image, results))] if self.grid else [])


@dataclass
class DreamJob(DreamSettings, ImageJobOptions):
    """``fastnst dream``: DeepDream, amplify what a layer sees, octave by octave."""

    layer: str = option(DREAM_LAYER, "layer whose activations are amplified")
    iterations: int = iterations_option(DREAM_ITERATIONS)
    size: int = _side(DREAM_SIZE)

    TASK: ClassVar[str] = "dream"
    DESCRIPTION: ClassVar[str] = "DeepDream: amplify what a layer sees, octave by octave."

    def execute(self, callback: ProgressCallback | None) -> dict[str, OptimizationResult]:
        return {"dream": dream_result(self.image, self.layer, net=self.net, octaves=self.octaves,
                                      octave_scale=self.octave_scale, iterations=self.iterations, step=self.step,
                                      jitter=self.jitter, size=parse_size(self.size), pooling=self.pooling,
                                      vgg_weights=self.vgg_weights, vgg_normalize=self.normalization(),
                                      seed=self.seed, device=self.device, callback=callback)}


JOBS: dict[str, type[RunOptions]] = {cls.TASK: cls for cls in (GatysJob, InvertJob, TextureJob, DreamJob)}


@dataclass
class JobReport:
    """What :func:`run_job` did: the files written, the results, the intermediate images."""

    task: str
    outputs: list[str]
    results: dict[str, OptimizationResult]
    intermediates: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        if self.task == "invert":
            return {"task": "invert", "outputs": self.outputs,
                    "layers": {name: {"loss": r.terms, "start_loss": r.extra["start_terms"],
                                      "iterations": r.iterations, "seconds": round(r.seconds, 3)}
                               for name, r in self.results.items()}}
        r = next(iter(self.results.values()))
        extra = {"layer": r.extra["layer"]} if self.task == "dream" else {"intermediates": self.intermediates}
        return {"task": self.task, "outputs": self.outputs, "size": list(r.image.size), "iterations": r.iterations,
                "seconds": round(r.seconds, 3), "sizes": [list(s) for s in r.sizes], "loss": r.terms, **extra}

    def text(self) -> str:
        """A short human-readable summary (the final loss terms included)."""
        if self.task == "invert":
            lines = [f"{name}: feature loss {r.extra['start_terms']['feature']:.4g} -> {r.terms['feature']:.4g} "
                     f"(tv {r.terms['tv']:.4g}) in {r.iterations} iterations, {r.seconds:.1f} s"
                     for name, r in self.results.items()]
            return "\n".join(lines + [f"wrote {', '.join(self.outputs)}"])
        r = next(iter(self.results.values()))
        w, h = r.image.size
        return (f"wrote {', '.join(self.outputs)} ({w}x{h}) after {r.iterations} iterations in {r.seconds:.1f} s\n"
                f"final: {terms_text(r.terms, detailed=True)}")


def run_job(job: RunOptions, callback: ProgressCallback | None = None) -> JobReport:
    """Check ``job`` (a :data:`JOBS` class) before any work, run it and write its images.

    ``save_every`` intermediate images are written as the optimisation goes. Ctrl-C (KeyboardInterrupt; the
    command turns SIGTERM into one too) keeps the current image, written whole as
    :meth:`RunOptions.interrupted`, and raises :class:`OptimizationInterrupted` saying where it is (and which
    intermediate image is the last).
    """
    from fastnst.image import save_image

    job.check()
    cpus = checks.available_cpus()
    if torch.get_num_threads() > cpus:  # the process may use fewer CPUs than the machine has
        torch.set_num_threads(cpus)
    saved: list[Path] = []
    every = getattr(job, "save_every", 0)
    last: list[Step] = []  # the latest step: its image is the current one

    def step(p: Step) -> bool:
        last[:] = [p]
        stop = bool(callback(p)) if callback is not None else False
        if every and p.iteration % every == 0:
            path = job.intermediate(p.iteration)  # type: ignore[attr-defined]
            save_image(p.image(), path, overwrite=True if job.overwrite else path in saved)
            saved.append(path)
        return stop

    try:
        results = job.execute(step)
    except KeyboardInterrupt:
        raise OptimizationInterrupted(_interrupted(job, last[0] if last else None, saved)) from None
    written = []
    for path, image in job.images(results):
        save_image(image, path, overwrite=job.overwrite)
        written.append(str(path))
    return JobReport(job.TASK, written, results, [str(s) for s in saved])


def _interrupted(job: RunOptions, last: Step | None, saved: list[Path]) -> str:
    """Keep the current image of an interrupted job (whole, under a name that says so); what to tell the user."""
    from fastnst.image import save_image

    later = f"; the last intermediate image is {saved[-1]}" if saved else ""
    if last is None:
        return "interrupted before the first iteration; nothing was written" + later
    path = job.interrupted(last.iteration)
    try:
        save_image(last.image(), path, overwrite=job.overwrite)
    except (FastNSTError, KeyboardInterrupt) as exc:  # a second Ctrl-C, a full disk: say so, lose nothing else
        return (f"interrupted after {last.iteration} of {last.total} iterations; the current image could not be "
                f"kept ({exc or 'interrupted again'}){later}")
    return f"interrupted after {last.iteration} of {last.total} iterations; kept the current image as {path}{later}"
