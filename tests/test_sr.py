"""Super-resolution: network shapes, degradation, a short training whose loss falls, export + ORT parity,
``fastnst upscale`` (exact size, tiling, bad input) and ``fastnst train-sr`` end to end (tiny, random VGG)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from fastnst import cli
from fastnst.errors import ConfigError, InputError, ModelFormatError
from fastnst.training.export import export_onnx
from fastnst.networks.sr import SRNet, degrade, load_sr, save_sr, sr_metadata
from fastnst.networks.transformer import TransformerNet
from fastnst.training.config import SRTrainConfig
from fastnst.training.sr import SuperResolutionModule, run_sr_training
from fastnst.runtime.upscaler import TILE_MARGIN, Upscaler
from tests.conftest import plain_onnx, synthetic_rgb


def _tiny(factor: int = 4) -> SRNet:
    torch.manual_seed(factor)
    return SRNet(factor, channels=8, num_residual=1).eval()


@pytest.fixture(scope="module")
def x4_model(tmp_path_factory):
    """A tiny random x4 network exported to ONNX (the weights file too)."""
    net = _tiny(4)
    # non-trivial batch-norm statistics, so that the exported affine map is tested
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp("sr")
    weights = save_sr(folder / "x4.safetensors", net, {"loss": "perceptual"})
    # verify=False: the parity test below compares with torch itself
    return export_onnx(net, folder / "x4.onnx", metadata=sr_metadata(net), verify=False), weights, net


@pytest.mark.parametrize("factor", [4, 8])
@pytest.mark.parametrize("size", [(7, 9), (16, 16), (13, 22)])
@pytest.mark.parametrize("skip", ["none", "bicubic"])
def test_shapes_for_both_factors_and_odd_sizes(factor, size, skip):
    torch.manual_seed(factor)
    net = SRNet(factor, channels=8, num_residual=1, skip=skip).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, factor * size[0], factor * size[1])
    assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert len(net.ups) == {4: 2, 8: 3}[factor]


def test_bad_factor_and_settings():
    for bad in (3, 16, 0, True):
        with pytest.raises(ConfigError, match="factor"):
            SRNet(bad)
    with pytest.raises(ConfigError):
        SRNet(4, norm="layer")


def test_margin_covers_the_receptive_field():
    """Changing a pixel farther than ``margin`` input pixels away leaves an output pixel unchanged."""
    net = _tiny(4)
    x = torch.rand(1, 3, 48, 48)
    y0 = net(x)
    x2 = x.clone()
    x2[..., 24 + net.margin + 1:, :] = torch.rand_like(x2[..., 24 + net.margin + 1:, :])
    y1 = net(x2)
    assert torch.equal(y0[..., : 24 * 4 + 4, :], y1[..., : 24 * 4 + 4, :])
    assert net.margin <= TILE_MARGIN


def test_degrade_blurs_then_downsamples():
    hr = torch.zeros(1, 3, 32, 32)
    hr[..., ::2, :] = 1.0  # a 2-px stripe pattern: blur (sigma 1) removes it
    lr = degrade(hr, 4)
    assert lr.shape == (1, 3, 8, 8)
    assert float(lr.std()) < 0.05 and abs(float(lr.mean()) - 0.5) < 0.05
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(degrade(flat, 4), torch.full((1, 3, 8, 8), 0.3), atol=1e-5)


@pytest.mark.parametrize("loss,skip", [("pixel", "none"), ("perceptual", "none"), ("pixel", "bicubic")])
def test_few_steps_loss_falls(loss, skip):
    torch.manual_seed(0)
    config = SRTrainConfig(loss=loss, vgg_weights="random", channels=8, num_residual=1, lr=3e-3, skip=skip).check()
    module = SuperResolutionModule.from_config(config)
    hr = torch.stack([torch.from_numpy(np.asarray(synthetic_rgb(32, 32, seed=s), np.float32) / 255).permute(2, 0, 1)
                      for s in range(4)])
    low = module.low_res(hr)
    opt = torch.optim.Adam(module.net.parameters(), lr=3e-3)
    values = []
    for _ in range(25):
        opt.zero_grad()
        total = module.losses(module.net(low), hr)["total"]
        total.backward()
        opt.step()
        values.append(float(total.detach()))
    assert values[-1] < (0.6 if skip == "none" else 0.9) * values[0], values  # bicubic starts close already
    assert max(values) <= 1.5 * values[0]  # no jump after the first steps


def test_bicubic_skip_starts_at_bicubic():
    net = SRNet(4, channels=64, num_residual=4, skip="bicubic").eval()  # the residual's gate starts at zero
    x = torch.rand(1, 3, 11, 14)
    with torch.no_grad():
        base = torch.nn.functional.interpolate(x, scale_factor=4.0, mode="bicubic", align_corners=False).clamp(0, 1)
        assert torch.allclose(net(x), base, atol=1e-6)


def test_export_parity_and_metadata(x4_model):
    onnx_path, weights, net = x4_model
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["fastnst_task"] == "super-resolution" and meta["fastnst_factor"] == "4"
    assert [i.name for i in session.get_inputs()] == ["image"] and len(session.get_outputs()) == 1
    x = torch.rand(1, 3, 19, 27)
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = net(x).numpy()
    assert got.shape == (1, 3, 76, 108)
    assert np.abs(got - ref).max() < 1e-4
    loaded, meta2 = load_sr(weights)
    assert loaded.config == net.config and meta2["fastnst_factor"] == "4"
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x))


def test_tiles_equal_one_piece(x4_model):
    up = Upscaler(x4_model[0])
    rgb = np.asarray(synthetic_rgb(83, 61, seed=5))
    whole = up.upscale_array(rgb, tile=0)
    tiled = up.upscale_array(rgb, tile=24)
    assert whole.shape == (244, 332, 3)
    assert np.array_equal(whole, tiled)


def test_upscale_cli_exact_size(x4_model, tmp_path, capsys):
    src = tmp_path / "odd.png"
    synthetic_rgb(37, 23, seed=2).save(src)
    out = tmp_path / "big.png"
    assert cli.main(["upscale", "--model", str(x4_model[0]), str(src), "-o", str(out), "--tile", "16"]) == 0
    assert Image.open(out).size == (148, 92)
    # the same again without --overwrite: refused, the file kept
    before = out.read_bytes()
    assert cli.main(["upscale", "--model", str(x4_model[0]), str(src), "-o", str(out)]) == 2
    assert out.read_bytes() == before


def test_upscale_bad_input(x4_model, tmp_path, capsys, monkeypatch):
    model = str(x4_model[0])
    src = tmp_path / "in.png"
    synthetic_rgb(40, 30).save(src)
    tiny = tmp_path / "tiny.png"
    synthetic_rgb(5, 30).save(tiny)
    style_net = TransformerNet(channels=(4, 8, 8), num_residual=1, end_kernel=3).eval()
    style_model = plain_onnx(style_net, tmp_path / "style.onnx")
    cases = [
        (["--factor", "8", str(src)], "does not match the model"),
        ([str(tiny)], "too small"),
        ([str(tmp_path / "missing.png")], "does not exist"),
    ]
    for extra, message in cases:
        out = tmp_path / "o.png"
        assert cli.main(["upscale", "--model", model, *extra, "-o", str(out)]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fastnst: error")]
        assert len(err) == 1 and message in err[0], err
        assert not out.exists()
    assert cli.main(["upscale", "--model", str(style_model), str(src), "-o", str(tmp_path / "o.png")]) == 2
    assert "style model" in capsys.readouterr().err
    assert cli.main(["stylize", "--model", model, str(src), "-o", str(tmp_path / "o.png")]) == 2
    assert "super-resolution model" in capsys.readouterr().err
    monkeypatch.setenv("FASTNST_MAX_PIXELS", str(40 * 30 * 15))  # below 16x the input
    assert cli.main(["upscale", "--model", model, str(src), "-o", str(tmp_path / "o.png")]) == 2
    assert "above the cap" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_upscale_without_torch(x4_model, tmp_path):
    src = tmp_path / "in.png"
    synthetic_rgb(21, 17).save(src)
    code = ("import sys; sys.modules['torch'] = None; from fastnst.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "upscale", "--model", str(x4_model[0]), str(src),
                             "-o", str(tmp_path / "big.png")], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(tmp_path / "big.png").size == (84, 68)


def test_train_sr_end_to_end(tmp_path, capsys):
    data = tmp_path / "photos"
    data.mkdir()
    for s in range(3):
        synthetic_rgb(64, 56, seed=s).save(data / f"p{s}.png")
    out = tmp_path / "run"
    rc = cli.main(["train-sr", "--data", str(data), "--out", str(out), "--vgg-weights", "random", "--steps", "2",
                   "--image-size", "32", "--batch-size", "2", "--channels", "8", "--num-residual", "1",
                   "--skip", "bicubic", "--num-workers", "0", "--num-previews", "1", "--preview-every", "0",
                   "--trainer.enable_progress_bar", "false"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "sr-x4.onnx" in text
    up = Upscaler(out / "sr-x4.onnx")
    assert up.factor == 4
    assert (out / "last.ckpt").is_file() and (out / "previews").is_dir()
    net, meta = load_sr(out / "last.ckpt")
    assert net.factor == 4 and meta["loss"] == "perceptual"
    # resume continues the same run; a pixel-loss run cannot resume it
    rc = cli.main(["train-sr", "--data", str(data), "--resume", str(out / "last.ckpt"), "--steps", "3",
                   "--image-size", "32", "--batch-size", "2", "--channels", "8", "--num-residual", "1",
                   "--skip", "bicubic", "--vgg-weights", "random", "--num-workers", "0", "--export", "false",
                   "--trainer.enable_progress_bar", "false"])
    assert rc == 0 and "after 3 steps" in capsys.readouterr().err
    with pytest.raises(ModelFormatError, match="pixel|perceptual"):
        run_sr_training(str(data), out, loss="pixel", resume=out / "last.ckpt", steps=4, image_size=32,
                        channels=8, num_residual=1, skip="bicubic")
    # fastnst export takes the SR weights too (export._load_source recognises fastnst_task)
    assert cli.main(["export", str(out / "sr-x4.safetensors"), "-o", str(tmp_path / "again.onnx")]) == 0
    assert Upscaler(tmp_path / "again.onnx").factor == 4


def test_train_sr_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="factor"):
        run_sr_training(str(tmp_path), tmp_path / "o", factor=3)
    with pytest.raises(ConfigError, match="multiple of the factor"):
        run_sr_training(str(tmp_path), tmp_path / "o", image_size=30)
    with pytest.raises(ConfigError, match="loss"):
        run_sr_training(str(tmp_path), tmp_path / "o", loss="ssim")
    with pytest.raises(InputError):
        run_sr_training(str(tmp_path / "nothing"), tmp_path / "o", image_size=32, vgg_weights="random")
    assert not (tmp_path / "o").exists()


SR_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("sr-*.yaml"))


@pytest.mark.parametrize("config", SR_CONFIGS, ids=[c.name for c in SR_CONFIGS])
def test_every_sr_config_loads_and_instantiates(config):
    from fastnst.commands.train_sr import DESCRIPTION
    from fastnst.training.parser import command_parser, config_from_args

    parser = command_parser(SRTrainConfig, "fastnst train-sr", DESCRIPTION)
    argv = ["--config", str(config), "--vgg-weights", "random"]
    cfg = config_from_args(SRTrainConfig, parser, parser.parse_args(argv), argv).check()
    assert cfg.steps > 0 and cfg.image_size % cfg.factor == 0
    module = SuperResolutionModule.from_config(cfg)
    assert module.hparams.tv_weight == cfg.tv_weight and module.net.config["factor"] == cfg.factor
    with torch.no_grad():
        assert module(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * cfg.factor, 8 * cfg.factor)
