"""Training options declared once: :class:`TrainConfig` (``fastnst train``) and :class:`SRTrainConfig`
(``fastnst train-sr``) on :class:`RunConfig` (what every run shares), with their checks.

Each field carries its default, help and bounds (:func:`fastnst.options.option`); :meth:`RunConfig.check`
checks an instance (and the Lightning Trainer arguments it carries) before anything is written, and the run
trusts the checked object. :mod:`fastnst.training.parser` turns the same fields into command-line flags, so
a new option is one edit. Torch-free at import (torch and Lightning are imported by the checks that need them).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastnst import checks
from fastnst.cpu import PRECISIONS
from fastnst.constants import (DEFAULT_VGG_NORMALIZE, JOHNSON_CONTENT_LAYERS, JOHNSON_CONTENT_WEIGHT,
                               JOHNSON_STYLE_LAYERS, JOHNSON_STYLE_WEIGHT, JOHNSON_TV_WEIGHT, SR_NORMS, SR_SKIPS)
from fastnst.errors import ConfigError, did_you_mean, unknown_choice
from fastnst.options import base_type, check_options, field_types, flag_name, option

LR_SCHEDULES = ("constant", "cosine", "step")
# What --from trains of the base network: norms (a new style's instance-norm scale and shift only: Dumoulin,
# Shlens and Kudlur 2017, section 4.3) or all (every weight, starting from the base's).
FINETUNE_CHOICES = ("norms", "all")
# Paper (Johnson et al. 2016, section 4.2): 40,000 iterations at batch size 4 (about two COCO epochs).
DEFAULT_STEPS = 40_000
# Loss weights: fastnst.constants.JOHNSON_*_WEIGHT (their calibration is told there; PerceptualLoss's defaults).
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = JOHNSON_CONTENT_WEIGHT, JOHNSON_STYLE_WEIGHT, JOHNSON_TV_WEIGHT
# Wall-clock interval between checkpoints (chosen: a killed run loses at most 3 minutes; writing a johnson
# checkpoint (~20 MB with Adam state) takes well under a second, so the cost is negligible).
DEFAULT_CHECKPOINT_MINUTES = 3.0

SR_LOSSES = ("perceptual", "pixel")
# Paper (section 4.2): 288x288 crops, batch 4, Adam 1e-3, 200k iterations, blur sigma 1.0.
SR_IMAGE_SIZE = 288
SR_STEPS = 200_000
BLUR_SIGMA = 1.0
# Paper: feature reconstruction at relu2_2. TV weight: the paper cross-validates it in [1e-6, 1e-4]
# for its loss scale; here the feature term is relative (divided by the target features' mean square),
# and the TV weight is chosen so that TV is about 1% of the loss late in training (configs/sr-x4.yaml).
SR_FEATURE_LAYER = "relu2_2"
SR_TV_WEIGHT = 1.0

# Trainer settings a run uses unless told otherwise (also the CLI's defaults for --trainer.*).
# log_every_n_steps=1: per-step losses in the CSV; no validation loop (previews come from a callback);
# the model summary is noise for one fixed network.
TRAINER_DEFAULTS: dict[str, Any] = {"log_every_n_steps": 1, "enable_model_summary": False,
                                    "num_sanity_val_steps": 0, "limit_val_batches": 0}
# Trainer arguments a run sets itself (options of its own, or fixed parts of a run).
TRAINER_FIXED = ("max_steps", "max_epochs", "default_root_dir", "enable_checkpointing")
# Options that name files: relative ones in a config file are taken from the config file's folder.
PATH_OPTIONS = ("style", "data", "out", "resume", "vgg_weights", "from_model")


@dataclass
class RunConfig:
    """Options every training run shares (data, sizes, schedule, outputs, checkpoints) and ``trainer``:
    Lightning Trainer arguments (``accelerator``, ``devices``, ``precision``, ``logger``, ``callbacks``, ...)."""

    default_steps: ClassVar[int] = DEFAULT_STEPS

    data: str = option("coco", "content images: coco (streamed from the Hugging Face hub), a hub dataset id, "
                               "a folder of images, or .parquet file(s)")
    out: str | None = option(None, "output folder (default: checkpoints/<name>, or the --resume file's folder)")
    image_size: int = option(256, "training crop size (paper: 256)", low=16)
    batch_size: int = option(4, "images per step (paper: 4)", low=1)
    steps: int | None = option(None, f"optimisation steps (default: {DEFAULT_STEPS}, paper; unlimited when "
                                     f"--epochs is given)", low=1)
    epochs: int | None = option(None, "passes over the data", low=1)
    lr: float = option(1e-3, "Adam learning rate (paper: 1e-3)", above=0)
    lr_schedule: str = option("constant", "constant (paper), cosine (to 1% over the run) or step (x0.1 at 75%)",
                              choices=LR_SCHEDULES)
    vgg_weights: str | None = option(None, "imagenet, random or PATH (default: $FASTNST_VGG_WEIGHTS, else imagenet)")
    seed: int = option(0, "random seed", low=0, high=2**32 - 1)
    resume: str | None = option(None, "continue from a last.ckpt")
    overwrite: bool = option(False, "replace an earlier run in --out")
    num_workers: int | None = option(None, "data loader processes (default: spare cores, at most 4)", low=0)
    num_previews: int = option(4, "images held out for the preview grids", low=0)
    preview_every: int = option(500, "steps between preview grids (0: at the start and end only)", low=0)
    checkpoint_every: int = option(1000, "steps between checkpoints (also written every --checkpoint-minutes)",
                                   low=1)
    checkpoint_minutes: float = option(DEFAULT_CHECKPOINT_MINUTES, "minutes between checkpoints, whatever the "
                                                                   "step (0: steps only)", low=0)
    export: bool = option(True, "export the verified ONNX model at the end")
    data_split: str = option("train", "hub dataset split")
    precision: str = option("auto", "number format: auto (bfloat16 autocast, Lightning's bf16-mixed, on a CPU with "
                                    "AVX512-BF16 or AMX; float32 elsewhere, exactly as before), fp32 or bf16; "
                                    "--trainer.precision overrides it", choices=PRECISIONS)
    trainer: dict[str, Any] = option(help="Lightning Trainer arguments", cli=False, default_factory=dict)

    @classmethod
    def build(cls, *args: Any, **options: Any) -> Any:
        """An instance from positional fields (``style, data, out`` for :class:`TrainConfig`) and keywords;
        keywords that are not fields are Lightning Trainer arguments (checked by :meth:`check`), and so is a
        ``precision`` that is not one of fastnst's (a Lightning value such as 'bf16-mixed')."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "trainer"]
        positional = [n for n in ("style", "data", "out") if n in names]
        if len(args) > len(positional):
            raise TypeError(f"at most {len(positional)} positional arguments ({', '.join(positional)})")
        values = dict(zip(positional, (os.fspath(a) if isinstance(a, os.PathLike) else a for a in args)))
        trainer = dict(options.pop("trainer", None) or {})
        if options.get("precision") is not None and options["precision"] not in PRECISIONS:
            trainer["precision"] = options.pop("precision")  # a Lightning precision such as 'bf16-mixed'
        for key, value in options.items():
            (values if key in names else trainer)[key] = value
        return cls(**values, trainer=trainer)

    @classmethod
    def checked(cls, config: Any = None, *args: Any, **options: Any) -> Any:
        """``config`` checked when it is an instance of this class (no other arguments then); else an instance
        built from ``config``, ``args`` and ``options`` (:meth:`build`), checked."""
        if isinstance(config, cls):
            if args or options:
                raise TypeError(f"a {cls.__name__} takes no other arguments; set them on the {cls.__name__}")
        else:
            config = cls.build(*([config] if config is not None else []), *args, **options)
        return config.check()

    def check(self) -> "RunConfig":
        """Check every option (types, bounds, choices, trainer arguments) and fill in derived defaults;
        FastNSTError before anything is written. Returns ``self``."""
        hints = field_types(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, os.PathLike):
                setattr(self, f.name, os.fspath(value))
            elif base_type(hints[f.name])[0] is int:
                setattr(self, f.name, checks.whole(flag_name(f), value, minimum=-2**63, allow_none=True))
        check_options(self)
        for f in dataclasses.fields(self):
            if base_type(hints[f.name])[0] is float and getattr(self, f.name) is not None:
                setattr(self, f.name, float(getattr(self, f.name)))
        self.image_size, self.batch_size, _ = checks.train_sizes(self.image_size, self.batch_size,
                                                                 getattr(self, "style_size", None), self.device())
        self.num_workers = checks.workers(self.num_workers)
        if self.steps is None and self.epochs is None:
            self.steps = self.default_steps
        self.trainer = check_trainer_options(self.trainer)
        self.trainer = trainer_precision(self.precision, self.trainer, self.device())
        from fastnst.networks.vgg import resolve_weights

        self.vgg_weights = resolve_weights(self.vgg_weights) if self.uses_vgg() else None
        return self

    def uses_vgg(self) -> bool:
        """Whether the run has a VGG loss network (and so needs ``vgg_weights``)."""
        return True

    def device(self) -> str:
        """'cuda' when the trainer runs on a GPU, else 'cpu' (for memory estimates)."""
        import torch

        accelerator = str(self.trainer.get("accelerator") or "auto")
        gpu = accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available())
        return "cuda" if gpu else "cpu"


