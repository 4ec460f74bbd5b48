"""Training Johnson et al.'s super-resolution networks (paper sections 3 and 4.2) with Lightning.

:class:`SuperResolutionModule` holds an :class:`~fastnst.networks.sr.SRNet` and its loss:

* ``loss="perceptual"`` (the paper's network): feature reconstruction loss at relu2_2 of a frozen
  VGG16 plus total variation;
* ``loss="pixel"`` (the paper's baseline): per-pixel mean squared error (plus optional TV).

Each step takes high-resolution crops from the same :class:`~fastnst.training.data.ContentDataModule` as
style training, makes the low-resolution inputs the paper's way (Gaussian blur σ = 1.0, then bicubic
down-sampling by the factor) and fits the network to map them back. The Trainer, loggers, previews,
checkpoints, resume and export are those of :mod:`fastnst.training.run` (:func:`~fastnst.training.run.fit_module`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import image as fimage
from fastnst.training.config import BLUR_SIGMA, SR_FEATURE_LAYER, SR_LOSSES, SR_STEPS, SR_TV_WEIGHT, SRTrainConfig  # noqa: F401
from fastnst.training.data import ContentDataModule
from fastnst.errors import ModelFormatError
from fastnst.losses import content_loss, total_variation
from fastnst.networks.sr import SRNet, degrade, save_sr
from fastnst.networks.vgg import VGGFeatures
from fastnst.training.run import (LossNetworkModule, TrainResult, check_checkpoint, finish_run, fit_module,
                              output_folder, weights_label)


class SuperResolutionModule(LossNetworkModule):
    """An SRNet trained with the perceptual (feature reconstruction) or the pixel loss (settings checked
    by :class:`~fastnst.training.config.SRTrainConfig`).

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

    default_steps = SR_STEPS

    def __init__(self, factor: int = 4, loss: str = "perceptual", feature_layer: str = SR_FEATURE_LAYER,
                 feature_weight: float = 1.0, pixel_weight: float = 1.0, tv_weight: float | None = None,
                 vgg_weights: str | None = None, lr: float = 1e-3, lr_schedule: str = "constant",
                 blur_sigma: float = BLUR_SIGMA, channels: int = 64, num_residual: int = 4, norm: str = "batch",
                 skip: str = "none", sr_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        if tv_weight is None:  # the paper's baseline is the plain pixel loss
            tv_weight = SR_TV_WEIGHT if loss == "perceptual" else 0.0
        self.net = SRNet.from_config(dict(sr_config)) if sr_config is not None else SRNet(
            factor, channels, num_residual, norm, skip)
        self.vgg: VGGFeatures | None = None
        if loss == "perceptual":
            self.vgg = VGGFeatures((feature_layer,), "vgg16", vgg_weights)
            vgg_weights = self.vgg.weights
        sr_config = self.net.config
        factor = self.net.factor
        self.save_hyperparameters()

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

    @property
    def frozen(self) -> VGGFeatures | None:
        return self.vgg

    def trainable(self) -> torch.nn.Module:
        return self.net

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            low = self.low_res(images)
        return self.losses(self.net(low), images)

    def preview_outputs(self, images: torch.Tensor) -> Image.Image:
        """Rows: bicubic up-sampling of the low-resolution input, the network's output, the original."""
        hr = images.to(self.device)
        low = self.low_res(hr)
        out = self.net(low).float().cpu()
        bicubic = F.interpolate(low, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1).cpu()
        tiles = [fimage.to_pil(t) for t in bicubic] + [fimage.to_pil(t) for t in out] + \
                [fimage.to_pil(t) for t in images.cpu()]
        return fimage.make_grid(tiles, ncols=len(images))


def check_sr_resume(path: str | os.PathLike, sr_config: dict[str, Any], loss: str) -> Path:
    """Check that ``path`` is a ``fastnst train-sr`` checkpoint of this network and loss; returns it."""
    path, hparams = check_checkpoint(path, "sr_config", "train-sr")
    if dict(hparams["sr_config"]) != dict(sr_config):
        raise ModelFormatError(f"--resume '{path}' holds another network ({hparams['sr_config']}); pass the same "
                               f"--factor and network settings as the run that wrote it")
    if hparams.get("loss") != loss:
        raise ModelFormatError(f"--resume '{path}' was trained with the {hparams.get('loss')} loss; pass --loss "
                               f"{hparams.get('loss')}")
    return path


def run_sr_training(config: SRTrainConfig | str | os.PathLike | None = None, *args: Any, **options: Any) -> TrainResult:
    """Train a ×``factor`` super-resolution network as ``config`` says; returns where the results are.

    ``config`` is an :class:`~fastnst.training.config.SRTrainConfig`, or ``data`` followed by ``out`` and keyword
    options (data sources as for style training: coco, a hub id, a folder, parquet). ``out`` defaults to
    ``checkpoints/sr-x<factor>-<loss>``. Writes ``out/last.ckpt``, ``out/sr-x<factor>.safetensors``,
    ``out/sr-x<factor>.onnx`` (verified), previews and ``metrics.csv``. Everything is checked before
    anything is written (FastNSTError: bad factor/loss/sizes/weights, crops not divisible by the factor,
    unusable data, foreign --resume file, an ``out`` holding an earlier run without ``overwrite``).
    Other keywords go to Lightning's Trainer.
    """
    if not isinstance(config, SRTrainConfig):
        config = SRTrainConfig.build(*([config] if config is not None else []), *args, **options)
    elif args or options:
        raise TypeError("run_sr_training(config) takes no other arguments; set them on the SRTrainConfig")
    config.check()
    datamodule = ContentDataModule(config.data, image_size=config.image_size, batch_size=config.batch_size,
                                   num_workers=config.num_workers, num_previews=config.num_previews,
                                   split=config.data_split, seed=config.seed).check()
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = SuperResolutionModule(config.factor, config.loss, config.feature_layer, config.feature_weight,
                                   config.pixel_weight, config.tv_weight, config.vgg_weights, config.lr,
                                   config.lr_schedule, config.blur_sigma, config.channels, config.num_residual,
                                   config.norm, config.skip)
    ckpt_path = check_sr_resume(config.resume, module.net.config, config.loss) if config.resume else None
    name, hp, size = f"sr-x{config.factor}", module.hparams, config.image_size
    out = output_folder(config, Path("checkpoints") / f"{name}-{config.loss}", ckpt_path,
                        [f"{name}.safetensors"])
    description = (f"training a x{config.factor} super-resolution network ({config.loss} loss) on "
                   f"{datamodule.describe()}: {size}x{size} crops from {size // config.factor}x"
                   f"{size // config.factor} inputs, batch {config.batch_size}, "
                   + (f"{config.steps} steps" if config.steps is not None else f"{config.epochs} epochs"))
    trainer, previews = fit_module(module, datamodule, config, out, ckpt_path, description)

    def save(path: Path) -> None:
        metadata = {"loss": config.loss, "feature_layer": config.feature_layer if config.uses_vgg() else "",
                    "feature_weight": config.feature_weight, "pixel_weight": config.pixel_weight,
                    "tv_weight": hp.tv_weight, "blur_sigma": config.blur_sigma, "steps": int(trainer.global_step),
                    "image_size": size, "batch_size": config.batch_size, "lr": config.lr, "data": str(config.data),
                    "vgg_weights": weights_label(config.vgg_weights)}
        save_sr(path, module.net.to("cpu").float().eval(), metadata, overwrite=True)

    return finish_run(trainer, module, datamodule, config, out, name, save, previews)


__all__ = ["SuperResolutionModule", "run_sr_training", "check_sr_resume", "SR_LOSSES"]
