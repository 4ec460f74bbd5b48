"""``fastnst train``: train a feed-forward style network (Johnson et al. 2016).

Built on jsonargparse (the parser behind LightningCLI): ``--config FILE.yaml`` and flags combine,
flags win wherever they stand; every Lightning Trainer argument is available as ``--trainer.NAME``
(``--trainer.devices 2 --trainer.strategy ddp --trainer.precision bf16-mixed``) and as a
``trainer:`` section in the config file. ``--print-config`` prints the merged configuration.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any, Optional, Union

from fastnst.errors import ConfigError

# Trainer arguments fastnst sets itself (flags of its own, or fixed parts of a run).
_TRAINER_SKIP = {"max_steps", "max_epochs", "logger", "default_root_dir", "enable_checkpointing"}

_DESCRIPTION = """Train a network that stylises any photo in one forward pass, from one style image.

examples:
  fastnst train --style wave.jpg --data coco
  fastnst train --style wave.jpg --data photos/ --config configs/cpu-quick.yaml
  fastnst train --style wave.jpg --data photos/ --resume checkpoints/wave/last.ckpt --steps 4000
  fastnst train --style wave.jpg --style mosaic.png --data photos/   (one network, two styles)
  fastnst train --style wave.jpg --trainer.devices 2 --trainer.strategy ddp --trainer.precision bf16-mixed