@dataclass
class TrainConfig(RunConfig):
    """Everything ``fastnst train`` / :func:`fastnst.training.run.run_training` takes (defaults: Johnson et al.
    2016)."""

    style: list[str] | str | None = option(
        None, "style image (a file, a painting name such as starry_night, downloaded once, or a generated style "
              "such as mosaic); required. Repeat it to train one network for several styles (conditional instance "
              "norm; pick or blend them with fastnst stylize --style)")
    style_scales: list[float] | str | None = option(
        None, "several styles: one factor per style on its style loss, e.g. 1,0.5,2 (default: all 1)")
    style_size: int | None = option(None, "long side of the style image (default: its size, at most 512)", low=16)
    arch: str = option("johnson", "network preset: johnson (paper) or fast")
    content_weight: float = option(CONTENT_WEIGHT, "content loss weight (chosen on real VGG16 features)", low=0)
    style_weight: float = option(STYLE_WEIGHT, "style loss weight (chosen on real VGG16 features)", low=0)
    tv_weight: float = option(TV_WEIGHT, "total variation weight", low=0)
    content_layers: list[str] | str = option(help="VGG16 layers, comma-separated (paper: relu2_2)",
                                             default_factory=lambda: list(JOHNSON_CONTENT_LAYERS))
    style_layers: list[str] | str = option(help="VGG16 layers, comma-separated (paper: relu1_2,relu2_2,relu3_3,"
                                                "relu4_3)", default_factory=lambda: list(JOHNSON_STYLE_LAYERS))
    vgg_normalize: str = option(DEFAULT_VGG_NORMALIZE, "loss-network normalisation: rms (one loss scale for any "
                                "VGG weights), mean (Gatys' normalised VGG) or none (raw features)")
    channels_last: bool = option(True, "NHWC convolutions (faster on CPU)")
    from_model: str | None = option(None, "start from a trained network instead of from scratch: builtin (the "
                                          "shipped multi-style network) or a .safetensors/.ckpt of fastnst train; "
                                          "its architecture replaces --arch", flag="--from", metavar="MODEL")
    finetune: str = option("norms", "with --from: norms (learn only the new style's instance-norm scale and shift, "
                                    "Dumoulin et al. 2017; minutes) or all (every weight)", choices=FINETUNE_CHOICES)

    def check(self) -> "TrainConfig":
        from fastnst.networks.transformer import PRESETS
        from fastnst.networks.vgg import check_layers

        if self.arch not in PRESETS:  # before the style images are read
            raise unknown_choice("architecture", self.arch, PRESETS)
        if not self.style:
            raise ConfigError("--style is required: pass the style image, e.g. --style wave.jpg (repeat it for one "
                              "network with several styles)")
        self.style = style_list(self.style)
        if self.from_model is not None:
            self.from_model = base_network(self.from_model)
            if len(self.style) != 1:
                raise ConfigError("--from learns one new style; give one --style")
        super().check()
        self.content_layers = list(check_layers(self.content_layers))
        self.style_layers = list(check_layers(self.style_layers))
        if self.style_scales is not None:
            if len(self.style) == 1:
                raise ConfigError("--style-scales applies to several styles; leave it out for one --style")
            self.style_scales = check_style_scales(self.style_scales, len(self.style))
        return self


