"""The training commands' parser: fastnst's spellings of flags, paths in a config file taken from its folder,
one-line errors (the whole command is tested through the CLI in tests/test_cli_train.py)."""

from __future__ import annotations

import json
from pathlib import Path

from fastnst.training.config import SRTrainConfig, TrainConfig
from fastnst.training.parser import command_parser, config_from_args, one_line, prepare_argv


def test_prepare_argv_gathers_styles_moves_configs_and_reads_old_spellings():
    argv = ["--data", "d", "--style", "a.png", "--config", "c.yaml", "--style=b.png", "--overwrite", "true"]
    assert prepare_argv(argv) == ["--config", "c.yaml", "--data", "d", "--style", json.dumps(["a.png", "b.png"]),
                                  "--overwrite"]
    assert prepare_argv(["--style", "a.png", "--overwrite=false"]) == ["--style", "a.png"]
    assert prepare_argv(["--overwrite", "--steps", "3"]) == ["--overwrite", "--steps", "3"]


def test_config_files_resolve_their_relative_paths_from_their_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipes = tmp_path / "recipes"
    (recipes / "shots").mkdir(parents=True)
    (recipes / "ink.png").write_bytes(b"")
    (recipes / "r.yaml").write_text("style: ink.png\ndata: shots\nout: run\nresume: run/last.ckpt\n"
                                    "vgg_weights: missing.safetensors\nsteps: 7\n")
    parser = command_parser(TrainConfig, "fastnst train", "")
    argv = ["--config", "recipes/r.yaml"]
    config = config_from_args(TrainConfig, parser, parser.parse_args(prepare_argv(argv)), argv)
    assert isinstance(config, TrainConfig) and config.steps == 7
    near = Path("recipes")  # the config file's folder, as it was named
    assert config.style == str(near / "ink.png") and config.data == str(near / "shots")
    assert config.out == str(near / "run") and config.resume == str(near / "run" / "last.ckpt")  # to be made
    assert config.vgg_weights == "missing.safetensors"  # a file that is not there: left as written
    argv = ["--config", "recipes/r.yaml", "--data", "photos"]  # a flag is taken from the working folder
    config = config_from_args(TrainConfig, parser, parser.parse_args(prepare_argv(argv)), argv)
    assert config.data == "photos"


def test_trainer_arguments_and_sr_fields_become_flags():
    parser = command_parser(SRTrainConfig, "fastnst train-sr", "")
    argv = ["--factor", "8", "--trainer.precision", "bf16-mixed"]
    config = config_from_args(SRTrainConfig, parser, parser.parse_args(argv), argv)
    assert config.factor == 8 and config.trainer["precision"] == "bf16-mixed"
    assert config.trainer["log_every_n_steps"] == 1  # fastnst's trainer defaults


def test_one_line():
    assert one_line(ValueError("first\n   second\n\nthird")) == "first second third"
    assert one_line(ValueError("")) == "ValueError"
    long = one_line(ValueError("x" * 500), limit=40)
    assert len(long) == 40 and long.endswith("...")


def test_from_is_the_flag_of_from_model_and_config_files_give_it_relative_to_their_folder(tmp_path):
    parser = command_parser(TrainConfig, "fastnst train", "")
    argv = ["--style", "s.jpg", "--from", "builtin", "--finetune", "all"]
    config = config_from_args(TrainConfig, parser, parser.parse_args(prepare_argv(argv)), argv)
    assert (config.from_model, config.finetune) == ("builtin", "all")
    (tmp_path / "base.safetensors").write_bytes(b"")
    (tmp_path / "c.yaml").write_text("from_model: base.safetensors\n")
    argv = ["--config", str(tmp_path / "c.yaml"), "--style", "s.jpg"]
    config = config_from_args(TrainConfig, parser, parser.parse_args(prepare_argv(argv)), argv)
    assert config.from_model == str(tmp_path / "base.safetensors")