"""


def _defaults() -> dict[str, Any]:
    from fastnst.training import run_training

    return {name: p.default for name, p in inspect.signature(run_training).parameters.items()
            if p.default is not inspect.Parameter.empty}


def build_parser() -> Any:
    """The ``fastnst train`` argument parser (a jsonargparse ArgumentParser)."""
    import pytorch_lightning as pl
    from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

    from fastnst.training import LR_SCHEDULES, TRAINER_DEFAULTS

    d = _defaults()
    class Formatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """jsonargparse's help with the description's line breaks kept."""

    p = ArgumentParser(prog="fastnst train", description=_DESCRIPTION, print_config="--print-config",
                       exit_on_error=False, env_prefix=False, default_env=False, formatter_class=Formatter)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file of options (flags given too win)")
    p.add_argument("--style", type=Optional[Union[list[str], str]], default=None, required=False,
                   help="style image (a file, a painting name such as starry_night, downloaded once, or a "
                        "generated style such as mosaic); required. Repeat it to train one network for several "
                        "styles (conditional instance norm; pick or blend them with fastnst stylize --style)")
    p.add_argument("--style-scales", type=Optional[Union[list[float], str]], default=None,
                   help="several styles: one factor per style on its style loss, e.g. 1,0.5,2 (default: all 1)")
    p.add_argument("--data", type=str, default=d["data"],
                   help="content images: coco (streamed from the Hugging Face hub), a hub dataset id, "
                        "a folder of images, or .parquet file(s)")
    p.add_argument("--out", type=Optional[str], default=None,
                   help="output folder (default: checkpoints/<style name>, or the --resume file's folder)")
    p.add_argument("--image-size", type=int, default=d["image_size"], help="training crop size (paper: 256)")
    p.add_argument("--style-size", type=Optional[int], default=None,
                   help="long side of the style image (default: its size, at most 512)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="images per step (paper: 4)")
    p.add_argument("--steps", type=Optional[int], default=None,
                   help="optimisation steps (default: 40000, paper; unlimited when --epochs is given)")
    p.add_argument("--epochs", type=Optional[int], default=None, help="passes over the data")
    p.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate (paper: 1e-3)")
    p.add_argument("--lr-schedule", type=str, default=d["lr_schedule"],
                   help=f"one of {', '.join(LR_SCHEDULES)}")
    p.add_argument("--content-weight", type=float, default=d["content_weight"], help="loss weight (reference implementation)")
    p.add_argument("--style-weight", type=float, default=d["style_weight"], help="loss weight (reference implementation)")
    p.add_argument("--tv-weight", type=float, default=d["tv_weight"], help="total variation")
    p.add_argument("--content-layers", type=Union[list[str], str], default=list(d["content_layers"]),
                   help="VGG16 layers, comma-separated (paper: relu2_2)")
    p.add_argument("--style-layers", type=Union[list[str], str], default=list(d["style_layers"]),
                   help="VGG16 layers, comma-separated (paper: relu1_2,relu2_2,relu3_3,relu4_3)")
    p.add_argument("--arch", type=str, default=d["arch"], help="network preset: johnson or fast")
    p.add_argument("--vgg-weights", type=Optional[str], default=None,
                   help="imagenet, random or PATH (default: $FASTNST_VGG_WEIGHTS, else imagenet)")
    p.add_argument("--vgg-normalize", type=str, default=d["vgg_normalize"],
                   help="loss-network normalisation: rms (default: one loss scale for any VGG weights), "
                        "mean (Gatys' normalised VGG) or none (raw features; rescale the loss weights)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed")
    p.add_argument("--resume", type=Optional[str], default=None, help="continue from a last.ckpt")
    p.add_argument("--overwrite", type=bool, default=False, help="replace an earlier run in --out")
    p.add_argument("--num-workers", type=Optional[int], default=None,
                   help="data loader processes (default: spare cores, at most 4)")
    p.add_argument("--num-previews", type=int, default=d["num_previews"], help="preview images")
    p.add_argument("--preview-every", type=int, default=d["preview_every"],
                   help="steps between preview grids")
    p.add_argument("--checkpoint-every", type=int, default=d["checkpoint_every"],
                   help="steps between checkpoints (also written every --checkpoint-minutes)")
    p.add_argument("--checkpoint-minutes", type=float, default=d["checkpoint_minutes"],
                   help="minutes between checkpoints, whatever the step (0: steps only)")
    p.add_argument("--export", type=bool, default=d["export"], help="export <out>/<style>.onnx at the end")
    p.add_argument("--channels-last", type=bool, default=d["channels_last"], help="NHWC convolutions (faster on CPU)")
    p.add_argument("--data-split", type=str, default=d["data_split"], help="hub dataset split (default: train)")
    p.add_class_arguments(pl.Trainer, "trainer", skip=_TRAINER_SKIP, fail_untyped=False, sub_configs=True,
                          instantiate=False)
    p.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    return p


def instantiate(parser: Any, cfg: Any) -> Any:
    """Instantiate class specs in ``cfg`` (e.g. --trainer.callbacks) with any jsonargparse 4.x."""
    method = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return method(cfg)


def _configs_first(argv: Sequence[str]) -> list[str]:
    """Move ``--config FILE`` arguments to the front so that flags win wherever they stand."""
    configs: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            configs += [arg, argv[i + 1]]
            i += 2
            continue
        if arg.startswith("--config="):
            configs.append(arg)
        else:
            rest.append(arg)
        i += 1
    return configs + rest


def _styles_together(argv: Sequence[str]) -> list[str]:
    """Gather repeated ``--style X`` flags into one ``--style`` holding a JSON list (several styles)."""
    styles: list[str] = []
    rest: list[str] = []
    at = -1
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--style" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--style="):
            value, i = arg[len("--style="):], i + 1
        else:
            rest.append(arg)
            i += 1
            continue
        at = len(rest) if at < 0 else at
        styles.append(value)
    if len(styles) <= 1:
        return list(argv)
    return rest[:at] + ["--style", json.dumps(styles)] + rest[at:]


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception's message on one line (jsonargparse spreads one error over several)."""
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_resources(trainer_options: dict[str, Any]) -> None:
    """CPU processes bounded by the CPUs available (``--trainer.devices 1000`` would start 1000 processes);
    torch's threads capped at the CPUs this process may use (fastnst.checks, as stylize and gatys do)."""
    import torch

    from fastnst import checks

    cpus = checks.available_cpus()
    accelerator = str(trainer_options.get("accelerator") or "auto")
    devices = trainer_options.get("devices")
    if isinstance(devices, str) and devices.strip().isdigit():  # jsonargparse keeps "1000" a string
        devices = int(devices)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and isinstance(devices, int) and not isinstance(devices, bool) and devices > cpus:
        raise ConfigError(f"--trainer.devices {devices} on the CPU starts {devices} processes, but this process "
                          f"may use {cpus} CPUs; use at most {cpus}")
    nodes = trainer_options.get("num_nodes")
    if isinstance(nodes, int) and not 1 <= nodes <= 4096:
        raise ConfigError(f"--trainer.num_nodes must be between 1 and 4096, got {nodes}")
    if torch.get_num_threads() > cpus:
        torch.set_num_threads(cpus)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fastnst train`` with ``argv``; returns the exit code (FastNSTError propagates to the CLI)."""
    args = _styles_together(_configs_first(list(sys.argv[1:] if argv is None else argv)))
    parser = build_parser()
    try:
        cfg = parser.parse_args(args)
    except SystemExit as exc:  # --help, --print-config
        return int(exc.code or 0)
    except Exception as exc:  # jsonargparse's ArgumentError: bad flag, type or config file
        raise ConfigError(f"{_one_line(exc)}; see 'fastnst train --help'") from None
    if not cfg.style:
        raise ConfigError("--style is required: pass the style image, e.g. --style wave.jpg")
    try:
        init = instantiate(parser, cfg)
    except Exception as exc:
        raise ConfigError(f"bad trainer option: {_one_line(exc)}") from None
    trainer_options = {k: v for k, v in vars(init.trainer).items() if not k.startswith("__")}
    _check_resources(trainer_options)

    from fastnst.training import run_training

    options = {k: getattr(cfg, k) for k in (
        "image_size", "style_size", "batch_size", "steps", "epochs", "lr", "lr_schedule", "content_weight",
        "style_weight", "tv_weight", "content_layers", "style_layers", "arch", "vgg_weights", "seed", "resume",
        "overwrite", "num_workers", "num_previews", "preview_every", "checkpoint_every", "checkpoint_minutes", "export",
        "channels_last", "data_split", "style_scales", "vgg_normalize")}
    from fastnst.styles.paintings import resolve_styles

    # files as given; painting names (starry_night, ...) downloaded once; generated names (mosaic, ...) made
    style = resolve_styles(cfg.style)
    style = [str(s) for s in style] if isinstance(style, list) else str(style)
    return report(run_training(style, cfg.data, cfg.out, **options, **trainer_options))


def report(result: Any, next_step: str | None = None) -> int:
    """Print where a training run's results are (rank zero only); the exit code (130 if interrupted).

    ``next_step`` is a command template with ``{onnx}`` for the exported model, printed when there is one.
    """
    if result.is_global_zero:
        state = "interrupted at" if result.interrupted else "finished after"
        print(f"training {state} {result.steps} steps", file=sys.stderr)
        if result.preview:
            print(f"previews:   {result.preview.parent}/ (latest {result.preview.name})")
        if result.metrics:
            print(f"losses:     {result.metrics}")
        print(f"checkpoint: {result.checkpoint}   (continue with --resume {result.checkpoint})")
        print(f"weights:    {result.weights}")
        if result.onnx:
            print(f"onnx:       {result.onnx}")
            if next_step:
                print(f"next:       {next_step.format(onnx=result.onnx)}")
    return 130 if result.interrupted else 0