@dataclass
class SRTrainConfig(RunConfig):
    """Everything ``fastnst train-sr`` / :func:`fastnst.training.sr.run_sr_training` takes (defaults: the paper)."""

    default_steps: ClassVar[int] = SR_STEPS

    image_size: int = option(SR_IMAGE_SIZE, "high-resolution training crop size (paper: 288)", low=16)
    steps: int | None = option(None, f"optimisation steps (default: {SR_STEPS}, paper; unlimited when --epochs "
                                     f"is given)", low=1)
    factor: int = option(4, "up-sampling factor: 2, 4 or 8 (paper: 4, 8)")
    loss: str = option("perceptual", "perceptual (relu2_2 feature loss + TV, paper) or pixel (MSE, the paper's "
                                     "baseline)", choices=SR_LOSSES)
    feature_layer: str = option(SR_FEATURE_LAYER, "VGG16 layer of the feature loss (paper: relu2_2)")
    feature_weight: float = option(1.0, "feature loss weight", low=0)
    pixel_weight: float = option(1.0, "pixel loss weight", low=0)
    tv_weight: float | None = option(None, f"total variation weight (default: {SR_TV_WEIGHT:g} for perceptual, "
                                           f"0 for pixel)", low=0)
    blur_sigma: float = option(BLUR_SIGMA, "Gaussian blur before down-sampling, pixels (paper: 1.0)", low=0, high=10)
    channels: int = option(64, "network width (paper: 64)", low=1, high=1024)
    num_residual: int = option(4, "residual blocks (paper: 4)", low=0, high=64)
    norm: str = option("batch", "batch (paper) or none", choices=SR_NORMS)
    skip: str = option("none", "none (paper) or bicubic: learn a residual over the bicubic enlargement "
                               "(faster to train)", choices=SR_SKIPS)

    def uses_vgg(self) -> bool:
        return self.loss == "perceptual"

    def check(self) -> "SRTrainConfig":
        from fastnst.networks.sr import SR_FACTORS
        from fastnst.networks.vgg import check_layers

        if isinstance(self.factor, bool) or self.factor not in SR_FACTORS:
            raise ConfigError(f"--factor must be one of {', '.join(map(str, SR_FACTORS))}, got {self.factor}")
        super().check()
        if self.image_size % self.factor or self.image_size // self.factor < 8:
            raise ConfigError(f"the image size must be a multiple of the factor {self.factor} with low-resolution "
                              f"crops of at least 8 pixels, got {self.image_size}; try "
                              f"{max(8 * self.factor, self.image_size // self.factor * self.factor)}")
        if self.tv_weight is None:  # the paper's baseline is the plain pixel loss
            self.tv_weight = SR_TV_WEIGHT if self.loss == "perceptual" else 0.0
        if self.uses_vgg():
            self.feature_layer = check_layers(self.feature_layer)[0]
        return self


