"""Training Johnson et al.'s feed-forward style networks with Lightning.

:class:`StyleTransferModule` holds the :class:`~fastnst.networks.transformer.TransformerNet` being
trained and a :class:`~fastnst.losses.PerceptualLoss` on a frozen VGG16, both passed in
(:meth:`StyleTransferModule.from_style` builds them from style images). The style's Gram targets are
computed once and stored as buffers; each step runs the loss network on the output and, without
gradients and only as deep as the content layer, on the input. Every loss term is logged.

:func:`run_training` is the whole job (what ``fastnst train`` calls) for a
:class:`~fastnst.training.config.TrainConfig`: check every input before anything is written, fit, then save
``<out>/<style>.safetensors`` and the verified ``<out>/<style>.onnx``. Checkpoints (``last.ckpt``,
written atomically by :class:`fastnst.training.checkpointing.CrashSafeCheckpoint`) resume exactly: weights,
optimizer, step, the position in the data order and the random states. The run's stages (:func:`output_folder`,
:func:`make_loggers`, :func:`make_callbacks`, :func:`fit_module`, :func:`finish_run`) are shared with
super-resolution training (:mod:`fastnst.training.sr`).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.callbacks import Callback
from torch import nn

from fastnst import checks
from fastnst import image as fimage
from fastnst.training.callbacks import PreviewCallback, ProgressLog
from fastnst.training.checkpointing import CrashSafeCheckpoint, load_checkpoint, resume_hint
from fastnst.training.config import (CONTENT_WEIGHT, DEFAULT_STEPS, STYLE_WEIGHT, TRAINER_DEFAULTS, TV_WEIGHT,
                            RunConfig, TrainConfig, check_style_scales, style_list)
from fastnst.constants import DEFAULT_VGG_NORMALIZE, JOHNSON_CONTENT_LAYERS, JOHNSON_STYLE_LAYERS
from fastnst.contract import META_STYLES
from fastnst.training.data import ContentDataModule
from fastnst.errors import ConfigError, FastNSTError, InputError, ModelFormatError, os_error, \
    unknown_choice
from fastnst.fileio import sha256_file
from fastnst.losses import PerceptualLoss
from fastnst.networks.transformer import PRESETS, ConditionalInstanceNorm2d, TransformerNet, build_transformer
from fastnst.networks.vgg import VGGFeatures, check_layers

log = logging.getLogger(__name__)


class _DropTips(logging.Filter):
    """Hide Lightning's advertising tips (e.g. for litlogger); keep its real messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropTips())

# Style image size when not given: keep its size, but at most this long side (chosen: Gram targets of
# a 512 px painting carry its brush strokes at the scale 256 px training crops see them; cheap once).
MAX_STYLE_SIZE = 512


