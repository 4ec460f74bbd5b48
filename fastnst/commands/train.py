"""``fastnst train``: train a feed-forward style network (Johnson et al. 2016).

Options come from :class:`fastnst.training.config.TrainConfig`, flags from :mod:`fastnst.training.parser`:
``--config FILE.yaml`` and flags combine (flags win), every Lightning Trainer argument is ``--trainer.NAME``
(or a ``trainer:`` section), ``--print-config`` prints the merged configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from fastnst.errors import ConfigError

DESCRIPTION = """Train a network that stylises any photo in one forward pass, from one style image.

examples:
  fastnst train --style wave.jpg --data coco
  fastnst train --style wave.jpg --data photos/ --config configs/cpu-quick.yaml
  fastnst train --style wave.jpg --data photos/ --resume checkpoints/wave/last.ckpt --steps 4000
  fastnst train --style wave.jpg --style mosaic.png --data photos/   (one network, two styles)
  fastnst train --style wave.jpg --trainer.devices 2 --trainer.strategy ddp --trainer.precision bf16-mixed
"""


def run(kind: str, argv: Sequence[str] | None, description: str, next_step: str | None = None) -> int:
    """Parse ``argv`` into the config of ``kind`` ('train', 'train-sr' or 'train-decoder'), train, print where
    the results are."""
    from fastnst.training.config import DecoderTrainConfig, SRTrainConfig, TrainConfig
    from fastnst.training.parser import command_parser, config_from_args, one_line, prepare_argv

    cls = {"train": TrainConfig, "train-sr": SRTrainConfig, "train-decoder": DecoderTrainConfig}[kind]
    prog = f"fastnst {kind}"
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = command_parser(cls, prog, description)
    try:
        namespace = parser.parse_args(prepare_argv(argv))
    except SystemExit as exc:  # --help, --print-config
        return int(exc.code or 0)
    except Exception as exc:  # jsonargparse's ArgumentError: bad flag, type or config file
        raise ConfigError(f"{one_line(exc)}; see '{prog} --help'") from None
    config = config_from_args(cls, parser, namespace, argv)
    if kind == "train":
        from fastnst.training.run import run_training as run_job
    elif kind == "train-sr":
        from fastnst.training.sr import run_sr_training as run_job
    else:
        from fastnst.training.decoder import run_decoder_training as run_job
    return report(run_job(config), next_step)


def report(result: Any, next_step: str | None = None) -> int:
    """Print where a run's results are (rank zero only); the exit code (130 if interrupted)."""
    if result.is_global_zero:
        state = "interrupted at" if result.interrupted else "finished after"
        print(f"training {state} {result.steps} steps", file=sys.stderr)
        print("\n".join(result.summary(next_step)))
    return 130 if result.interrupted else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst train`` with ``argv``; returns the exit code (FastNSTError propagates to the CLI)."""
    return run("train", argv, DESCRIPTION)