# Decoder training (universal style transfer, Li et al. 2017 section 3.1): reconstruct the input from its
# VGG features. Paper: pixel + λ·feature loss with λ = 1; COCO. Chosen: 256² crops, batch 8, Adam 1e-4 as
# the reference PyTorch ports of WCT train theirs; the feature term is a mean square on the normalised VGG.
DECODER_STEPS = 20_000
DECODER_FEATURE_WEIGHT = 1.0


@dataclass
class DecoderTrainConfig(RunConfig):
    """Everything ``fastnst train-decoder`` / :func:`fastnst.training.decoder.run_decoder_training` takes."""

    default_steps: ClassVar[int] = DECODER_STEPS

    level: int = option(4, "the encoder layer the decoder inverts: 1..4 for relu1_1 ... relu4_1", low=1, high=4)
    net: str = option("vgg16", "the VGG encoder: vgg16 or vgg19 (its weights: --vgg-weights)",
                      choices=("vgg16", "vgg19"))
    width: float = option(1.0, "decoder width: a factor on the mirrored encoder's channels", low=0.125, high=2.0)
    batch_size: int = option(8, "images per step", low=1)
    steps: int | None = option(None, f"optimisation steps (default: {DECODER_STEPS}; unlimited when --epochs is "
                                     f"given)", low=1)
    lr: float = option(1e-4, "Adam learning rate", above=0)
    pixel_weight: float = option(1.0, "weight of the pixel loss (mean squared error, paper: 1)", low=0)
    feature_weight: float = option(DECODER_FEATURE_WEIGHT, "weight of the feature loss at the level's layer "
                                                           "(paper: 1)", low=0)
    vgg_normalize: str = option(DEFAULT_VGG_NORMALIZE, "encoder normalisation: rms (unit activations, the "
                                "universal model's), mean or none")
    export: bool = option(False, "(decoders are exported together: fastnst export-universal)")

    def check(self) -> "DecoderTrainConfig":
        from fastnst.constants import VGG_NORMALIZE_CHOICES

        if self.vgg_normalize not in VGG_NORMALIZE_CHOICES:
            raise unknown_choice("VGG normalisation", str(self.vgg_normalize), VGG_NORMALIZE_CHOICES)
        super().check()
        stride = 2 ** (self.level - 1)
        if self.image_size % stride:
            raise ConfigError(f"--image-size must be a multiple of {stride} for a level-{self.level} decoder (the "
                              f"encoder halves the image {self.level - 1} times), got {self.image_size}")
        if self.pixel_weight == 0 and self.feature_weight == 0:
            raise ConfigError("--pixel-weight and --feature-weight are both 0: nothing to train")
        return self