class _GroupInstanceNorm(nn.InstanceNorm2d):
    """InstanceNorm2d computed as GroupNorm with one group per channel: the same maths and parameters,
    but it keeps channels_last tensors channels_last (InstanceNorm2d returns NCHW, so every layer
    would pay two layout copies). Chosen: measured faster on CPU, see scripts/bench_train.py."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.affine and not self.track_running_stats:
            return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)
        return super().forward(x)


def use_layout_friendly_norms(model: nn.Module) -> nn.Module:
    """Switch ``model``'s affine InstanceNorm2d layers to :class:`_GroupInstanceNorm` in place
    (same state dict; outputs equal to float rounding)."""
    for module in model.modules():
        if type(module) is nn.InstanceNorm2d and module.affine and not module.track_running_stats:
            module.__class__ = _GroupInstanceNorm
        elif isinstance(module, ConditionalInstanceNorm2d):
            module.group_norm = True
    return model


def style_name(style: str | os.PathLike) -> str:
    """The style's name used for output files: the style image's file stem."""
    return Path(style).stem or "style"


def style_names(styles: Sequence[str | os.PathLike]) -> list[str]:
    """Distinct names for several style images: their file stems, repeated stems numbered (a, a_2)."""
    names: list[str] = []
    for style in styles:
        base = name = style_name(style)
        k = 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def run_name(names: Sequence[str]) -> str:
    """The name of a run's output files: the style's name, or 'a+b+c' for several (shortened when long)."""
    joined = "+".join(names)
    return joined if len(names) == 1 or len(joined) <= 48 else f"{names[0]}+{len(names) - 1}-more"


def load_style_image(style: str | os.PathLike, style_size: int | None = None) -> torch.Tensor:
    """Read the style image as (1, 3, H, W) in [0, 1]; long side ``style_size`` (None: at most 512).

    InputError when it does not exist, cannot be read or is under 16 pixels after resizing."""
    if not Path(style).is_file():
        raise InputError(f"style image '{style}' does not exist; pass --style PATH of a painting")
    img = fimage.load_rgb(style)
    if style_size is None:
        if max(img.size) > MAX_STYLE_SIZE:
            img = fimage.resize(img, long_edge=MAX_STYLE_SIZE)
    else:
        img = fimage.resize(img, long_edge=int(style_size))
    if min(img.size) < 16:
        raise InputError(f"style image '{style}' is {img.width}x{img.height} pixels after resizing; "
                         f"use a larger image or --style-size")
    return fimage.to_tensor(img)


def with_lr_schedule(optimizer: torch.optim.Optimizer, module: pl.LightningModule, schedule: str,
                     default_steps: int) -> Any:
    """``configure_optimizers``' return value: ``optimizer`` alone ('constant'), or with a per-step
    cosine (to 1% over the run) or step (x0.1 at 75%) schedule over the trainer's steps."""
    if schedule == "constant":
        return optimizer
    trainer = module._trainer
    total = trainer.estimated_stepping_batches if trainer is not None else default_steps
    total = int(total) if math.isfinite(total) and total > 0 else default_steps
    lr = optimizer.param_groups[0]["lr"]
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=lr * 0.01)
    else:
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, int(total * 0.75)), gamma=0.1)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class LossNetworkModule(pl.LightningModule):
    """What style and super-resolution training share: a trainable network fitted against a frozen VGG.

    Subclasses give :meth:`terms` (the weighted loss terms of a batch, ``total`` among them),
    :meth:`trainable` (the network), :meth:`preview_outputs` (a preview image), :attr:`frozen` (the frozen VGG or None), :attr:`frozen_prefix` (its key prefix in the state dict) and
    :attr:`default_steps`. This class logs every term, counts skipped images, runs Adam (fused where it
    can) with ``hparams.lr_schedule``, uses Winograd convolutions for the VGG on the CPU and leaves the
    VGG out of checkpoints (rebuilt from its weights setting).
    """

    frozen_prefix = "vgg."
    default_steps = DEFAULT_STEPS

    def __init__(self) -> None:
        super().__init__()
        self.skipped_images = 0
        self._winograd = False

    @property
    def frozen(self) -> VGGFeatures | None:
        return None

    def trainable(self) -> nn.Module:
        raise NotImplementedError

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def preview_outputs(self, images: torch.Tensor) -> Image.Image:
        raise NotImplementedError

    @torch.no_grad()
    def preview_grid(self, images: torch.Tensor) -> Image.Image:
        """The preview grid of ``images`` (N, 3, H, W), drawn by :meth:`preview_outputs` in eval mode."""
        net = self.trainable()
        was_training = net.training
        net.eval()
        try:
            return self.preview_outputs(images)
        finally:
            net.train(was_training)

    def on_fit_start(self) -> None:
        """On the CPU, run the frozen VGG's 128-512-channel 3x3 convolutions with Winograd F(4x4, 3x3)
        (fastnst.networks.winograd: 1.5-2.2x faster than oneDNN there; gradients to the input only)."""
        from fastnst.networks import winograd

        if self.frozen is not None and winograd.enabled(self.device) and not self._winograd:
            winograd.use_winograd(self.frozen.features)
            self._winograd = True

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, skipped = batch if isinstance(batch, (list, tuple)) else (batch, None)
        terms = self.terms(images)
        n = images.shape[0]
        for name, value in terms.items():
            self.log(f"loss/{name}", value.detach(), batch_size=n, prog_bar=(name == "total"))
        if skipped is not None:
            self.skipped_images += int(skipped.sum())
            self.log("data/skipped", float(self.skipped_images), batch_size=n)
        return terms["total"]

    def configure_optimizers(self) -> Any:
        params = list(self.trainable().parameters())
        # Fused Adam: one kernel for all parameters (chosen: 3 ms instead of 30 ms per step on this CPU).
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
        try:
            optimizer = torch.optim.Adam(params, lr=self.hparams.lr, fused=fused or None)
        except (RuntimeError, TypeError):  # an older torch or an unsupported device
            optimizer = torch.optim.Adam(params, lr=self.hparams.lr)
        return with_lr_schedule(optimizer, self, self.hparams.lr_schedule, self.default_steps)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith(self.frozen_prefix)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.frozen is not None:  # its tensors back, so that the checkpoint loads strictly
            state = checkpoint.setdefault("state_dict", {})
            for key, value in self.frozen.state_dict(prefix=self.frozen_prefix).items():
                state.setdefault(key, value)


