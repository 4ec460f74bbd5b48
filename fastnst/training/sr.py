"""Training Johnson et al.'s super-resolution networks (paper sections 3 and 4.2) with Lightning.

:class:`SuperResolutionModule` holds an :class:`~fastnst.networks.sr.SRNet` and its loss:

* ``loss="perceptual"`` (the paper's network): feature reconstruction loss at relu2_2 of a frozen
  VGG16 plus total variation;
* ``loss="pixel"`` (the paper's baseline): per-pixel mean squared error (plus optional TV).

Each step takes high-resolution crops from the same :class:`~fastnst.training.data.ContentDataModule` as
style training, makes the low-resolution inputs the paper's way (Gaussian blur σ = 1.0, then bicubic
down-sampling by the factor) and fits the network to map them back. The run (Trainer, loggers, previews,
checkpoints, resume and export) is :func:`fastnst.training.run.run`'s, as for style training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import image as fimage
from fastnst.losses import content_loss, total_variation
from fastnst.networks.sr import SRNet, degrade, save_sr
from fastnst.networks.vgg import VGGFeatures
from fastnst.training.checkpointing import check_sr_resume
from fastnst.training.config import SRTrainConfig
from fastnst.training.modules import LossNetworkModule, weights_label
from fastnst.training.run import TrainResult, run


class SuperResolutionModule(LossNetworkModule):
    """An SRNet trained with the perceptual (feature reconstruction) or the pixel loss. The arguments are the
    fields of :class:`~fastnst.training.config.SRTrainConfig` of the same names, checked and with their
    defaults there (:meth:`from_config`); they are the checkpoint's hyper-parameters.

    Args:
        factor: up-sampling factor (2, 4 or 8; paper: 4 and 8).
        loss: 'perceptual' (relu2_2 feature loss + TV, paper) or 'pixel' (MSE, the paper's baseline).
        feature_layer: VGG16 layer of the feature loss (paper: relu2_2).
        feature_weight, pixel_weight, tv_weight: loss weights (``tv_weight``: the config's, its default filled in).
        vgg_weights: 'imagenet', 'random' or a file (perceptual loss only).
        lr: Adam learning rate (paper: 1e-3). lr_schedule: as in style training.
        blur_sigma: Gaussian blur before down-sampling (paper: 1.0).
        channels, num_residual, norm, skip: the SRNet (paper: 64, 4, batch, none).
        sr_config: an explicit SRNet configuration (set when loading a checkpoint).
    """

    config_class = SRTrainConfig
    command = "train-sr"

    def __init__(self, factor: int, loss: str, feature_layer: str, feature_weight: float, pixel_weight: float,
                 tv_weight: float, vgg_weights: str | None, lr: float, lr_schedule: str, blur_sigma: float,
                 channels: int, num_residual: int, norm: str, skip: str,
                 sr_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.net = SRNet.from_config(dict(sr_config)) if sr_config is not None else SRNet(
            factor, channels, num_residual, norm, skip)
        self.vgg: VGGFeatures | None = None
        if loss == "perceptual":
            self.vgg = VGGFeatures((feature_layer,), "vgg16", vgg_weights)
            vgg_weights = self.vgg.weights
        sr_config = self.net.config
        factor = self.net.factor
        self.save_hyperparameters()

    # -- a run -----------------------------------------------------------------------------------------

    def check_resume(self, path: str | os.PathLike) -> Path:
        return check_sr_resume(path, self.net.config, self.hparams.loss)

    @property
    def run_name(self) -> str:
        return f"sr-x{self.net.factor}"

    def default_folder(self, config: SRTrainConfig) -> Path:
        return Path("checkpoints") / f"{self.run_name}-{config.loss}"

    def describe(self, config: SRTrainConfig, data: str) -> str:
        size, factor = config.image_size, config.factor
        return (f"training a x{factor} super-resolution network ({config.loss} loss) on {data}: {size}x{size} "
                f"crops from {size // factor}x{size // factor} inputs")

    def save_weights(self, path: Path, config: SRTrainConfig, steps: int) -> None:
        metadata = {"loss": config.loss, "feature_layer": config.feature_layer if config.uses_vgg() else "",
                    "feature_weight": config.feature_weight, "pixel_weight": config.pixel_weight,
                    "tv_weight": self.hparams.tv_weight, "blur_sigma": config.blur_sigma, "steps": steps,
                    "image_size": config.image_size, "batch_size": config.batch_size, "lr": config.lr,
                    "data": str(config.data), "vgg_weights": weights_label(config.vgg_weights)}
        save_sr(path, self.net.to("cpu").float().eval(), metadata, overwrite=True)

    # -- model ---------------------------------------------------------------------------------------

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
    return run(SuperResolutionModule, config, *args, **options)


__all__ = ["SuperResolutionModule", "run_sr_training"]
