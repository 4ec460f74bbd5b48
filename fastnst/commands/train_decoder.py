"""``fastnst train-decoder``: train a decoder of universal style transfer (Li et al. 2017, section 3.1).

Options come from :class:`fastnst.training.config.DecoderTrainConfig`; the parser is ``fastnst train``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastnst.commands.train import run

DESCRIPTION = """Train a decoder that inverts the VGG encoder from one layer (relu1_1 ... relu4_1) back to the
image, on crops of any photos: pixel loss plus feature loss at that layer (Li et al. 2017). The universal
style model (fastnst stylize --style any_painting.jpg) holds one decoder per level; assemble them with
fastnst export-universal.

examples:
  fastnst train-decoder --level 4 --data photos/ --vgg-weights vgg16-caffe.safetensors
  fastnst train-decoder --level 1 --data photos/ --steps 2000 --out checkpoints/decoder-relu1_1
  fastnst train-decoder --level 4 --data photos/ --resume checkpoints/decoder-relu4_1/last.ckpt --steps 40000
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst train-decoder``; returns the exit code (FastNSTError propagates to the CLI)."""
    return run("train-decoder", argv, DESCRIPTION)