class StyleTransferModule(LossNetworkModule):
    """A TransformerNet trained against a perceptual loss for one style image, or for several.

    With several styles the network uses conditional instance norm (one scale/shift per style, Dumoulin
    et al. 2017); every style's Gram targets are buffers (S, C, C), and each batch item is given one
    style, drawn so that the styles take turns evenly (see :meth:`style_ids`). Use :meth:`from_style`
    to build the parts from style images.

    Args:
        transformer: the network to train (``num_styles`` = number of style images).
        loss: the perceptual loss on a frozen VGG; for one style, with :meth:`PerceptualLoss.set_style` done.
        style_images: the style images (1, 3, H, W) in [0, 1], for the preview grid.
        style_targets: several styles only: ``{layer: (S, C, C)}`` style statistics, one row per style.
        style_scales: several styles only: a factor per style on its style loss (default all 1).
        lr, lr_schedule: Adam learning rate (paper: 1e-3); 'constant' (paper), 'cosine' or 'step'.
        channels_last: run convolutions in NHWC layout (chosen: faster on CPU, see scripts/bench_train.py).
        record: settings recorded in the checkpoint's hyper-parameters (plain types: style names, hashes, ...).
    """

    frozen_prefix = "loss.vgg."

    def __init__(self, transformer: TransformerNet, loss: PerceptualLoss, style_images: Sequence[torch.Tensor], *,
                 style_targets: dict[str, torch.Tensor] | None = None, style_scales: Sequence[float] | None = None,
                 lr: float = 1e-3, lr_schedule: str = "constant", channels_last: bool = True,
                 record: dict[str, Any] | None = None) -> None:
        super().__init__()
        count = transformer.num_styles
        if len(style_images) != count:
            raise ConfigError(f"the network holds {count} styles but {len(style_images)} style images were given")
        if channels_last:
            use_layout_friendly_norms(transformer)
        self.transformer = transformer
        self.loss = loss
        if count > 1:  # one (S, C, C) buffer per layer; the loss gets each item's rows per step
            if style_targets is None or set(style_targets) != set(loss.style_layers):
                raise ConfigError(f"several styles need style targets for the layers {', '.join(loss.style_layers)}")
            for name, targets in style_targets.items():
                self.register_buffer(f"style_targets_{name}", targets.contiguous())
            self.register_buffer("style_scales", torch.tensor(check_style_scales(style_scales, count)))
        self.style_images = list(style_images)  # kept for the preview grid (not buffers: not saved)
        self.save_hyperparameters({**(record or {}), "lr": lr, "lr_schedule": lr_schedule,
                                   "channels_last": channels_last, "transformer_config": transformer.config,
                                   "arch": transformer.preset or "custom"})

    @classmethod
    def from_style(cls, style: str | os.PathLike | Sequence[str | os.PathLike], arch: str = "johnson",
                   style_size: int | None = None, content_weight: float = CONTENT_WEIGHT,
                   style_weight: float = STYLE_WEIGHT, tv_weight: float = TV_WEIGHT,
                   content_layers: Sequence[str] | str = JOHNSON_CONTENT_LAYERS,
                   style_layers: Sequence[str] | str = JOHNSON_STYLE_LAYERS, vgg_weights: str | None = None,
                   vgg_normalize: str = DEFAULT_VGG_NORMALIZE, style_scales: Sequence[float] | None = None,
                   transformer_config: dict[str, Any] | None = None, **options: Any) -> "StyleTransferModule":
        """Build the network, the VGG16 loss and the style targets from style image file(s).

        ``arch``: 'johnson' or 'fast' (ignored when ``transformer_config`` is given); ``vgg_weights``:
        'imagenet', 'random' or a file (None: $FASTNST_VGG_WEIGHTS, else imagenet); other arguments as in
        :class:`~fastnst.training.config.TrainConfig`; ``options`` (lr, lr_schedule, channels_last) go to the module.
        """
        styles = style_list(style)
        if not styles:
            raise ConfigError("no style image given; pass at least one --style")
        names = style_names(styles)
        images = [load_style_image(s, style_size) for s in styles]
        if transformer_config is not None:
            transformer = TransformerNet.from_config(dict(transformer_config))
        elif len(styles) > 1:
            if arch not in PRESETS:
                raise unknown_choice("architecture", arch, PRESETS)
            transformer = TransformerNet(**PRESETS[arch], num_styles=len(styles), style_names=names)
        else:
            transformer = build_transformer(arch)
        content_layers, style_layers = list(check_layers(content_layers)), list(check_layers(style_layers))
        vgg = VGGFeatures(tuple(dict.fromkeys(content_layers + style_layers)), "vgg16", vgg_weights,
                          normalize=vgg_normalize)
        loss = PerceptualLoss(vgg, content_layers, style_layers, content_weight, style_weight, tv_weight)
        targets: dict[str, list[torch.Tensor]] = {name: [] for name in loss.style_layers}
        for image in images:  # for one style the loss keeps its targets; several are stacked per layer
            loss.set_style(image)
            for name, target in loss.style_targets.items():
                targets[name].append(target)
        many = len(styles) > 1
        if style_scales is not None and not many:
            raise ConfigError("style scales apply to several styles; leave them out for one style")
        # Recorded in the checkpoint; plain types only (checkpoints are read with weights_only=True).
        record = {"style": styles if many else styles[0], "style_size": style_size,
                  "content_weight": float(content_weight), "style_weight": float(style_weight),
                  "tv_weight": float(tv_weight), "content_layers": list(loss.content_layers),
                  "style_layers": list(loss.style_layers), "vgg_weights": vgg.weights, "vgg_normalize": vgg_normalize,
                  "style_scales": list(style_scales) if style_scales is not None else None,
                  "style_name": run_name(names) if many else names[0],
                  "style_sha256": [sha256_file(s) for s in styles] if many else sha256_file(styles[0])}
        if many:
            record["style_names"] = names
        return cls(transformer, loss, images, style_targets={k: torch.cat(v) for k, v in targets.items()} if many
                   else None, style_scales=style_scales, record=record, **options)

    # -- model ---------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Stylise a batch (N, 3, H, W) in [0, 1] (``style``: (N, S) blend weights for several styles)."""
        return self.transformer(x, style)

    @property
    def num_styles(self) -> int:
        return self.transformer.num_styles

    @property
    def frozen(self) -> VGGFeatures:
        return self.loss.vgg

    def trainable(self) -> nn.Module:
        return self.transformer

    def style_ids(self, step: int, n: int) -> torch.Tensor:
        """The style index of each of the ``n`` items of step ``step`` (several styles only).

        Chosen: every item gets its own style, and the styles take turns in shuffled cycles of S
        (item k of the run gets the (k mod S)-th style of cycle k // S, each cycle a fresh
        permutation). So each step's gradient on the shared convolutions mixes several styles
        (one style per batch, as Dumoulin et al. did with batch 16, pulls the shared weights toward
        one style at a time, which hurts more with a short CPU run and batch 4), every style gets
        the same number of items to within one cycle, and the draw depends only on the step, so a
        resumed run continues it exactly.
        """
        count = self.num_styles
        ids = []
        for k in range(step * n, step * n + n):
            cycle, pos = divmod(k, count)
            perm = torch.randperm(count, generator=torch.Generator().manual_seed(1_000_003 * cycle + 17))
            ids.append(int(perm[pos]))
        return torch.tensor(ids, dtype=torch.long)

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        super().on_fit_start()

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.num_styles == 1:
            return self.loss(self.transformer(images), images)
        ids = self.style_ids(self.global_step, images.shape[0]).to(images.device)
        output = self.transformer(images, F.one_hot(ids, self.num_styles).to(images.dtype))
        targets = {name: getattr(self, f"style_targets_{name}")[ids] for name in self.loss.style_layers}
        scales = self.style_scales[ids] if bool((self.style_scales != 1).any()) else None
        return self.loss(output, images, style_targets=targets, style_item_weights=scales)

    def preview_outputs(self, images: torch.Tensor) -> Image.Image:
        """The style image(s) and the network's outputs, the preview images on top (one row per style)."""
        x = images.to(self.device)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        count = self.num_styles
        blends = [F.one_hot(torch.full((x.shape[0],), i, device=x.device), count).to(x.dtype) if count > 1
                  else None for i in range(count)]
        outs = [self.transformer(x, blend).float().cpu() for blend in blends]
        size = images.shape[-1]
        blank = Image.new("RGB", (size, size), (255, 255, 255))
        tiles = [fimage.to_pil(im) for im in images.cpu()]
        rows = []
        for style_tensor, styled in zip(self.style_images, outs):
            thumb = fimage.to_pil(style_tensor)
            thumb.thumbnail((size, size))
            rows.append([thumb] + [fimage.to_pil(im) for im in styled])
        if count == 1:  # style and photos on top, outputs below
            grid = [rows[0][0]] + tiles + [blank] + rows[0][1:]
        else:  # a blank corner and the photos on top, one row per style
            grid = [blank] + tiles + [t for row in rows for t in row]
        return fimage.make_grid(grid, ncols=len(tiles) + 1)


