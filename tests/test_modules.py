"""The Lightning modules: the learning-rate schedules, the style module built from a checked config (its
checkpoint without the VGG), and the trainer contract: a new trainer is a LossNetworkModule subclass and a
config class, and fastnst.training.run.run does the rest (here a tiny one, for two real steps)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from fastnst.errors import ModelFormatError
from fastnst.options import option
from fastnst.training.checkpointing import check_checkpoint
from fastnst.training.config import DEFAULT_STEPS, RunConfig, TrainConfig
from fastnst.training.modules import LossNetworkModule, StyleTransferModule, weights_label, with_lr_schedule
from fastnst.training.run import run
from tests.conftest import synthetic_rgb


@pytest.fixture
def styles(tmp_path):
    paths = [tmp_path / "wave.png", tmp_path / "dots.png"]
    for i, path in enumerate(paths):
        synthetic_rgb(40, 40, seed=9 + i).save(path)
    return [str(p) for p in paths]


def _lr_after(schedule: str, steps: int, total: int = 100) -> float:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    module = SimpleNamespace(_trainer=SimpleNamespace(estimated_stepping_batches=total))
    out = with_lr_schedule(optimizer, module, schedule, DEFAULT_STEPS)
    if schedule == "constant":
        assert out is optimizer
        return optimizer.param_groups[0]["lr"]
    assert out["lr_scheduler"]["interval"] == "step"
    for _ in range(steps):
        optimizer.step()
        out["lr_scheduler"]["scheduler"].step()
    return optimizer.param_groups[0]["lr"]


def test_learning_rate_schedules():
    assert _lr_after("constant", 100) == 1.0
    assert _lr_after("cosine", 50) == pytest.approx(0.505) and _lr_after("cosine", 100) == pytest.approx(0.01)
    assert _lr_after("step", 74) == 1.0 and _lr_after("step", 75) == pytest.approx(0.1)
    unknown = SimpleNamespace(_trainer=SimpleNamespace(estimated_stepping_batches=float("inf")))  # epochs, streams
    sched = with_lr_schedule(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), unknown, "step", 40)
    assert sched["lr_scheduler"]["scheduler"].step_size == 30  # 75% of the default steps


def test_the_style_module_is_built_from_the_checked_config(styles):
    config = TrainConfig.checked(styles, arch="fast", vgg_weights="random", style_size=32, style_scales="1,0.5",
                                 content_layers="relu3_3", lr=2e-3, lr_schedule="cosine", channels_last=False)
    module = StyleTransferModule.from_config(config)
    hp = module.hparams
    assert module.num_styles == 2 and module.transformer.style_names == ["wave", "dots"]
    assert (hp.arch, hp.style_name, hp.lr, hp.lr_schedule, hp.content_layers) == ("fast", "wave+dots", 2e-3,
                                                                                   "cosine", ["relu3_3"])
    assert hp.style_scales == [1.0, 0.5] and module.style_scales.tolist() == [1.0, 0.5]
    assert module.style_targets_relu1_2.shape == (2, 64, 64)  # one Gram target per style, as buffers
    assert module.run_name == "wave+dots" and module.default_folder(config) == Path("checkpoints") / "wave+dots"
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and not any(k.startswith("loss.vgg.") for k in checkpoint["state_dict"])
    module.on_load_checkpoint(checkpoint)  # the frozen VGG comes back, so that the checkpoint loads strictly
    assert set(checkpoint["state_dict"]) == set(module.state_dict())


def test_from_style_uses_the_configs_defaults(styles):
    module = StyleTransferModule.from_style(styles[0], arch="fast", vgg_weights="random", style_size=32)
    defaults = TrainConfig()
    assert module.num_styles == 1 and module.hparams.style_scales is None
    assert (module.hparams.content_weight, module.hparams.style_weight, module.hparams.lr) == (
        defaults.content_weight, defaults.style_weight, defaults.lr)
    assert module.loss.style_layers == tuple(defaults.style_layers)
    assert weights_label("random") == "random" and weights_label("/w/vgg16.safetensors") == "vgg16.safetensors"


# ------------------------------------------------------------------ a new trainer in a few lines


@dataclasses.dataclass
class SmoothConfig(RunConfig):
    """A toy trainer's options: a 3x3 convolution learning to blur."""

    width: int = option(3, "kernel size", low=1)

    def uses_vgg(self) -> bool:
        return False


