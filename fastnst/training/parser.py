"""The command-line parser of ``fastnst train`` and ``fastnst train-sr``, built from a config class's fields.

:func:`command_parser` turns the fields of a :class:`~fastnst.training.config.RunConfig` subclass into
jsonargparse flags (``--config FILE.yaml`` too, and every Lightning Trainer argument as ``--trainer.NAME``);
:func:`prepare_argv` accepts fastnst's spellings (repeated ``--style``, ``--overwrite true``);
:func:`config_from_args` gives the config object of a parsed command line (relative paths in a config file
taken from its folder). Torch-free at import.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastnst.errors import ConfigError
from fastnst.options import field_types, flag_name
from fastnst.training.config import PATH_OPTIONS, TRAINER_DEFAULTS, TRAINER_FIXED, RunConfig


def command_parser(cls: type[RunConfig], prog: str, description: str) -> Any:
    """A jsonargparse parser with a flag per command-line field of ``cls`` (help and defaults from the field),
    ``--config FILE.yaml`` and the Lightning Trainer's arguments as ``--trainer.NAME``."""
    import argparse

    import pytorch_lightning as pl
    from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter

    class Formatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """jsonargparse's help with the description's line breaks kept."""

    parser = ArgumentParser(prog=prog, description=description, print_config="--print-config", exit_on_error=False,
                            env_prefix=False, default_env=False, formatter_class=Formatter)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file of options (flags given too win)")
    hints, shared = field_types(cls), {f.name for f in dataclasses.fields(RunConfig)}
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name in shared):  # the command's own options first
        if not f.metadata.get("cli", True):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if hints[f.name] is bool and default is False:  # a bare flag, as in every other command
            parser.add_argument(flag_name(f), action="store_true", dest=f.name, help=f.metadata["help"])
        else:
            parser.add_argument(flag_name(f), type=hints[f.name], default=default, dest=f.name,
                                help=f.metadata["help"])
    parser.add_class_arguments(pl.Trainer, "trainer", skip=set(TRAINER_FIXED) | {"logger"}, fail_untyped=False,
                               sub_configs=True, instantiate=False)
    parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    return parser


def prepare_argv(argv: Sequence[str]) -> list[str]:
    """``--config FILE`` moved to the front (flags win wherever they stand); repeated ``--style X`` flags
    gathered into one ``--style`` holding a JSON list (one network, several styles); ``--overwrite true``
    (the old spelling) read as ``--overwrite``."""
    configs: list[str] = []
    rest: list[str] = []
    styles: list[tuple[int, str]] = []
    i = 0
    while i < len(argv):
        arg, nxt = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        name, eq, value = arg.partition("=")
        if name == "--overwrite" and (value or nxt) in ("true", "false"):  # the old spelling: --overwrite true
            rest += [name] if (value or nxt) == "true" else []
            i += 1 if eq else 2
            continue
        if name in ("--config", "--style") and (eq or nxt is not None):
            value, i = (value, i + 1) if eq else (nxt, i + 2)
            if name == "--config":
                configs += [name, value]
            else:
                styles.append((len(rest), value))
            continue
        rest.append(arg)
        i += 1
    if styles:
        at = styles[0][0]
        values = [v for _, v in styles]
        rest[at:at] = ["--style", values[0] if len(values) == 1 else json.dumps(values)]
    return configs + rest


def config_from_args(cls: type[RunConfig], parser: Any, namespace: Any, argv: Sequence[str]) -> Any:
    """The ``cls`` instance of a parsed command line: Trainer arguments instantiated (e.g. callbacks), and
    relative paths that came from a config file taken from that file's folder."""
    try:
        init = parser.instantiate(namespace)
    except Exception as exc:
        raise ConfigError(f"bad trainer option: {one_line(exc)}") from None
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(namespace).items() if k in names}
    values["trainer"] = {k: v for k, v in vars(init.trainer).items() if not k.startswith("__")}
    flags = {a.partition("=")[0] for a in argv}
    for i, arg in enumerate(argv):  # later files win, as in the parser
        if arg.partition("=")[0] == "--config":
            path = Path(arg.partition("=")[2] or argv[i + 1])
            _paths_from(path, values, {f.name for f in dataclasses.fields(cls) if flag_name(f) in flags})
    return cls(**values)


def _paths_from(path: Path, values: dict[str, Any], on_command_line: set[str]) -> None:
    """Relative paths of the config file ``path`` taken from its folder (options given as flags win)."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return
    for key in PATH_OPTIONS:
        if not isinstance(loaded, dict) or key not in loaded or key in on_command_line:
            continue
        given = loaded[key]
        if isinstance(given, str) and not os.path.isabs(os.path.expanduser(given)):
            near = path.parent / given
            values[key] = str(near) if near.exists() or key in ("out", "resume") else given
        elif isinstance(given, list):
            values[key] = [str(path.parent / g) if isinstance(g, str) and (path.parent / g).exists() else g
                           for g in given]


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception's message on one line (jsonargparse spreads one error over several)."""
    text = " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["command_parser", "prepare_argv", "config_from_args", "one_line"]
