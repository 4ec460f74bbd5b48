"""Training Johnson et al.'s super-resolution networks (paper sections 3 and 4.2) with Lightning.

:class:`SuperResolutionModule` holds an :class:`~fastnst.networks.sr.SRNet` and its loss:

* ``loss="perceptual"`` (the paper's network): feature reconstruction loss at relu2_2 of a frozen
  VGG16 plus total variation;
* ``loss="pixel"`` (the paper's baseline): per-pixel mean squared error (plus optional TV).

Each step takes high-resolution crops from the same :class:`~fastnst.data.ContentDataModule` as
style training, makes the low-resolution inputs the paper's way (Gaussian blur σ = 1.0, then bicubic
down-sampling by the factor) and fits the network to map them back. The Trainer, loggers, previews,
checkpoints and resume are those of :mod:`fastnst.training` (:func:`~fastnst.training.fit_module`).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import image as fimage
from fastnst.data import ContentDataModule
from fastnst.errors import ConfigError, InputError, ModelFormatError, OutputExistsError, unknown_choice
from fastnst.losses import content_loss, total_variation
from fastnst.networks.sr import SR_FACTORS, SRNet, degrade, save_sr
from fastnst.networks.vgg import VGGFeatures, check_layers, resolve_weights
from fastnst.training import (LR_SCHEDULES, TrainResult, _check_positive, _check_weight, _trainer_kwargs,
                              drop_frozen_state, fit_module, restore_frozen_state, with_lr_schedule)

log = logging.getLogger(__name__)

SR_LOSSES = ("perceptual", "pixel")
# Paper (section 4.2): 288x288 crops, batch 4, Adam 1e-3, 200k iterations, blur sigma 1.0.
SR_IMAGE_SIZE = 288
SR_STEPS = 200_000
BLUR_SIGMA = 1.0
# Paper: feature reconstruction at relu2_2. TV weight: the paper cross-validates it in [1e-6, 1e-4]
# for its loss scale; here the feature term is relative (divided by the target features' mean square),
# and the TV weight is chosen so that TV is about 1% of the loss late in training (configs/sr-x4.yaml).
SR_FEATURE_LAYER = "relu2_2"
DEFAULT_TV_WEIGHT = 1.0
_VGG_PREFIX = "vgg."


class SuperResolutionModule(pl.LightningModule):
    """An SRNet trained with the perceptual (feature reconstruction) or the pixel loss.

    Args:
        factor: up-sampling factor (2, 4 or 8; paper: 4 and 8).
        loss: 'perceptual' (relu2_2 feature loss + TV, paper) or 'pixel' (MSE, the paper's baseline).
        feature_layer: VGG16 layer of the feature loss (paper: relu2_2).
        feature_weight, pixel_weight, tv_weight: loss weights.
        vgg_weights: 'imagenet', 'random' or a file (perceptual loss only).
        lr: Adam learning rate (paper: 1e-3). lr_schedule: as in style training.
        blur_sigma: Gaussian blur before down-sampling (paper: 1.0).
        channels, num_residual, norm, skip: the SRNet (paper: 64, 4, batch, none).
        sr_config: an explicit SRNet configuration (set when loading a checkpoint).
    """

    def __init__(self, factor: int = 4, loss: str = "perceptual", feature_layer: str = SR_FEATURE_LAYER,
                 feature_weight: float = 1.0, pixel_weight: float = 1.0, tv_weight: float | None = None,
                 vgg_weights: str | None = None, lr: float = 1e-3, lr_schedule: str = "constant",
                 blur_sigma: float = BLUR_SIGMA, channels: int = 64, num_residual: int = 4, norm: str = "batch",
                 skip: str = "none", preview_every: int = 500, sr_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        if loss not in SR_LOSSES:
            raise unknown_choice("super-resolution loss", loss, SR_LOSSES)
        if lr_schedule not in LR_SCHEDULES:
            raise unknown_choice("learning-rate schedule", lr_schedule, LR_SCHEDULES)
        if tv_weight is None:  # the paper's baseline is the plain pixel loss
            tv_weight = DEFAULT_TV_WEIGHT if loss == "perceptual" else 0.0
        self.net = SRNet.from_config(dict(sr_config)) if sr_config is not None else SRNet(
            factor, channels, num_residual, norm, skip)
        self.vgg: VGGFeatures | None = None
        if loss == "perceptual":
            feature_layer = check_layers(feature_layer)[0]
            self.vgg = VGGFeatures((feature_layer,), "vgg16", vgg_weights)
            vgg_weights = self.vgg.weights
        sr_config = self.net.config
        factor = self.net.factor
        self.save_hyperparameters()
        self.skipped_images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Up-sample a low-resolution batch (N, 3, h, w) → (N, 3, factor·h, factor·w)."""
        return self.net(x)

    def low_res(self, hr: torch.Tensor) -> torch.Tensor:
        """The network's input for high-resolution images (blur, then bicubic down-sampling)."""
        return degrade(hr, self.net.factor, self.hparams.blur_sigma)

    def losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms (weighted) and their sum under 'total'."""
        hp = self.hparams
        terms: dict[str, torch.Tensor] = {}
        if self.vgg is not None:
            layer = hp.feature_layer
            with torch.no_grad():
                want = self.vgg(target)[layer]
            # Relative to the target's mean square (a constant per batch): the same weights work for
            # any VGG weights' activation scale (Caffe's are ~100x torchvision's); the gradient's
            # direction is the paper's feature reconstruction loss.
            scale = want.pow(2).mean().clamp_min(1e-12)
            terms["feature"] = hp.feature_weight * content_loss(self.vgg(output)[layer], want) / scale
        else:
            terms["pixel"] = hp.pixel_weight * F.mse_loss(output, target)
        if hp.tv_weight:
            terms["tv"] = hp.tv_weight * total_variation(output)
        terms["total"] = sum(terms.values(), output.new_zeros(()))
        return terms

    def on_fit_start(self) -> None:
        if self.vgg is None:
            return
        try:
            from fastnst.networks import winograd
        except ImportError:
            return
        if winograd.enabled(self.device) and not getattr(self, "_winograd", False):
            winograd.use_winograd(self.vgg.features)
            self._winograd = True

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, skipped = batch if isinstance(batch, (list, tuple)) else (batch, None)
        with torch.no_grad():
            low = self.low_res(images)
        terms = self.losses(self.net(low), images)
        n = images.shape[0]
        for name, value in terms.items():
            self.log(f"loss/{name}", value.detach(), batch_size=n, prog_bar=(name == "total"))
        if skipped is not None:
            self.skipped_images += int(skipped.sum())
            self.log("data/skipped", float(self.skipped_images), batch_size=n)
        return terms["total"]

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        return with_lr_schedule(optimizer, self, self.hparams.lr_schedule, SR_STEPS)

    # the frozen VGG is not stored in checkpoints (rebuilt from its weights setting)
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        drop_frozen_state(checkpoint, _VGG_PREFIX)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.vgg is not None:
            restore_frozen_state(checkpoint, self.vgg, _VGG_PREFIX)

    @torch.no_grad()
    def preview_grid(self, images: torch.Tensor) -> Image.Image:
        """Rows: bicubic up-sampling of the low-resolution input, the network's output, the original."""
        was_training = self.net.training
        self.net.eval()
        try:
            hr = images.to(self.device)
            low = self.low_res(hr)
            out = self.net(low).float().cpu()
            bicubic = F.interpolate(low, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1).cpu()
        finally:
            self.net.train(was_training)
        tiles = [fimage.to_pil(t) for t in bicubic] + [fimage.to_pil(t) for t in out] + \
                [fimage.to_pil(t) for t in images.cpu()]
        return fimage.make_grid(tiles, ncols=len(images))


def export_sr(weights: str | os.PathLike, onnx_path: str | os.PathLike, overwrite: bool = True) -> Path | None:
    """Export SR weights with fastnst.export (plain graph, verified; metadata ``fastnst_task`` and
    ``fastnst_factor``). Failures are logged, never fatal: the weights are safe."""
    try:
        from fastnst.export import export_onnx
    except ImportError as exc:
        log.warning("ONNX export skipped (%s)", exc)
        return None
    try:
        return Path(export_onnx(weights, onnx_path, overwrite=overwrite))  # SR files: see export._load_source
    except Exception as exc:  # noqa: BLE001 - the trained weights are saved; export can be redone
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("ONNX export failed (%s: %s); the weights are saved in %s", type(exc).__name__, first, weights)
        return None


def check_sr_resume(path: str | os.PathLike, sr_config: dict[str, Any], loss: str) -> Path:
    """Check that ``path`` is a ``fastnst train-sr`` checkpoint of this network and loss; returns it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"--resume checkpoint '{path}' does not exist; pass the last.ckpt of an earlier run")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise ModelFormatError(f"--resume '{path}' is not a fastnst training checkpoint (it does not load as a "
                               f"weights-only PyTorch checkpoint); pass the last.ckpt written by fastnst train-sr") from None
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    if not isinstance(hparams, dict) or "sr_config" not in hparams or "optimizer_states" not in ckpt:
        raise ModelFormatError(f"--resume '{path}' is not a fastnst train-sr checkpoint; "
                               f"pass the last.ckpt written by fastnst train-sr")
    if dict(hparams["sr_config"]) != dict(sr_config):
        raise ModelFormatError(f"--resume '{path}' holds another network ({hparams['sr_config']}); pass the same "
                               f"--factor and network settings as the run that wrote it")
    if hparams.get("loss") != loss:
        raise ModelFormatError(f"--resume '{path}' was trained with the {hparams.get('loss')} loss; pass --loss "
                               f"{hparams.get('loss')}")
    return path


def run_sr_training(data: str = "coco", out: str | os.PathLike | None = None, *, factor: int = 4,
                    loss: str = "perceptual", image_size: int = SR_IMAGE_SIZE, batch_size: int = 4,
                    steps: int | None = None, epochs: int | None = None, lr: float = 1e-3,
                    lr_schedule: str = "constant", feature_layer: str = SR_FEATURE_LAYER,
                    feature_weight: float = 1.0, pixel_weight: float = 1.0,
                    tv_weight: float | None = None, blur_sigma: float = BLUR_SIGMA, channels: int = 64,
                    num_residual: int = 4, norm: str = "batch", skip: str = "none", vgg_weights: str | None = None, seed: int = 0,
                    resume: str | os.PathLike | None = None, overwrite: bool = False,
                    num_workers: int | None = None, num_previews: int = 4, preview_every: int = 500,
                    checkpoint_every: int = 1000, export: bool = True, data_split: str = "train",
                    **trainer_options: Any) -> TrainResult:
    """Train a ×``factor`` super-resolution network on ``data``; returns where the results are.

    ``data`` as for style training (coco, a hub id, a folder, parquet). ``out`` defaults to
    ``checkpoints/sr-x<factor>-<loss>``. Writes ``out/last.ckpt``, ``out/sr-x<factor>.safetensors``,
    ``out/sr-x<factor>.onnx`` (verified), previews and ``metrics.csv``. Everything is checked before
    anything is written (FastNSTError: bad factor/loss/sizes/weights, crops not divisible by the factor,
    unusable data, foreign --resume file, an ``out`` holding an earlier run without ``overwrite``).
    Any other keyword goes to Lightning's Trainer.
    """
    if isinstance(factor, bool) or factor not in SR_FACTORS:
        raise ConfigError(f"--factor must be one of {', '.join(map(str, SR_FACTORS))}, got {factor}")
    if loss not in SR_LOSSES:
        raise unknown_choice("super-resolution loss", loss, SR_LOSSES)
    for name, value in (("image size", image_size), ("batch size", batch_size)):
        _check_positive(f"the {name}", value)
    _check_positive("--steps", steps, allow_none=True)
    _check_positive("--epochs", epochs, allow_none=True)
    _check_positive("checkpoint_every", checkpoint_every)
    if image_size % factor or image_size // factor < 8:
        raise ConfigError(f"the image size must be a multiple of the factor {factor} with low-resolution crops "
                          f"of at least 8 pixels, got {image_size}; try {max(8 * factor, image_size // factor * factor)}")
    if isinstance(preview_every, bool) or not isinstance(preview_every, int) or preview_every < 0:
        raise ConfigError(f"preview_every must be zero or a positive whole number, got {preview_every}")
    if tv_weight is None:  # the paper's baseline is the plain pixel loss
        tv_weight = DEFAULT_TV_WEIGHT if loss == "perceptual" else 0.0
    weights = {n: _check_weight(n, v) for n, v in (("feature", feature_weight), ("pixel", pixel_weight),
                                                   ("tv", tv_weight))}
    blur_sigma = _check_weight("blur sigma", blur_sigma)
    if blur_sigma > 10:
        raise ConfigError(f"the blur sigma must be at most 10 pixels, got {blur_sigma}")
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise ConfigError(f"the learning rate must be a number, got {lr!r}") from None
    if not lr > 0 or math.isinf(lr):
        raise ConfigError(f"the learning rate must be positive, got {lr}")
    trainer_options = _trainer_kwargs(trainer_options)
    if steps is None and epochs is None:
        steps = SR_STEPS
    if loss == "perceptual":
        vgg_weights = resolve_weights(vgg_weights)

    datamodule = ContentDataModule(data, image_size=image_size, batch_size=batch_size, num_workers=num_workers,
                                   num_previews=num_previews, split=data_split, seed=seed)
    datamodule.check()

    pl.seed_everything(seed, workers=True, verbose=False)
    module = SuperResolutionModule(factor, loss, feature_layer, weights["feature"], weights["pixel"],
                                   weights["tv"], vgg_weights if loss == "perceptual" else None, lr, lr_schedule,
                                   blur_sigma, channels, num_residual, norm, skip, preview_every)
    ckpt_path = check_sr_resume(resume, module.net.config, loss) if resume is not None else None
    name = f"sr-x{factor}"
    if out is None:
        out = ckpt_path.parent if ckpt_path is not None else Path("checkpoints") / f"{name}-{loss}"
    out = Path(out).expanduser()
    weights_path = out / f"{name}.safetensors"
    last_ckpt = out / "last.ckpt"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file; pass a folder")
    if ckpt_path is None and not overwrite and (weights_path.exists() or last_ckpt.exists()):
        raise OutputExistsError(f"'{out}' already holds a training run; pass --resume {last_ckpt} to continue it, "
                                f"--overwrite to start again, or another --out")

    description = (f"training a x{factor} super-resolution network ({loss} loss) on {datamodule.describe()}: "
                   f"{image_size}x{image_size} crops from {image_size // factor}x{image_size // factor} inputs, "
                   f"batch {batch_size}, " + (f"{steps} steps" if steps is not None else f"{epochs} epochs"))
    trainer, loggers, previews = fit_module(module, datamodule, out, steps=steps, epochs=epochs,
                                            preview_every=preview_every, checkpoint_every=checkpoint_every,
                                            ckpt_path=ckpt_path, trainer_options=trainer_options,
                                            description=description)
    trainer.save_checkpoint(str(last_ckpt), weights_only=False)
    if trainer.interrupted:
        log.warning("training interrupted at step %d; resume with --resume %s", trainer.global_step, last_ckpt)
    if module.skipped_images or datamodule.skipped:
        log.warning("skipped %d unreadable images", module.skipped_images + datamodule.skipped)
    onnx_path: Path | None = None
    if trainer.is_global_zero:
        metadata = {"loss": loss, "feature_layer": feature_layer if loss == "perceptual" else "",
                    "feature_weight": weights["feature"], "pixel_weight": weights["pixel"],
                    "tv_weight": weights["tv"], "blur_sigma": blur_sigma, "steps": int(trainer.global_step),
                    "image_size": image_size, "batch_size": batch_size, "lr": lr, "data": str(data),
                    "vgg_weights": (Path(vgg_weights).name if vgg_weights not in (None, "imagenet", "random")
                                    else str(vgg_weights))}
        net = module.net.to("cpu").float().eval()
        save_sr(weights_path, net, metadata, overwrite=True)
        if export:
            onnx_path = export_sr(weights_path, out / f"{name}.onnx")
    metrics = Path(loggers[0].log_dir) / "metrics.csv"
    return TrainResult(weights=weights_path, checkpoint=last_ckpt, onnx=onnx_path,
                       metrics=metrics if metrics.is_file() else None, preview=previews.last_path,
                       steps=int(trainer.global_step), interrupted=bool(trainer.interrupted),
                       is_global_zero=bool(trainer.is_global_zero))


__all__ = ["SuperResolutionModule", "run_sr_training", "check_sr_resume", "SR_LOSSES"]