class SmoothModule(LossNetworkModule):
    config_class = SmoothConfig
    command = "train-smooth"

    def __init__(self, width: int, lr: float, lr_schedule: str) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(3, 3, width, padding=width // 2)
        self.save_hyperparameters()

    @classmethod
    def from_config(cls, config: SmoothConfig) -> "SmoothModule":
        return cls(config.width, config.lr, config.lr_schedule)

    def check_resume(self, path: str | os.PathLike) -> Path:
        path, hparams = check_checkpoint(path, "width", self.command)
        if hparams["width"] != self.hparams.width:
            raise ModelFormatError("another width")
        return path

    @property
    def run_name(self) -> str:
        return "smooth"

    def describe(self, config: SmoothConfig, data: str) -> str:
        return f"training a {config.width}x{config.width} blur on {data}"

    def save_weights(self, path: Path, config: SmoothConfig, steps: int) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path), {"steps": str(steps)})

    def trainable(self) -> torch.nn.Module:
        return self.net

    def terms(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pixel = F.mse_loss(self.net(images), F.avg_pool2d(images, 3, 1, 1))
        return {"pixel": pixel, "total": pixel}

    def preview_outputs(self, images: torch.Tensor):
        from fastnst import image as fimage

        return fimage.make_grid([fimage.to_pil(t) for t in self.net(images.to(self.device)).clamp(0, 1).cpu()])


def test_a_new_trainer_is_a_module_and_a_config(tmp_path, caplog):
    from safetensors import safe_open

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        synthetic_rgb(40, 40, seed=i).save(photos / f"{i}.png")
    options = dict(image_size=16, batch_size=2, num_workers=0, num_previews=1, preview_every=0, export=False,
                   enable_progress_bar=False)
    with caplog.at_level("INFO", logger="fastnst.training.run"):
        result = run(SmoothModule, str(photos), str(tmp_path / "out"), steps=2, **options)
    assert result.steps == 2 and result.weights == tmp_path / "out" / "smooth.safetensors"
    with safe_open(str(result.weights), framework="pt") as f:
        assert f.metadata() == {"steps": "2"} and set(f.keys()) == {"weight", "bias"}
    assert "training a 3x3 blur on" in caplog.text and "batch 2, 2 steps" in caplog.text
    more = run(SmoothModule, str(photos), steps=3, resume=str(result.checkpoint), **options)  # its own checkpoints
    assert more.steps == 3 and more.weights == result.weights
    with pytest.raises(ModelFormatError, match="another width"):
        run(SmoothModule, str(photos), steps=4, width=5, resume=str(result.checkpoint), **options)


def test_a_new_style_from_a_trained_network_learns_only_its_norms(styles, tmp_path):
    from fastnst.networks.transformer import PRESETS, TransformerNet
    from fastnst.training.weights import save_transformer

    base = tmp_path / "base.safetensors"
    save_transformer(base, TransformerNet(**PRESETS["fast"], num_styles=2, style_names=["x", "y"]),
                     {"style_weight": 0.5})
    module = StyleTransferModule.from_style(styles[0], from_model=str(base), vgg_weights="random", style_size=32)
    net = module.transformer
    assert net.num_styles == 1 and module.hparams.arch == "fast" and module.hparams.from_model == "base.safetensors"
    optimizer = module.configure_optimizers()
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for n, p in net.named_parameters() if ".norm" in n}
    everything = StyleTransferModule.from_style(styles[0], from_model=str(base), finetune="all",
                                                vgg_weights="random", style_size=32)
    assert all(p.requires_grad for p in everything.transformer.parameters())


def test_from_takes_one_style_and_weights_not_onnx(styles, tmp_path):
    from fastnst.errors import FastNSTError

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(FastNSTError, match="ONNX model"):
        TrainConfig(style=styles[0], from_model=str(onnx), vgg_weights="random").check()
    with pytest.raises(FastNSTError, match="does not exist"):
        TrainConfig(style=styles[0], from_model=str(tmp_path / "none.safetensors"), vgg_weights="random").check()
    onnx.rename(tmp_path / "m.safetensors")
    with pytest.raises(FastNSTError, match="one new style"):
        TrainConfig(style=styles, from_model=str(tmp_path / "m.safetensors"), vgg_weights="random").check()
