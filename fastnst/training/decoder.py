"""Training the decoders of universal style transfer (Li et al. 2017, section 3.1) with Lightning.

:class:`DecoderModule` holds a :class:`~fastnst.networks.decoders.Decoder` and the frozen VGG encoder it
inverts, cut at the decoder's layer (relu{level}_1). Each step encodes content crops, decodes them and fits
the decoder to reconstruct the input: pixel loss (mean squared error) plus λ times the feature loss (mean
squared error between the encoder's features of the output and of the input, at the same layer). The
encoder is the normalised VGG (``--vgg-normalize rms``, unit activations) that the universal model runs, so
the decoder learns the features it will be given. A level-1 decoder is one linear convolution: its first step
sets it to the least-squares solution on that batch (:func:`~fastnst.networks.decoders.fit_linear`), which the
loss then fine-tunes. The data, Trainer, loggers, previews, checkpoints and
resume are :func:`fastnst.training.run.run`'s, as for style and super-resolution training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from fastnst import image as fimage
from fastnst.fileio import sha256_file
from fastnst.losses import content_loss
from fastnst.networks.decoders import LEVEL_LAYERS, Decoder, fit_linear, save_decoder
from fastnst.networks.vgg import VGGFeatures
from fastnst.training.checkpointing import check_checkpoint
from fastnst.training.config import DecoderTrainConfig
from fastnst.training.modules import LossNetworkModule, weights_label
from fastnst.training.run import TrainResult, run


def encoder_record(vgg: VGGFeatures, normalize: str) -> dict[str, Any]:
    """What a decoder records of its encoder: architecture, normalisation, weights file and its sha256."""
    source = vgg.weights
    sha = sha256_file(source) if source not in ("imagenet", "random") and Path(source).is_file() else source
    return {"arch": vgg.arch, "normalize": normalize, "weights": weights_label(source), "sha256": sha}


class DecoderModule(LossNetworkModule):
    """A decoder trained to invert the VGG encoder at relu{level}_1. The arguments are the fields of
    :class:`~fastnst.training.config.DecoderTrainConfig` of the same names (checked, defaults there).

    Args:
        level: 1..4, the layer relu{level}_1 the decoder inverts.
        net: the encoder, 'vgg16' or 'vgg19'. width: a factor on the decoder's channels.
        pixel_weight, feature_weight: loss weights (paper: 1 and 1).
        vgg_weights, vgg_normalize: the encoder's weights and normalisation.
        lr, lr_schedule: Adam learning rate and schedule.
    """

    config_class = DecoderTrainConfig
    command = "train-decoder"
    frozen_prefix = "encoder."

    def __init__(self, level: int, net: str, width: float, pixel_weight: float, feature_weight: float,
                 vgg_weights: str | None, vgg_normalize: str, lr: float, lr_schedule: str) -> None:
        super().__init__()
        self.decoder = Decoder(level, net, width)
        self.encoder = VGGFeatures((LEVEL_LAYERS[level],), net, vgg_weights, normalize=vgg_normalize)
        vgg_weights = self.encoder.weights
        self.linear_fitted = False  # level 1: least-squares start (networks.decoders.fit_linear), once per run
        self.save_hyperparameters()
        self.hparams["decoder_config"] = self.decoder.config

    # -- a run -----------------------------------------------------------------------------------------

    def check_resume(self, path: str | os.PathLike) -> Path:
        path, hparams = check_checkpoint(path, "decoder_config", self.command)
        if dict(hparams["decoder_config"]) != self.decoder.config:
            raise_resume_mismatch(path, hparams["decoder_config"])
        return path

    @property
    def run_name(self) -> str:
        return f"decoder-{self.decoder.layer}"

    def describe(self, config: DecoderTrainConfig, data: str) -> str:
        return (f"training a {self.decoder.arch} {self.decoder.layer} decoder (width {self.decoder.width:g}) on "
                f"{data}: {config.image_size}x{config.image_size} crops")

    def save_weights(self, path: Path, config: DecoderTrainConfig, steps: int) -> None:
        hp = self.hparams
        metadata = {"pixel_weight": hp.pixel_weight, "feature_weight": hp.feature_weight, "steps": steps,
                    "image_size": config.image_size, "batch_size": config.batch_size, "lr": config.lr,
                    "data": str(config.data)}
        save_decoder(path, self.decoder.to("cpu").float().eval(), encoder_record(self.encoder, hp.vgg_normalize),
                     metadata, overwrite=True)

    # -- the loss ------------------------------------------------------------------------------------

    @property
    def frozen(self) -> VGGFeatures:
        return self.encoder

    def trainable(self) -> torch.nn.Module:
        return self.decoder

    def losses(self, output: torch.Tensor, target: torch.Tensor,
               target_features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms of a reconstruction and their sum under 'total'."""
        hp = self.hparams
        terms: dict[str, torch.Tensor] = {}
        if hp.pixel_weight:
            terms["pixel"] = hp.pixel_weight * F.mse_loss(output, target)
        if hp.feature_weight:
            layer = self.decoder.layer
            terms["feature"] = hp.feature_weight * content_loss(self.encoder(output)[layer], target_features)
        terms["total"] = sum(terms.values(), output.new_zeros(()))
        return terms

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            features = self.encoder(images)[self.decoder.layer]
        if self.decoder.level == 1 and not self.linear_fitted and self.training:  # the first step of a fresh run
            fit_linear(self.decoder, features.float(), images.float())
            self.linear_fitted = True
        return self.losses(self.decoder(features), images, features)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.linear_fitted = True  # a resumed run continues its weights

    def preview_outputs(self, images: torch.Tensor) -> Image.Image:
        """Rows: the input, its reconstruction."""
        x = images.to(self.device)
        out = self.decoder(self.encoder(x)[self.decoder.layer]).float().clamp(0, 1).cpu()
        tiles = [fimage.to_pil(t) for t in images.cpu()] + [fimage.to_pil(t) for t in out]
        return fimage.make_grid(tiles, ncols=len(images))


def raise_resume_mismatch(path: Path, recorded: Any) -> None:
    from fastnst.errors import ModelFormatError

    raise ModelFormatError(f"--resume '{path}' holds another decoder ({recorded}); pass the same --level, --net "
                           f"and --width as the run that wrote it")


def run_decoder_training(config: DecoderTrainConfig | str | os.PathLike | None = None, *args: Any,
                         **options: Any) -> TrainResult:
    """Train a universal-style-transfer decoder as ``config`` says; returns where the results are.

    ``config`` is a :class:`~fastnst.training.config.DecoderTrainConfig`, or ``data`` followed by ``out`` and
    keyword options (data sources as for style training). ``out`` defaults to ``checkpoints/decoder-relu<L>_1``.
    Writes ``out/last.ckpt``, ``out/decoder-relu<L>_1.safetensors``, previews and ``metrics.csv``. Everything is
    checked before anything is written.
    """
    return run(DecoderModule, config, *args, **options)


__all__ = ["DecoderModule", "run_decoder_training", "encoder_record"]
