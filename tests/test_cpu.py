"""The CPU's features and the number format they decide (fastnst.cpu), for training and the Gatys family.

This machine may lack AVX512-BF16 and AMX: the choice is tested with the flags faked (FASTNST_CPU_FLAGS), and
the float32 path is checked to be the one that ran before (nothing set, nothing cast).
"""

from __future__ import annotations

import pytest

from fastnst.cpu import FLAGS_ENV, PRECISIONS, choose_precision, cpu
from fastnst.errors import ConfigError

AMX = "sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
AVX2 = "sse4_2 avx avx2 fma f16c"


def test_the_cpu_is_read_from_the_kernel_and_described():
    found = cpu()
    assert found.model and found.source in ("/proc/cpuinfo", FLAGS_ENV, "unknown")
    line = found.describe()
    assert found.model in line and "native reduced precision" in line


@pytest.mark.parametrize("flags,bf16,int8", [(AMX, True, True), (AVX2, False, False),
                                             ("avx2 avx_vnni", False, True), ("none", False, False)])
def test_native_formats_follow_the_flags(monkeypatch, flags, bf16, int8):
    monkeypatch.setenv(FLAGS_ENV, flags)
    found = cpu()
    assert (found.bf16, found.int8, found.source) == (bf16, int8, FLAGS_ENV)
    assert choose_precision("auto") == ("bf16" if bf16 else "fp32")
    assert choose_precision(None, "cpu") == choose_precision("auto", "cpu")
    assert choose_precision("auto", "cuda") == "fp32" and choose_precision("auto", "cuda:1") == "fp32"
    assert choose_precision("fp32") == "fp32" and choose_precision("bf16", "cuda") == "bf16"  # forced
    assert PRECISIONS == ("auto", "fp32", "bf16")


def test_training_precision_auto_sets_bf16_mixed_only_where_the_cpu_has_it(monkeypatch):
    from fastnst.training.config import TrainConfig, trainer_precision

    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", "random")
    monkeypatch.setenv(FLAGS_ENV, AVX2)
    assert TrainConfig.checked("wave.jpg", "photos", trainer={"accelerator": "cpu"}).trainer == {"accelerator": "cpu"}
    assert "precision" not in TrainConfig.checked("wave.jpg").trainer  # float32 as before: Lightning's default
    monkeypatch.setenv(FLAGS_ENV, AMX)
    assert TrainConfig.checked("wave.jpg", trainer={"accelerator": "cpu"}).trainer["precision"] == "bf16-mixed"
    assert "precision" not in TrainConfig.checked("wave.jpg", precision="fp32").trainer  # overridden
    assert TrainConfig.checked("wave.jpg", precision="fp32", trainer={"precision": "32-true"}).trainer == \
        {"precision": "32-true"}
    assert trainer_precision("auto", {"precision": "16-mixed"}, "cpu") == {"precision": "16-mixed"}  # the user's
    assert trainer_precision("auto", {}, "cuda") == {}  # GPUs: as before unless asked
    assert trainer_precision("bf16", {}, "cuda") == {"precision": "bf16-mixed"}
    with pytest.raises(ConfigError, match="disagree"):
        TrainConfig.checked("wave.jpg", precision="fp32", trainer={"precision": "bf16-mixed"})
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(style="wave.jpg", precision="int8").check()
    assert TrainConfig.build("wave.jpg", precision="bf16-mixed").trainer == {"precision": "bf16-mixed"}  # Lightning's


def test_gatys_loss_autocasts_only_where_asked(monkeypatch):
    import torch

    from fastnst.optimize.objective import GatysLoss
    from fastnst.optimize.settings import gatys_settings

    monkeypatch.setenv(FLAGS_ENV, AVX2)
    kwargs = dict(vgg_weights="random", vgg_normalize="none", net="vgg16",
                  content_layers=["relu2_2"], style_layers=["relu1_2", "relu2_2"])
    fp32 = GatysLoss(gatys_settings(None, kwargs), torch.device("cpu"))
    assert not fp32.bf16
    monkeypatch.setenv(FLAGS_ENV, AMX)
    auto = GatysLoss(gatys_settings(None, kwargs), torch.device("cpu"), vgg=fp32.vgg)
    forced = GatysLoss(gatys_settings(None, {**kwargs, "precision": "fp32"}), torch.device("cpu"), vgg=fp32.vgg)
    assert auto.bf16 and not forced.bf16
    from PIL import Image

    img = Image.new("RGB", (32, 32), (120, 60, 200))
    for loss in (fp32, auto):
        loss.set_targets(img, [img], (32, 32), None)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    a, b = fp32(x), auto(x)
    assert all(v.dtype == torch.float32 for v in b.values())  # reported and minimised in float32
    assert b["total"].item() == pytest.approx(a["total"].item(), rel=0.05)  # bf16: close, not equal
    b["total"].backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
