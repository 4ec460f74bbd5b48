"""Training options: built from arguments, checked once at the boundary (bounds, names with "did you mean",
derived defaults), Lightning Trainer arguments checked too, and all of it importable without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fastnst.errors import ConfigError
from fastnst.training.config import DEFAULT_STEPS, SR_STEPS, SR_TV_WEIGHT, SRTrainConfig, TrainConfig, \
    check_trainer_options

ROOT = Path(__file__).resolve().parent.parent


def test_build_takes_positional_fields_and_gives_the_rest_to_the_trainer():
    config = TrainConfig.build(Path("wave.jpg"), "photos", None, steps=3, precision="bf16-mixed")
    assert (config.style, config.data, config.out, config.steps) == ("wave.jpg", "photos", None, 3)
    assert config.trainer == {"precision": "bf16-mixed"}
    assert SRTrainConfig.build("photos", "out").data == "photos"
    with pytest.raises(TypeError, match="at most 3 positional"):
        TrainConfig.build("a", "b", "c", "d")


def test_checked_builds_or_takes_a_config_and_checks_it(monkeypatch):
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", "random")
    config = TrainConfig.checked("wave.jpg", "photos", image_size="32", batch_size=2.0, lr=1, style_weight=1)
    assert config.style == ["wave.jpg"] and config.image_size == 32 and config.batch_size == 2
    assert isinstance(config.lr, float) and isinstance(config.style_weight, float)
    assert config.steps == DEFAULT_STEPS and config.vgg_weights == "random"  # derived defaults filled in once
    assert TrainConfig.checked(config) is config
    with pytest.raises(TypeError, match="no other arguments"):
        TrainConfig.checked(config, steps=3)
    assert TrainConfig.checked("wave.jpg", epochs=2).steps is None  # epochs given: no step limit
    assert SRTrainConfig.checked().steps == SR_STEPS


@pytest.mark.parametrize("options, message", [
    ({"style": None}, "--style is required"),
    ({"arch": "jonson"}, "did you mean 'johnson'"),
    ({"style_layers": "relu1_2,relu4_4"}, "did you mean 'relu4_3'"),
    ({"image_size": 8}, "--image-size"),
    ({"batch_size": 0}, "--batch-size"),
    ({"tv_weight": float("nan")}, "tv"),
    ({"lr_schedule": "linear"}, "linear"),
    ({"style_scales": "1,2"}, "applies to several styles"),
    ({"style": ["a.png", "b.png"], "style_scales": "1,-2"}, "finite and positive"),
    ({"style": ["a.png", "b.png"], "style_scales": "1"}, "1 style scales for 2 styles"),
    ({"not_an_option": 1}, "unknown option 'not_an_option'"),
])
def test_bad_options_are_refused(options, message):
    options = {"style": "wave.jpg", "vgg_weights": "random", **options}
    with pytest.raises(ConfigError, match=message):
        TrainConfig.checked(**options)


def test_checked_values_are_normalised():
    config = TrainConfig.checked(["a.png", "b.png"], content_layers="relu3_3", style_layers="relu1_2, relu2_2",
                                 style_scales="1,0.5", vgg_weights="random")
    assert config.content_layers == ["relu3_3"] and config.style_layers == ["relu1_2", "relu2_2"]
    assert config.style_scales == [1.0, 0.5]


def test_super_resolution_options():
    pixel = SRTrainConfig.checked(loss="pixel", vgg_weights="random")
    assert pixel.tv_weight == 0.0 and pixel.vgg_weights is None  # no loss network: no weights to resolve
    assert SRTrainConfig.checked(vgg_weights="random").tv_weight == SR_TV_WEIGHT
    with pytest.raises(ConfigError, match="--factor must be one of 2, 4, 8"):
        SRTrainConfig.checked(factor=3)
    with pytest.raises(ConfigError, match="multiple of the factor 4.*try 96"):
        SRTrainConfig.checked(image_size=97, vgg_weights="random")
    with pytest.raises(ConfigError, match="unknown vgg16 layer"):
        SRTrainConfig.checked(feature_layer="relu9_9", vgg_weights="random")
    with pytest.raises(ConfigError, match="did you mean 'bicubic'"):
        SRTrainConfig.checked(skip="bicubc", vgg_weights="random")  # at the boundary, before any data is read
    with pytest.raises(ConfigError, match="norm"):
        SRTrainConfig.checked(norm="layer", vgg_weights="random")


def test_trainer_options_are_checked():
    assert check_trainer_options({"precision": "32", "max_time": None}) == {"precision": "32", "max_time": None}
    with pytest.raises(ConfigError, match="did you mean 'max_time'"):
        check_trainer_options({"max_tim": 1})
    with pytest.raises(ConfigError, match="may use"):
        check_trainer_options({"accelerator": "cpu", "devices": "1000"})
    with pytest.raises(ConfigError, match="num_nodes"):
        check_trainer_options({"num_nodes": 0})
    with pytest.raises(ConfigError, match="unknown option 'max_steps'"):
        check_trainer_options({"max_steps": 3})  # a run's own option, not a trainer argument


def test_the_options_import_without_torch():
    code = ("import sys, fastnst, fastnst.training, fastnst.training.config, fastnst.training.parser\n"
            "assert fastnst.TrainConfig is fastnst.training.config.TrainConfig\n"
            "heavy = sorted(m for m in ('torch', 'pytorch_lightning', 'jsonargparse') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
