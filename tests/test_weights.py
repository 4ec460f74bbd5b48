import pickle

import pytest
import torch

from fastnst.errors import InputError, ModelFormatError, OutputExistsError
from fastnst.networks.transformer import TransformerNet, build_transformer
from fastnst.training.weights import load_transformer, save_transformer


def _tiny() -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(channels=(4, 8, 8), num_residual=1)


def test_safetensors_roundtrip(tmp_path):
    net = _tiny()
    path = save_transformer(tmp_path / "w.safetensors", net, {"style": "wave.jpg", "steps": 12})
    loaded, meta = load_transformer(path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net.eval()(x), loaded(x))
    assert meta["style"] == "wave.jpg" and meta["steps"] == "12" and meta["fastnst_arch"] == "custom"
    assert not loaded.training
    with pytest.raises(OutputExistsError):
        save_transformer(path, net)


def test_preset_recorded(tmp_path):
    _, meta = load_transformer(save_transformer(tmp_path / "f.safetensors", build_transformer("fast")))
    assert meta["fastnst_arch"] == "fast"


def test_lightning_style_checkpoint(tmp_path):
    net = _tiny()
    ckpt = {"state_dict": {"transformer." + k: v for k, v in net.state_dict().items()} |
            {"loss.vgg.features.0.weight": torch.zeros(1)},
            "hyper_parameters": {"transformer_config": net.config, "style": "s.jpg", "style_weight": 1e10},
            "global_step": 7}
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    loaded, meta = load_transformer(path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(net.eval()(x), loaded(x))
    assert meta["global_step"] == "7" and meta["style"] == "s.jpg"


def test_wrong_files(tmp_path):
    with pytest.raises(InputError):
        load_transformer(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"hello world, not a model")
    with pytest.raises(ModelFormatError):
        load_transformer(junk)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"model.weight": torch.zeros(2)}, "hyper_parameters": {}}, foreign)
    with pytest.raises(ModelFormatError, match="not of a fastnst"):
        load_transformer(foreign)
    from safetensors.torch import save_file
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelFormatError, match="fastnst_config"):
        load_transformer(plain)


def test_pickle_with_code_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(ModelFormatError, match="not a weights-only checkpoint.*will not load it"):
        load_transformer(path)
    assert not marker.exists()
