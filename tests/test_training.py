"""A training run (fastnst.training.run): a few real steps on tiny images with a random VGG; loss falls, resume
continues, outputs saved, bad options refused before anything is written."""

from __future__ import annotations

import csv

import pytest
import torch

from fastnst.errors import ConfigError, ModelFormatError, OutputExistsError
from fastnst.training.checkpointing import check_resume
from fastnst.training.modules import StyleTransferModule
from fastnst.training.run import run_training, train
from fastnst.training.weights import load_transformer
from tests.conftest import synthetic_rgb


@pytest.fixture
def tiny(tmp_path):
    """A folder of four small photos and a style image."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        synthetic_rgb(48, 40, seed=i).save(photos / f"{i}.png")
    style = tmp_path / "wave.png"
    synthetic_rgb(40, 40, seed=9).save(style)
    return photos, style


FAST = dict(image_size=32, batch_size=2, arch="fast", vgg_weights="random", num_workers=0, num_previews=1,
            export=False, enable_progress_bar=False)


def _losses(path) -> list[tuple[int, float]]:
    with open(path) as f:
        return [(int(r["step"]), float(r["loss/total"])) for r in csv.DictReader(f)]


def test_training_lowers_the_loss_and_writes_results(tiny, tmp_path):
    photos, style = tiny
    out = tmp_path / "run"
    result = run_training(style, photos, out, steps=16, preview_every=8, **FAST)
    losses = [v for _, v in _losses(result.metrics)]
    assert len(losses) == 16
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.5 * first, losses  # measured: 3692 -> ~400 with seed 0
    assert result.weights == out / "wave.safetensors" and result.steps == 16
    model, meta = load_transformer(result.weights)
    assert meta["fastnst_arch"] == "fast" and meta["steps"] == "16" and meta["style_name"] == "wave"
    assert len(meta["style_sha256"]) == 64 and "relu4_3" in meta["style_layers"]
    with torch.no_grad():
        y = model(torch.rand(1, 3, 37, 29))
    assert y.shape == (1, 3, 37, 29)
    # previews at steps 0, 8, 16: a 2x2 grid (style + 1 preview image on top, outputs below)
    previews = sorted(p.name for p in (out / "previews").iterdir())
    assert previews == ["step_000000.png", "step_000008.png", "step_000016.png"]
    from PIL import Image

    assert Image.open(out / "previews" / "step_000016.png").size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)
    # the checkpoint has the network and hyper-parameters but not the frozen VGG
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert not any(k.startswith("loss.vgg.") for k in ckpt["state_dict"])
    assert ckpt["hyper_parameters"]["transformer_config"] == model.config
    net, _ = load_transformer(result.checkpoint)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k])
    # an earlier run is never overwritten silently
    with pytest.raises(OutputExistsError, match="--resume"):
        run_training(style, photos, out, steps=1, **FAST)


def test_resume_continues_from_the_saved_step(tiny, tmp_path):
    photos, style = tiny
    out = tmp_path / "run"
    first = run_training(style, photos, out, steps=3, preview_every=0, **FAST)
    ckpt = torch.load(first.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 3
    second = run_training(style, photos, steps=5, resume=first.checkpoint, preview_every=0, **FAST)
    assert second.weights == first.weights  # out defaults to the checkpoint's folder
    assert second.steps == 5
    steps = [s for s, _ in _losses(second.metrics)]
    assert steps == [3, 4]  # the second run only did steps 4 and 5
    assert torch.load(second.checkpoint, weights_only=True)["global_step"] == 5
    # a different architecture or style cannot resume this checkpoint
    module = StyleTransferModule.from_style(str(style), arch="johnson", vgg_weights="random")
    with pytest.raises(ModelFormatError, match="--arch"):
        check_resume(first.checkpoint, module.transformer.config, module.hparams.style_sha256)
    with pytest.raises(ModelFormatError, match="another style"):
        check_resume(first.checkpoint, ckpt["hyper_parameters"]["transformer_config"], "0" * 64)


def test_train_api_returns_weights_and_survives_a_failing_export(tiny, tmp_path, monkeypatch, caplog):
    import sys
    import types

    photos, style = tiny

    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setitem(sys.modules, "fastnst.training.export", types.SimpleNamespace(export_onnx=broken_export))
    with caplog.at_level("WARNING", logger="fastnst.training.run"):
        path = train(style, photos, tmp_path / "api", steps=1, preview_every=0, **dict(FAST, export=True))
    assert path == tmp_path / "api" / "wave.safetensors" and path.is_file()
    assert "ONNX export failed" in caplog.text and "exporter exploded" in caplog.text
    assert not (tmp_path / "api" / "wave.onnx").exists()


def test_bad_options_fail_before_anything_is_written(tiny, tmp_path):
    photos, style = tiny
    out = tmp_path / "never"
    bad = [dict(image_size=0), dict(batch_size=-1), dict(style_weight=-1.0), dict(tv_weight=float("nan")),
           dict(content_layers="relu2_2,relu9_1"), dict(lr=0), dict(arch="huge"), dict(steps=0),
           dict(lr_schedule="linear"), dict(not_a_trainer_option=1)]
    for options in bad:
        kwargs = dict(FAST, **options)
        with pytest.raises(ConfigError):
            run_training(style, photos, out, **kwargs)
    assert not out.exists()


def test_a_users_logger_gets_the_losses_too(tiny, tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    photos, style = tiny
    mine = CSVLogger(save_dir=str(tmp_path / "mine"), name="exp")
    result = run_training(style, photos, tmp_path / "run", steps=2, preview_every=0, logger=mine, **FAST)
    assert result.metrics is not None and result.steps == 2  # fastnst's own CSV log is kept
    assert [s for s, _ in _losses(tmp_path / "mine" / "exp" / "version_0" / "metrics.csv")] == [0, 1]


def test_the_training_face_gives_the_public_names():
    import fastnst.training
    from fastnst.training import StyleTransferModule as face_module, TrainConfig, run_training as face_run
    from fastnst.training.config import TrainConfig as config_class

    assert face_run is run_training and face_module is StyleTransferModule and TrainConfig is config_class
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fastnst.training.nothing
