"""``fastnst train`` through the real entry point: errors, config files, a tiny full run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from fastnst.cli import main
from tests.conftest import synthetic_rgb

CONFIGS = [c for c in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
           if not c.name.startswith("sr-")]  # sr-*.yaml are fastnst train-sr recipes (tests/test_sr.py)



@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        synthetic_rgb(40, 40, seed=i).save(photos / f"{i}.jpg")
    synthetic_rgb(32, 32, seed=7).save(tmp_path / "wave.png")
    return tmp_path


TINY = ["--vgg-weights", "random", "--image-size", "32", "--batch-size", "2", "--arch", "fast",
        "--num-workers", "0", "--num-previews", "1", "--export", "false"]


def _error(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("fastnst: error:")]
    assert len(lines) == 1, captured.err
    return lines[0]


@pytest.mark.parametrize("extra, message", [
    ([], "--style is required"),
    (["--style", "missing.jpg"], "does not exist"),
    (["--style", "photos"], "does not exist"),
    (["--style", "wave.png", "--data", "empty"], "has no images"),
    (["--style", "wave.png", "--data", "nowhere/at/all"], "does not exist"),
    (["--style", "wave.png", "--style-layers", "relu1_2,relu4_4"], "did you mean 'relu4_3'"),
    (["--style", "wave.png", "--content-layers", "relu2"], "unknown vgg16 layer"),
    (["--style", "wave.png", "--image-size", "0"], "--image-size must be >= 16, got 0"),
    (["--style", "wave.png", "--image-size", "big"], "image_size"),
    (["--style", "wave.png", "--batch-size", "-2"], "--batch-size must be >= 1, got -2"),
    (["--style", "wave.png", "--style-size", "0"], "--style-size must be >= 16"),
    (["--style", "wave.png", "--style-weight", "-1"], "--style-weight must be >= 0"),
    (["--style", "wave.png", "--content-weight", "-0.5"], "--content-weight must be >= 0"),
    (["--style", "wave.png", "--tv-weight=-1e-6"], "--tv-weight must be >= 0"),
    (["--style", "wave.png", "--resume", "nope.ckpt"], "does not exist"),
    (["--style", "wave.png", "--resume", "wave.png"], "not a fastnst training checkpoint"),
    (["--style", "wave.png", "--arch", "jonson"], "did you mean 'johnson'"),
    (["--style", "wave.png", "--trainer.max_stepz", "3"], "unrecognized"),
    (["--style", "wave.png", "--config", "missing.yaml"], "missing.yaml"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(setup, capsys, extra, message):
    (setup / "empty").mkdir()
    base = ["train", "--data", "photos"] + TINY
    line = _error(capsys, base + extra)
    assert message in line
    assert not (setup / "checkpoints").exists()


def test_unreadable_style_image(setup, capsys):
    (setup / "bad.jpg").write_bytes(b"not an image")
    assert "bad.jpg" in _error(capsys, ["train", "--style", "bad.jpg", "--data", "photos"] + TINY)


def test_config_and_flags_combine_and_flags_win(setup, capsys):
    (setup / "c.yaml").write_text("image_size: 48\nbatch_size: 3\nlr: 0.005\ntrainer:\n  precision: bf16-mixed\n")
    # the flag comes before --config and still wins
    code = main(["train", "--style", "wave.png", "--batch-size", "2", "--config", "c.yaml", "--print-config"])
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert code == 0
    assert cfg["batch_size"] == 2 and cfg["image_size"] == 48 and cfg["lr"] == 0.005
    assert cfg["trainer"]["precision"] == "bf16-mixed"
    assert cfg["trainer"]["log_every_n_steps"] == 1  # fastnst's default: per-step losses


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_config_loads_and_instantiates(setup, capsys, config):
    import pytorch_lightning as pl

    from fastnst.commands.train import DESCRIPTION
    from fastnst.training.config import TrainConfig
    from fastnst.training.modules import StyleTransferModule
    from fastnst.training.parser import command_parser, config_from_args

    parser = command_parser(TrainConfig, "fastnst train", DESCRIPTION)
    argv = ["--style", "wave.png", "--config", str(config), "--vgg-weights", "random"]
    cfg = config_from_args(TrainConfig, parser, parser.parse_args(argv), argv).check()
    assert cfg.steps and cfg.steps > 0 and cfg.image_size >= 16
    pl.Trainer(**cfg.trainer, max_steps=1, logger=False, enable_checkpointing=False,
               default_root_dir=str(setup))
    cfg.style_size = 32  # the recipe's network, losses and schedule on a small style image
    module = StyleTransferModule.from_config(cfg)
    assert module.hparams.arch == cfg.arch


def test_full_run_prints_where_the_results_are_and_resumes(setup, capsys):
    argv = ["train", "--style", "wave.png", "--data", "photos", "--steps", "2", "--preview-every", "1",
            "--trainer.enable_progress_bar", "false"] + TINY
    assert main(argv) == 0
    out_lines = capsys.readouterr().out.strip().splitlines()
    run = Path("checkpoints") / "wave"
    assert out_lines[-1] == f"weights:    {run / 'wave.safetensors'}"
    assert out_lines[-2].startswith(f"checkpoint: {run / 'last.ckpt'}")
    assert any(line.startswith("losses:") and line.endswith("metrics.csv") for line in out_lines)
    for name in ("wave.safetensors", "last.ckpt", "previews/step_000002.png"):
        assert (run / name).is_file(), name
    # running again without --resume or --overwrite refuses to replace the run
    assert "--resume" in _error(capsys, argv)
    # --resume continues to a larger step count
    assert main(argv[:-len(TINY)] + TINY + ["--steps", "3", "--resume", str(run / "last.ckpt")]) == 0
    assert torch.load(run / "last.ckpt", weights_only=True)["global_step"] == 3


def test_every_option_is_a_flag_with_the_dataclass_default_and_help(capsys):
    import dataclasses

    from fastnst.commands.train import DESCRIPTION
    from fastnst.options import defaults
    from fastnst.training.config import SRTrainConfig, TrainConfig
    from fastnst.training.parser import command_parser

    for cls in (TrainConfig, SRTrainConfig):
        parsed = vars(command_parser(cls, "fastnst x", DESCRIPTION).parse_args([]))
        for f in dataclasses.fields(cls):
            if f.metadata["cli"]:
                assert parsed[f.name] == defaults(cls)[f.name], f.name
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--checkpoint-minutes" in text and "minutes between checkpoints, whatever the step" in text


def test_overwrite_is_a_bare_flag(setup, capsys):
    argv = ["train", "--style", "wave.png", "--data", "photos", "--steps", "1", "--preview-every", "0",
            "--trainer.enable_progress_bar", "false"] + TINY
    assert main(argv) == 0
    assert "--overwrite" in _error(capsys, argv)
    assert main(argv + ["--overwrite"]) == 0  # no value, as in fastnst stylize
    assert main(argv + ["--overwrite", "true"]) == 0  # the old spelling still works


def test_relative_paths_in_a_config_file_are_taken_from_its_folder(setup, capsys):
    recipes = setup / "recipes"
    (recipes / "shots").mkdir(parents=True)
    for i in range(3):
        synthetic_rgb(40, 40, seed=i).save(recipes / "shots" / f"{i}.png")
    synthetic_rgb(32, 32, seed=5).save(recipes / "ink.png")
    (recipes / "r.yaml").write_text("style: ink.png\ndata: shots\nout: run\nsteps: 1\npreview_every: 0\n")
    code = main(["train", "--config", "recipes/r.yaml", "--trainer.enable_progress_bar", "false"] + TINY)
    assert code == 0, capsys.readouterr().err
    assert (recipes / "run" / "ink.safetensors").is_file() and not Path("run").exists()
    # a flag is still taken from the working folder
    assert main(["train", "--config", "recipes/r.yaml", "--data", "photos", "--out", "here",
                 "--trainer.enable_progress_bar", "false"] + TINY) == 0
    assert Path("here", "ink.safetensors").is_file()


def test_progress_without_a_terminal_is_plain_log_lines(setup, capsys, caplog):
    argv = ["train", "--style", "wave.png", "--data", "photos", "--steps", "2", "--preview-every", "0"] + TINY
    with caplog.at_level("INFO", logger="fastnst"):
        assert main(argv) == 0
    captured = capsys.readouterr()  # neither stream is a terminal here: no progress bar (Lightning's is on stdout)
    assert "\r" not in captured.out + captured.err and captured.out.startswith("previews:")
    assert any(r.getMessage().startswith("step 2/2  loss") for r in caplog.records)


class _Code:
    """Unpickling this would run a command (it is only ever written here, never loaded)."""

    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


def test_a_pickle_that_carries_code_is_named_as_such(setup, capsys):
    """--resume with a code-carrying pickle was reported as 'truncated or corrupt (an interrupted write or a full
    disk) ... start again with --overwrite'; torch's message was cut before its warning; its UserWarning about the
    pickle protocol leaked two lines."""
    import pickle

    torch.save({"state_dict": _Code()}, "code.ckpt")
    with open("plain.ckpt", "wb") as f:
        pickle.dump({"state_dict": {}}, f, protocol=4)
    for name, calls in (("code.ckpt", " (it calls posix.system)"), ("plain.ckpt", "")):
        code = main(["train", "--style", "wave.png", "--data", "photos", *TINY, "--resume", name])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"--resume '{name}' is not a weights-only checkpoint: only a full unpickle, which can run code in " \
               f"the file, would load it{calls}, so" in err
        assert "will not load it" in err and "truncated" not in err and "Re-running" not in err
    for argv in (["export", "code.ckpt"], ["stylize", "--model", "code.ckpt", "wave.png", "-o", "o.png"],
                 ["gatys", "wave.png", "--style", "wave.png", "-o", "g.png", "--vgg-weights", "code.ckpt"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a weights-only checkpoint" in err and "posix.system" in err, err


def test_resume_and_vgg_weights_are_checked_before_the_data_is_scanned(setup, capsys):
    """--resume and --vgg-weights were checked after the data folder had been scanned (its warnings first)."""
    (setup / "photos" / "broken.jpg").write_bytes(b"not a jpeg")  # the scan warns about it
    (setup / "vgg.safetensors").write_bytes(b"not weights either")
    for extra in (["--resume", "wave.png"], ["--vgg-weights", "vgg.safetensors"]):
        argv = ["train", "--style", "wave.png", "--data", "photos", *TINY, *extra]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "skipping" not in err, err


def test_from_builtin_starts_from_the_shipped_network(setup, capsys):
    """`fastnst train --from builtin` out of the box: the shipped weights exist, are the shipped model's network,
    and --finetune norms changes nothing but the new style's instance-norm scale and shift."""
    import numpy as np

    from fastnst.runtime import Stylizer
    from fastnst.styles import builtin
    from fastnst.training.weights import load_transformer

    base, meta = load_transformer(builtin.weights_path())
    assert base.config["style_names"] == builtin.names()
    # the shipped weights are the shipped model: torch and onnxruntime give the same picture
    photo = synthetic_rgb(48, 40, seed=3)
    x = torch.from_numpy(np.asarray(photo, np.float32) / 255).permute(2, 0, 1)[None]
    shipped = Stylizer(builtin.model_path())
    for i, name in enumerate(builtin.names()[:3]):
        with torch.no_grad():
            mine = base(x, style=torch.eye(len(builtin.names()))[i:i + 1]).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        theirs = np.asarray(shipped.stylize(photo, style=name), np.float32) / 255
        assert np.abs(mine - theirs).max() < 2 / 255, name
    argv = ["train", "--style", "wave.png", "--data", "photos", "--steps", "2", "--from", "builtin",
            "--trainer.enable_progress_bar", "false"] + [a for a in TINY if a not in ("--arch", "fast")]
    assert main(argv) == 0, capsys.readouterr().err
    tuned, tuned_meta = load_transformer(Path("checkpoints") / "wave" / "wave.safetensors")
    assert tuned_meta.get("from_model") == "builtin.safetensors"
    changed = [k for k, v in tuned.state_dict().items()
               if "norm" not in k and not torch.equal(v, base.state_dict()[k])]
    assert changed == []  # only the norms were learnt
