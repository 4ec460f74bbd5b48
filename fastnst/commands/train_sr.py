"""``fastnst train-sr``: train a perceptual-loss super-resolution network (Johnson et al. 2016, section 4.2).

Options come from :class:`fastnst.training.config.SRTrainConfig`; the parser is ``fastnst train``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastnst.commands.train import run

DESCRIPTION = """Train a network that enlarges photos 4x or 8x in one forward pass (Johnson et al. 2016):
feature reconstruction loss at relu2_2 of VGG16 (--loss perceptual) or per-pixel MSE (--loss pixel,
the paper's baseline), on crops of any photos; inputs made by Gaussian blur (sigma 1) and bicubic
down-sampling.

examples:
  fastnst train-sr --factor 4 --data photos/ --config configs/sr-x4.yaml
  fastnst train-sr --factor 8 --data coco --vgg-weights vgg16.safetensors
  fastnst train-sr --factor 4 --data photos/ --loss pixel --out checkpoints/sr-x4-pixel
  fastnst train-sr --data photos/ --resume checkpoints/sr-x4-perceptual/last.ckpt --steps 4000
then: fastnst upscale --model checkpoints/sr-x4-perceptual/sr-x4.onnx photo.jpg -o big.png
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst train-sr``; returns the exit code (FastNSTError propagates to the CLI)."""
    return run("train-sr", argv, DESCRIPTION, next_step="fastnst upscale --model {onnx} photo.jpg -o big.png")