# ------------------------------------------------------------------------------------------ checks


def check_checkpoint(path: str | os.PathLike, key: str, command: str) -> tuple[Path, dict[str, Any]]:
    """``path`` and its hyper-parameters when it is a resumable checkpoint of ``fastnst <command>`` (its
    hyper-parameters hold ``key``); InputError (missing), CheckpointError (truncated), ModelFormatError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"--resume checkpoint '{path}' does not exist; pass the last.ckpt of an earlier run")
    ckpt = load_checkpoint(path)  # truncated/corrupt: CheckpointError naming the last good one
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or key not in hparams or "optimizer_states" not in ckpt:
        raise ModelFormatError(f"--resume '{path}' is not a fastnst {command} checkpoint; pass the last.ckpt "
                               f"written by fastnst {command}")
    return path, hparams


def check_resume(path: str | os.PathLike, transformer_config: dict[str, Any], style_sha256: Any) -> Path:
    """Check that ``path`` is a fastnst training checkpoint matching this run; returns it.

    Raises InputError (missing) or ModelFormatError (foreign file, other architecture or style).
    """
    path, hparams = check_checkpoint(path, "transformer_config", "train")
    if dict(hparams["transformer_config"]) != dict(transformer_config):
        raise ModelFormatError(f"--resume '{path}' holds a '{hparams.get('arch', 'custom')}' network, not this "
                               f"run's; pass the same --arch as the run that wrote it")
    if hparams.get("style_sha256") and hparams["style_sha256"] != style_sha256:
        raise ModelFormatError(f"--resume '{path}' was trained on another style image "
                               f"('{hparams.get('style_name', '?')}'); pass the same --style")
    return path


# --------------------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    """Where a training run left its files (``onnx`` None when not exported)."""

    weights: Path
    checkpoint: Path
    onnx: Path | None
    metrics: Path | None
    preview: Path | None
    steps: int
    interrupted: bool
    is_global_zero: bool

    def summary(self, next_step: str | None = None) -> list[str]:
        """Lines saying where the results are (``next_step``: a command with ``{onnx}``, shown with a model)."""
        lines = [f"previews:   {self.preview.parent}/ (latest {self.preview.name})"] if self.preview else []
        lines += [f"losses:     {self.metrics}"] if self.metrics else []
        lines += [f"checkpoint: {self.checkpoint}   (continue with --resume {self.checkpoint})",
                  f"weights:    {self.weights}"]
        if self.onnx:
            lines.append(f"onnx:       {self.onnx}")
            lines += [f"next:       {next_step.format(onnx=self.onnx)}"] if next_step else []
        return lines


def output_folder(config: RunConfig, default: Path, ckpt_path: Path | None, files: Sequence[str]) -> Path:
    """The run's output folder: ``config.out``, else the --resume file's folder, else ``default``.

    Refused (FastNSTError, nothing written) when it is a file, lies inside the data folder, or already holds
    one of ``files`` or a last.ckpt without ``resume`` or ``overwrite``."""
    from fastnst.outputs import check_run_folder

    out = Path(config.out if config.out is not None else ckpt_path.parent if ckpt_path is not None else default)
    out = out.expanduser()
    return check_run_folder(out, (*files, "last.ckpt"), keep=ckpt_path is not None or config.overwrite,
                            reads=Path(str(config.data)).expanduser(),
                            among=f"the data folder '{config.data}': previews and checkpoints would be written "
                                  f"among (and read as) training images",
                            held=f"'{out}' already holds a training run; pass {resume_hint(out)} to continue it, "
                                 f"--overwrite to start again, or another --out")


def make_loggers(out: Path, user: Any = None) -> list[Any]:
    """fastnst's CSV logger (``<out>/logs/version_*/metrics.csv``, first), then the user's logger(s), or
    TensorBoard when installed and none was given; ``user=False``: the CSV logger only."""
    from pytorch_lightning.loggers import CSVLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(out), name="logs")]
    if user not in (None, True, False):
        loggers += list(user) if isinstance(user, (list, tuple)) else [user]
    elif user is None and any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(out), name="tensorboard"))
    return loggers


def make_callbacks(config: RunConfig, out: Path, previews: torch.Tensor | None,
                   options: dict[str, Any]) -> list[Callback]:
    """Crash-safe checkpoints and preview grids into ``out``, the user's callbacks, and plain progress lines
    (:class:`~fastnst.training.callbacks.ProgressLog`) when Lightning's bar is off; sets the bar's default in the
    Trainer ``options``: on only when stdout and stderr are terminals (a bar writes ``\\r`` lines into logs)."""
    user = options.get("callbacks") or []
    callbacks: list[Callback] = [CrashSafeCheckpoint(out, every_n_steps=config.checkpoint_every,
                                                     every_minutes=config.checkpoint_minutes),
                                 PreviewCallback(previews, out / "previews", config.preview_every)]
    callbacks += list(user) if isinstance(user, (list, tuple)) else [user]
    if options.get("enable_progress_bar") is None:  # Lightning's bar is written to stdout
        options["enable_progress_bar"] = all(getattr(s, "isatty", lambda: False)() for s in (sys.stdout, sys.stderr))
    if not options["enable_progress_bar"]:
        callbacks.append(ProgressLog(config.steps // 10 if config.steps else config.checkpoint_every // 10))
    return callbacks


def make_trainer(config: RunConfig, out: Path, options: dict[str, Any], loggers: list[Any],
                 callbacks: list[Callback], datamodule: ContentDataModule) -> pl.Trainer:
    """The Lightning Trainer of a run with the Trainer ``options`` (made before the output folder exists:
    a bad accelerator leaves nothing behind)."""
    kwargs: dict[str, Any] = dict(TRAINER_DEFAULTS, max_steps=config.steps or -1, max_epochs=config.epochs or -1,
                                  default_root_dir=str(out))
    kwargs.update(options, logger=loggers, callbacks=callbacks)
    kwargs["enable_checkpointing"] = False  # CrashSafeCheckpoint writes the checkpoints
    if type(datamodule).train_dataloader is ContentDataModule.train_dataloader:
        kwargs["use_distributed_sampler"] = False  # its ResumableSampler shards between ranks itself
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
            return pl.Trainer(**kwargs)
    except FastNSTError:
        raise
    except Exception as exc:  # MisconfigurationException, ValueError, RuntimeError: unavailable devices
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConfigError(f"bad trainer option: {first}; see --help (--trainer.accelerator, --trainer.devices)"
                          ) from None


def fit_module(module: LossNetworkModule, datamodule: ContentDataModule, config: RunConfig, out: Path,
               ckpt_path: Path | None, description: str) -> tuple[pl.Trainer, PreviewCallback]:
    """Fit ``module`` on ``datamodule`` with fastnst's loggers, previews and checkpoints into ``out``; ends
    with a resumable ``out/last.ckpt`` at the final step. Returns (trainer, preview callback)."""
    if torch.get_num_threads() > checks.available_cpus():  # torch's threads capped at the CPUs we may use
        torch.set_num_threads(checks.available_cpus())
    options = dict(config.trainer)  # the config stays as given
    loggers = make_loggers(out, options.pop("logger", None))
    callbacks = make_callbacks(config, out, datamodule.previews, options)
    trainer = make_trainer(config, out, options, loggers, callbacks, datamodule)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, out, "create the output folder") from None
    log.info("%s", description)
    with warnings.catch_warnings():
        # The frozen VGG stays in eval mode on purpose; resuming an iterable stream restarts its epoch.
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
        # Resume restores weights, optimizer and step exactly; the random crops simply continue afresh.
        warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
        except OSError as exc:  # disk full or permissions while writing logs, previews or checkpoints
            raise os_error(exc, out, "write into") from None
    callbacks[0].save(trainer, out / "last.ckpt")  # atomic; the previous one kept as previous.ckpt
    return trainer, callbacks[1]


def export_quietly(weights: Path, onnx_path: Path) -> Path | None:
    """Export ``weights`` to a verified ONNX model with fastnst.training.export; a failure is logged, never fatal
    (the weights are safe; ``fastnst export`` can redo it)."""
    try:
        from fastnst.training.export import export_onnx
    except ImportError as exc:  # fastnst.training.export or one of its dependencies (onnx, onnxscript) is missing
        log.warning("ONNX export skipped (%s); export later with 'fastnst export %s'", exc, weights)
        return None
    try:
        return Path(export_onnx(weights, onnx_path, overwrite=True))
    except Exception as exc:  # noqa: BLE001 - the trained weights are saved; export can be redone
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("ONNX export failed (%s: %s); the weights are saved, retry with 'fastnst export %s'",
                    type(exc).__name__, first, weights)
        return None


def finish_run(trainer: pl.Trainer, module: LossNetworkModule, datamodule: ContentDataModule, config: RunConfig,
               out: Path, name: str, save: Callable[[Path], Any], previews: PreviewCallback) -> TrainResult:
    """After fitting: warnings, the weights (``save(path)`` on rank zero), the ONNX model when
    ``config.export``; returns the :class:`TrainResult`."""
    last_ckpt = out / "last.ckpt"
    if trainer.interrupted:
        log.warning("training interrupted at step %d; resume with --resume %s", trainer.global_step, last_ckpt)
    if module.skipped_images or datamodule.skipped:
        log.warning("skipped %d unreadable images", module.skipped_images + datamodule.skipped)
    weights_path, onnx_path = out / f"{name}.safetensors", None
    if trainer.is_global_zero:
        save(weights_path)
        if config.export:
            onnx_path = export_quietly(weights_path, out / f"{name}.onnx")
    metrics = Path(trainer.loggers[0].log_dir) / "metrics.csv"
    return TrainResult(weights=weights_path, checkpoint=last_ckpt, onnx=onnx_path,
                       metrics=metrics if metrics.is_file() else None, preview=previews.last_path,
                       steps=int(trainer.global_step), interrupted=bool(trainer.interrupted),
                       is_global_zero=bool(trainer.is_global_zero))


def weights_label(vgg_weights: str | None) -> str:
    """How the VGG weights are recorded in a model's metadata: 'imagenet', 'random' or the file's name."""
    return Path(vgg_weights).name if vgg_weights not in (None, "imagenet", "random") else str(vgg_weights)


def run_training(config: TrainConfig | str | os.PathLike | Sequence[str | os.PathLike], *args: Any,
                 **options: Any) -> TrainResult:
    """Train a style network as ``config`` says; returns where the results are.

    ``config`` is a :class:`~fastnst.training.config.TrainConfig`, or (as for :func:`train`) the style followed by
    ``data``, ``out`` and keyword options. ``data`` is 'coco', a Hugging Face dataset id, a folder of images
    or parquet file(s); ``out`` defaults to ``checkpoints/<style name>`` (the ``resume`` file's folder when
    resuming). Defaults follow Johnson et al. 2016 (256² crops, batch 4, 40k steps, Adam 1e-3).

    Everything is checked before anything is written: FastNSTError for a missing or unreadable style
    image, a data source without usable images, unknown layers, bad sizes or weights, a missing or foreign
    ``resume`` file, unavailable VGG weights, or an ``out`` holding an earlier run (pass ``overwrite=True``
    or ``resume``). Writes ``out/last.ckpt``, ``out/<style>.safetensors``, ``out/<style>.onnx``,
    ``out/previews/step_*.png`` and ``out/logs/version_*/metrics.csv``.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.build(config, *args, **options)
    elif args or options:
        raise TypeError("run_training(config) takes no other arguments; set them on the TrainConfig")
    config.check()
    from fastnst.styles.paintings import resolve_styles

    # files as given; painting names (starry_night, ...) downloaded once; generated names (mosaic, ...) made
    config.style = [str(s) for s in resolve_styles(config.style)]
    for style in config.style:  # readable and large enough: cheap, before the data and the VGG
        load_style_image(style, config.style_size)
    datamodule = ContentDataModule(config.data, image_size=config.image_size, batch_size=config.batch_size,
                                   num_workers=config.num_workers, num_previews=config.num_previews,
                                   split=config.data_split, seed=config.seed).check()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = StyleTransferModule.from_style(  # loads the VGG weights (fails here when unavailable)
        config.style if len(config.style) > 1 else config.style[0], arch=config.arch, style_size=config.style_size,
        content_weight=config.content_weight, style_weight=config.style_weight, tv_weight=config.tv_weight,
        content_layers=config.content_layers, style_layers=config.style_layers, vgg_weights=config.vgg_weights,
        vgg_normalize=config.vgg_normalize, style_scales=config.style_scales, lr=config.lr,
        lr_schedule=config.lr_schedule, channels_last=config.channels_last)
    hp = module.hparams
    name = hp.style_name
    ckpt_path = check_resume(config.resume, module.transformer.config, hp.style_sha256) if config.resume else None
    out = output_folder(config, Path("checkpoints") / name, ckpt_path, [f"{name}.safetensors"])
    description = (f"training '{name}' on {datamodule.describe()}: {hp.arch} network, {config.image_size}x"
                   f"{config.image_size} crops, batch {config.batch_size}, "
                   + (f"{config.steps} steps" if config.steps is not None else f"{config.epochs} epochs"))
    trainer, previews = fit_module(module, datamodule, config, out, ckpt_path, description)

    def save(path: Path) -> None:
        from fastnst.training.weights import save_transformer

        metadata = {k: hp[k] for k in ("style_name", "style_sha256", "content_weight", "style_weight", "tv_weight",
                                       "content_layers", "style_layers", "vgg_normalize")}
        metadata.update(steps=int(trainer.global_step), image_size=config.image_size, batch_size=config.batch_size,
                        lr=config.lr, vgg_weights=weights_label(config.vgg_weights), data=str(config.data))
        if module.num_styles > 1:
            metadata[META_STYLES] = list(module.transformer.style_names)
            metadata["style_scales"] = [round(float(v), 6) for v in module.style_scales.tolist()]  # as given
        net = module.transformer.to("cpu", memory_format=torch.contiguous_format).float()
        save_transformer(path, net, metadata, overwrite=True)

    return finish_run(trainer, module, datamodule, config, out, name, save, previews)


def train(style: str | os.PathLike | Sequence[str | os.PathLike], data: str = "coco",
          out: str | os.PathLike | None = None, **options: Any) -> Path:
    """Train a style network for ``style`` on ``data``; returns the path of the trained weights.

    ``options`` are the fields of :class:`~fastnst.training.config.TrainConfig` (``image_size``, ``steps``, ``arch``,
    ``vgg_weights``, ...) and any Lightning Trainer argument (``accelerator``, ``devices``, ``precision``,
    ``logger``, ``callbacks``).
    """
    return run_training(TrainConfig.build(style, data, out, **options)).weights
