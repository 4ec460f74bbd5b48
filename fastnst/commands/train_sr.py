"""``fastnst train-sr``: train a perceptual-loss super-resolution network (Johnson et al. 2016, section 4.2).

The same parser machinery as ``fastnst train`` (jsonargparse): ``--config FILE.yaml`` and flags
combine, flags win; every Lightning Trainer argument is ``--trainer.NAME``; ``--print-config``.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from typing import Any, Optional

from fastnst.commands.train import _TRAINER_SKIP, _configs_first, _one_line, instantiate, report
from fastnst.errors import ConfigError

_DESCRIPTION = """Train a network that enlarges photos 4x or 8x in one forward pass (Johnson et al. 2016):
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

_OPTIONS = ("factor", "loss", "image_size", "batch_size", "steps", "epochs", "lr", "lr_schedule", "feature_layer",
            "feature_weight", "pixel_weight", "tv_weight", "blur_sigma", "channels", "num_residual", "norm", "skip",
            "vgg_weights", "seed", "resume", "overwrite", "num_workers", "num_previews", "preview_every",
            "checkpoint_every", "export", "data_split")


def build_parser() -> Any:
    """The ``fastnst train-sr`` argument parser (a jsonargparse ArgumentParser)."""
    import pytorch_lightning as pl
    from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

    from fastnst.sr_training import SR_LOSSES, run_sr_training
    from fastnst.training import LR_SCHEDULES, TRAINER_DEFAULTS

    d = {name: p.default for name, p in inspect.signature(run_sr_training).parameters.items()
         if p.default is not inspect.Parameter.empty}

    class Formatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """jsonargparse's help with the description's line breaks kept."""

    p = ArgumentParser(prog="fastnst train-sr", description=_DESCRIPTION, print_config="--print-config",
                       exit_on_error=False, env_prefix=False, default_env=False, formatter_class=Formatter)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file of options (flags given too win)")
    p.add_argument("--data", type=str, default=d["data"],
                   help="photos: coco, a hub dataset id, a folder of images, or .parquet file(s)")
    p.add_argument("--out", type=Optional[str], default=None,
                   help="output folder (default: checkpoints/sr-x<factor>-<loss>, or the --resume file's folder)")
    p.add_argument("--factor", type=int, default=d["factor"], help="up-sampling factor: 2, 4 or 8 (paper: 4, 8)")
    p.add_argument("--loss", type=str, default=d["loss"], help=f"one of {', '.join(SR_LOSSES)}")
    p.add_argument("--image-size", type=int, default=d["image_size"],
                   help="high-resolution training crop size (paper: 288)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="images per step (paper: 4)")
    p.add_argument("--steps", type=Optional[int], default=None,
                   help="optimisation steps (default: 200000, paper; unlimited when --epochs is given)")
    p.add_argument("--epochs", type=Optional[int], default=None, help="passes over the data")
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate (paper: 1e-3)")
    p.add_argument("--lr-schedule", type=str, default=d["lr_schedule"], help=f"one of {', '.join(LR_SCHEDULES)}")
    p.add_argument("--feature-layer", type=str, default=d["feature_layer"], help="VGG16 layer (paper: relu2_2)")
    p.add_argument("--feature-weight", type=float, default=d["feature_weight"], help="feature loss weight")
    p.add_argument("--pixel-weight", type=float, default=d["pixel_weight"], help="pixel loss weight")
    p.add_argument("--tv-weight", type=Optional[float], default=None,
                   help="total variation weight (default: 1 for perceptual, 0 for pixel)")
    p.add_argument("--blur-sigma", type=float, default=d["blur_sigma"], help="blur before down-sampling (paper: 1.0)")
    p.add_argument("--channels", type=int, default=d["channels"], help="network width (paper: 64)")
    p.add_argument("--num-residual", type=int, default=d["num_residual"], help="residual blocks (paper: 4)")
    p.add_argument("--norm", type=str, default=d["norm"], help="batch (paper) or none")
    p.add_argument("--skip", type=str, default=d["skip"],
                   help="none (paper) or bicubic: learn a residual over the bicubic enlargement (faster to train)")
    p.add_argument("--vgg-weights", type=Optional[str], default=None,
                   help="imagenet, random or PATH (default: $FASTNST_VGG_WEIGHTS, else imagenet)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed")
    p.add_argument("--resume", type=Optional[str], default=None, help="continue from a last.ckpt")
    p.add_argument("--overwrite", type=bool, default=False, help="replace an earlier run in --out")
    p.add_argument("--num-workers", type=Optional[int], default=None,
                   help="data loader processes (default: spare cores, at most 4)")
    p.add_argument("--num-previews", type=int, default=d["num_previews"], help="preview images")
    p.add_argument("--preview-every", type=int, default=d["preview_every"], help="steps between preview grids")
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"], help="steps between checkpoints")
    p.add_argument("--export", type=bool, default=d["export"], help="export <out>/sr-x<factor>.onnx at the end")
    p.add_argument("--data-split", type=str, default=d["data_split"], help="hub dataset split (default: train)")
    p.add_class_arguments(pl.Trainer, "trainer", skip=_TRAINER_SKIP, fail_untyped=False, sub_configs=True,
                          instantiate=False)
    p.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst train-sr``; returns the exit code (FastNSTError propagates to the CLI)."""
    args = _configs_first(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        cfg = parser.parse_args(args)
    except SystemExit as exc:  # --help, --print-config
        return int(exc.code or 0)
    except Exception as exc:  # jsonargparse's ArgumentError: bad flag, type or config file
        raise ConfigError(f"{_one_line(exc)}; see 'fastnst train-sr --help'") from None
    try:
        init = instantiate(parser, cfg)
    except Exception as exc:
        raise ConfigError(f"bad trainer option: {_one_line(exc)}") from None
    trainer_options = {k: v for k, v in vars(init.trainer).items() if not k.startswith("__")}

    from fastnst.sr_training import run_sr_training

    options = {k: getattr(cfg, k) for k in _OPTIONS}
    result = run_sr_training(cfg.data, cfg.out, **options, **trainer_options)
    return report(result, next_step="fastnst upscale --model {onnx} photo.jpg -o big.png")