def check_trainer_options(options: dict[str, Any]) -> dict[str, Any]:
    """Lightning Trainer arguments checked: known names, and on the CPU no more processes than CPUs."""
    import pytorch_lightning as pl
    import torch

    valid = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self", *TRAINER_FIXED}
    for key in options:
        if key not in valid:
            raise ConfigError(f"unknown option '{key}'{did_you_mean(key, sorted(valid))}; training takes "
                              f"fastnst's options and Lightning Trainer arguments")
    cpus = checks.available_cpus()
    accelerator = str(options.get("accelerator") or "auto")
    devices = options.get("devices")
    if isinstance(devices, str) and devices.strip().isdigit():  # jsonargparse keeps "1000" a string
        devices = int(devices)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and isinstance(devices, int) and not isinstance(devices, bool) and devices > cpus:
        raise ConfigError(f"--trainer.devices {devices} on the CPU starts {devices} processes, but this process "
                          f"may use {cpus} CPUs; use at most {cpus}")
    nodes = options.get("num_nodes")
    if isinstance(nodes, int) and not 1 <= nodes <= 4096:
        raise ConfigError(f"--trainer.num_nodes must be between 1 and 4096, got {nodes}")
    return dict(options)


def trainer_precision(precision: str, options: dict[str, Any], device: str) -> dict[str, Any]:
    """Trainer ``options`` with Lightning's ``precision`` set from fastnst's ``precision`` choice: bf16 ->
    'bf16-mixed' (autocast; weights and optimiser stay float32); fp32 -> nothing set (Lightning's '32-true', as
    before); 'auto' -> :func:`fastnst.cpu.choose_precision` for ``device``. A ``--trainer.precision`` of the
    user's is kept (ConfigError when ``precision`` names another format)."""
    from fastnst.cpu import choose_precision

    if options.get("precision") is not None:
        given = str(options["precision"])
        if precision != "auto" and ("bf16" in given) != (precision == "bf16"):
            raise ConfigError(f"--precision {precision} and --trainer.precision {given} disagree; give one of them")
        return dict(options)
    if choose_precision(precision, device) == "bf16":
        return {**options, "precision": "bf16-mixed"}
    return dict(options)


def base_network(spec: str | os.PathLike) -> str:
    """The weights file of ``--from``: 'builtin' (the shipped network's weights) or an existing file."""
    from fastnst.errors import InputError

    spec = os.fspath(spec)
    if spec == "builtin":
        from fastnst.styles.builtin import weights_path

        return str(weights_path())
    if not os.path.isfile(spec):
        raise InputError(f"--from '{spec}' does not exist; pass builtin or a .safetensors/.ckpt written by fastnst "
                         f"train")
    if spec.endswith(".onnx"):
        raise ConfigError(f"--from '{spec}' is an ONNX model; training starts from weights: pass the .safetensors "
                          f"that fastnst train wrote beside it, or builtin")
    return spec


def style_list(style: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """One style path (or name) or several, as a list of strings."""
    if isinstance(style, (str, os.PathLike)):
        return [os.fspath(style)]
    return [os.fspath(s) for s in style]


def check_style_scales(scales: Sequence[float] | str | None, count: int) -> list[float]:
    """Per-style loss factors: ``count`` finite positive numbers (a list or 'a,b,c'); None: all 1."""
    if scales is None:
        return [1.0] * count
    if isinstance(scales, str):
        scales = [v for v in scales.split(",") if v.strip()]
    try:
        values = [float(v) for v in scales]
    except (TypeError, ValueError):
        raise ConfigError(f"style scales must be numbers, got {scales!r}") from None
    if len(values) != count:
        raise ConfigError(f"{len(values)} style scales for {count} styles; give one per --style")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"style scales must be finite and positive, got {values}")
    return values
