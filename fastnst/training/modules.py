"""The Lightning modules of training: a trainable network fitted against a frozen loss network.

:class:`LossNetworkModule` is what every trainer shares (logging every loss term, Adam and its learning-rate
schedule, Winograd convolutions for the frozen VGG on the CPU, the VGG left out of checkpoints) and the
few things a trainer must say for :func:`fastnst.training.run.run` to run it: how to build itself from its
checked config, which checkpoint it may resume, how its files are named and how its weights are saved.
A new trainer is a subclass, a config class (:class:`~fastnst.training.config.RunConfig`) and a command.

:class:`StyleTransferModule` trains Johnson et al.'s style network: a
:class:`~fastnst.networks.transformer.TransformerNet` and a :class:`~fastnst.losses.PerceptualLoss` on a frozen
VGG16, both passed in (:meth:`StyleTransferModule.from_config` builds them). The style's Gram targets are
computed once and stored as buffers; each step runs the loss network on the output and, without gradients
and only as deep as the content layer, on the input. (Super-resolution: :mod:`fastnst.training.sr`.)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from fastnst import image as fimage
from fastnst.contract import META_STYLES
from fastnst.errors import ConfigError
from fastnst.fileio import sha256_file
from fastnst.losses import PerceptualLoss
from fastnst.networks.transformer import (PRESETS, TransformerNet, single_style_copy, train_only_norms,
                                          use_layout_friendly_norms)
from fastnst.networks.vgg import VGGFeatures
from fastnst.training.checkpointing import check_resume
from fastnst.training.config import RunConfig, TrainConfig
from fastnst.training.style_images import distinct_names, load_style_image, run_name
from fastnst.training.weights import load_transformer


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


def weights_label(vgg_weights: str | None) -> str:
    """How the VGG weights are recorded in a model's metadata: 'imagenet', 'random' or the file's name."""
    return Path(vgg_weights).name if vgg_weights not in (None, "imagenet", "random") else str(vgg_weights)


class LossNetworkModule(pl.LightningModule):
    """What every trainer shares: a trainable network fitted against a frozen VGG (or none).

    For the training loop a subclass gives :meth:`terms` (the weighted loss terms of a batch, ``total`` among
    them), :meth:`trainable` (the network), :meth:`preview_outputs` (a preview image), :attr:`frozen` (the
    frozen VGG or None) and :attr:`frozen_prefix` (its key prefix in the state dict). For a run
    (:func:`fastnst.training.run.run`) it gives :attr:`config_class` and :attr:`command`,
    :meth:`from_config`, :meth:`check_resume`, :attr:`run_name`, :meth:`describe` and :meth:`save_weights`
    (and may override :meth:`prepare` and :meth:`default_folder`).

    This class logs every term, counts skipped images, runs Adam (fused where it can) with
    ``hparams.lr`` and ``hparams.lr_schedule``, uses Winograd convolutions for the VGG on the CPU and leaves
    the VGG out of checkpoints (rebuilt from its weights setting).
    """

    config_class: ClassVar[type[RunConfig]] = RunConfig
    command: ClassVar[str] = "train"  # the fastnst command that runs this trainer (named in messages)
    frozen_prefix = "vgg."

    def __init__(self) -> None:
        super().__init__()
        self.skipped_images = 0
        self._winograd = False

    # -- what a trainer says ---------------------------------------------------------------------------

    @classmethod
    def prepare(cls, config: Any) -> None:
        """Cheap checks of ``config``'s own inputs (files, names) after :meth:`RunConfig.check`, before the
        data and the loss network are loaded; may resolve them in ``config``. Nothing by default."""

    @classmethod
    def from_config(cls, config: Any) -> "LossNetworkModule":
        """The module for a checked (and prepared) ``config`` of :attr:`config_class`; by default each argument
        of the constructor is the config field of its name."""
        fields = {f.name for f in dataclasses.fields(config)}
        names = [n for n in inspect.signature(cls.__init__).parameters if n in fields]
        return cls(**{name: getattr(config, name) for name in names})

    def check_resume(self, path: str | os.PathLike) -> Path:
        """``path`` when it is a checkpoint this module can continue (FastNSTError otherwise)."""
        raise NotImplementedError

    @property
    def run_name(self) -> str:
        """The name of the run's output files (``<name>.safetensors``, ``<name>.onnx``)."""
        raise NotImplementedError

    def default_folder(self, config: Any) -> Path:
        """The output folder when neither ``--out`` nor ``--resume`` names one."""
        return Path("checkpoints") / self.run_name

    def describe(self, config: Any, data: str) -> str:
        """The start of the run's log line: what is trained on ``data`` and on which crops."""
        raise NotImplementedError

    def save_weights(self, path: Path, config: Any, steps: int) -> None:
        """Write the trained network and its metadata to ``path`` (rank zero, after fitting)."""
        raise NotImplementedError

    # -- the training loop -----------------------------------------------------------------------------

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
        params = [p for p in self.trainable().parameters() if p.requires_grad]  # (--from: the norms only)
        # Fused Adam: one kernel for all parameters (chosen: 3 ms instead of 30 ms per step on this CPU).
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
        try:
            optimizer = torch.optim.Adam(params, lr=self.hparams.lr, fused=fused or None)
        except (RuntimeError, TypeError):  # an older torch or an unsupported device
            optimizer = torch.optim.Adam(params, lr=self.hparams.lr)
        return with_lr_schedule(optimizer, self, self.hparams.lr_schedule, self.config_class.default_steps)

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
    style, drawn so that the styles take turns evenly (see :meth:`style_ids`). Use :meth:`from_config`
    (or :meth:`from_style`) to build the parts from style images.

    Args:
        transformer: the network to train (``num_styles`` = number of style images).
        loss: the perceptual loss on a frozen VGG; for one style, with :meth:`PerceptualLoss.set_style` done.
        style_images: the style images (1, 3, H, W) in [0, 1], for the preview grid.
        style_targets: several styles only: ``{layer: (S, C, C)}`` style statistics, one row per style.
        style_scales: several styles only: a factor per style on its style loss (None: all 1).
        lr, lr_schedule: Adam learning rate (paper: 1e-3); 'constant' (paper), 'cosine' or 'step'.
        channels_last: run convolutions in NHWC layout (chosen: faster on CPU, see scripts/bench_train.py).
        record: settings recorded in the checkpoint's hyper-parameters (plain types: style names, hashes, ...).
    """

    config_class = TrainConfig
    command = "train"
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
            scales = [float(v) for v in style_scales] if style_scales is not None else [1.0] * count
            self.register_buffer("style_scales", torch.tensor(scales))
        self.style_images = list(style_images)  # kept for the preview grid (not buffers: not saved)
        self.save_hyperparameters({**(record or {}), "lr": lr, "lr_schedule": lr_schedule,
                                   "channels_last": channels_last, "transformer_config": transformer.config,
                                   "arch": transformer.preset or "custom"})

    @classmethod
    def prepare(cls, config: TrainConfig) -> None:
        """Style names resolved to files (painting names such as starry_night downloaded once, generated
        names such as mosaic made), each read once: readable and large enough, before the data and the VGG."""
        from fastnst.styles.registry import resolve_styles

        config.style = [str(s) for s in resolve_styles(config.style)]
        for style in config.style:
            load_style_image(style, config.style_size)

    @classmethod
    def from_config(cls, config: TrainConfig) -> "StyleTransferModule":
        """Build the network, the VGG16 loss and the style targets as the checked ``config`` says (its
        ``style`` entries are image files); loads the VGG weights (fails here when they are unavailable)."""
        styles = list(config.style)
        many = len(styles) > 1
        names = distinct_names(styles)
        images = [load_style_image(s, config.style_size) for s in styles]
        if config.from_model is not None:  # a new style learned on a trained network (checked: one style)
            transformer = single_style_copy(load_transformer(config.from_model)[0])
            if config.finetune == "norms":
                train_only_norms(transformer)
        else:
            transformer = TransformerNet(**PRESETS[config.arch], num_styles=len(styles),
                                         style_names=names if many else None)
        layers = tuple(dict.fromkeys(config.content_layers + config.style_layers))
        vgg = VGGFeatures(layers, "vgg16", config.vgg_weights, normalize=config.vgg_normalize)
        loss = PerceptualLoss(vgg, config.content_layers, config.style_layers, config.content_weight,
                              config.style_weight, config.tv_weight)
        targets: dict[str, list[torch.Tensor]] = {name: [] for name in loss.style_layers}
        for image in images:  # for one style the loss keeps its targets; several are stacked per layer
            loss.set_style(image)
            for name, target in loss.style_targets.items():
                targets[name].append(target)
        # Recorded in the checkpoint; plain types only (checkpoints are read with weights_only=True).
        record = {"style": styles if many else styles[0], "style_size": config.style_size,
                  "content_weight": config.content_weight, "style_weight": config.style_weight,
                  "tv_weight": config.tv_weight, "content_layers": list(config.content_layers),
                  "style_layers": list(config.style_layers), "vgg_weights": vgg.weights,
                  "vgg_normalize": config.vgg_normalize, "style_scales": config.style_scales,
                  "style_name": run_name(names) if many else names[0],
                  "style_sha256": [sha256_file(s) for s in styles] if many else sha256_file(styles[0]),
                  "from_model": Path(config.from_model).name if config.from_model else None,
                  "finetune": config.finetune if config.from_model else None}
        if many:
            record["style_names"] = names
        return cls(transformer, loss, images, style_targets={k: torch.cat(v) for k, v in targets.items()} if many
                   else None, style_scales=config.style_scales, lr=config.lr, lr_schedule=config.lr_schedule,
                   channels_last=config.channels_last, record=record)

    @classmethod
    def from_style(cls, style: str | os.PathLike | Sequence[str | os.PathLike],
                   **options: Any) -> "StyleTransferModule":
        """The module for style image file(s) with :class:`~fastnst.training.config.TrainConfig`'s other
        fields as keywords (``arch``, ``vgg_weights``, ``style_size``, weights, layers, ``lr``, ...; their
        defaults otherwise), checked as ``fastnst train`` checks them."""
        return cls.from_config(TrainConfig(style=style, **options).check())

    # -- a run -----------------------------------------------------------------------------------------

    def check_resume(self, path: str | os.PathLike) -> Path:
        return check_resume(path, self.transformer.config, self.hparams.style_sha256)

    @property
    def run_name(self) -> str:
        return str(self.hparams.style_name)

    def describe(self, config: TrainConfig, data: str) -> str:
        return (f"training '{self.run_name}' on {data}: {self.hparams.arch} network, {config.image_size}x"
                f"{config.image_size} crops")

    def save_weights(self, path: Path, config: TrainConfig, steps: int) -> None:
        from fastnst.training.weights import save_transformer

        hp = self.hparams
        metadata = {k: hp[k] for k in ("style_name", "style_sha256", "content_weight", "style_weight", "tv_weight",
                                       "content_layers", "style_layers", "vgg_normalize", "style_size")}
        if hp.get("from_model"):
            metadata.update(from_model=hp["from_model"], finetune=hp["finetune"])
        metadata.update(steps=steps, image_size=config.image_size, batch_size=config.batch_size, lr=config.lr,
                        vgg_weights=weights_label(config.vgg_weights), data=str(config.data))
        if self.num_styles > 1:
            metadata[META_STYLES] = list(self.transformer.style_names)
            metadata["style_scales"] = [round(float(v), 6) for v in self.style_scales.tolist()]  # as given
        net = self.transformer.to("cpu", memory_format=torch.contiguous_format).float()
        save_transformer(path, net, metadata, overwrite=True)

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

    def terms(self, images: torch.Tensor, step: int | None = None) -> dict[str, torch.Tensor]:
        """The loss terms of a batch; several styles: each item's style is drawn for ``step`` (default: the
        trainer's global step; a loop of one's own passes its step)."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.num_styles == 1:
            return self.loss(self.transformer(images), images)
        ids = self.style_ids(self.global_step if step is None else step, images.shape[0]).to(images.device)
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


__all__ = ["LossNetworkModule", "StyleTransferModule", "with_lr_schedule", "weights_label"]
