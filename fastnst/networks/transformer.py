"""Johnson et al. (2016) image transformation network.

Layout (paper, supplementary Table 1): 9×9 conv → two stride-2 3×3 convs → residual blocks → two ×2
up-sampling stages → 9×9 conv, with instance normalisation (Ulyanov et al. 2016, which replaced the
paper's batch norm in the authors' own later code) and reflection padding. Up-sampling is
resize-then-convolve by default (Odena et al. 2016: no checkerboard artefacts); transposed
convolution, the paper's choice, is an option.

The output has exactly the input's height and width for any size: each up-sampling stage resizes to
the size its matching down-sampling stage received, so odd sizes such as 301×257 come back unchanged.
Input and output are RGB in [0, 1]; the output layer is the paper's scaled tanh, mapped to [0, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.errors import ConfigError, unknown_choice

# Presets. johnson: the paper's widths (32/64/128) and 5 residual blocks.
# fast: chosen for about 5.5× fewer FLOPs (half the widths, 3 blocks, 5×5 end convolutions);
# see scripts/bench_infer.py for its measured speed.
PRESETS: dict[str, dict[str, Any]] = {
    "johnson": {"channels": (32, 64, 128), "num_residual": 5, "end_kernel": 9, "upsample": "resize"},
    "fast": {"channels": (16, 32, 64), "num_residual": 3, "end_kernel": 5, "upsample": "resize"},
}
UPSAMPLE_MODES = ("resize", "transpose")


class ConvLayer(nn.Module):
    """Reflection padding then a convolution (same size for stride 1, ceil(size/2) for stride 2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvNormReLU(nn.Module):
    """ConvLayer → InstanceNorm (affine) → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = ConvLayer(in_ch, out_ch, kernel, stride)
        self.norm = nn.InstanceNorm2d(out_ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """Two 3×3 conv + instance-norm layers with an identity shortcut (Gross & Wilber 2016 variant)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3)
        self.norm1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = ConvLayer(ch, ch, 3)
        self.norm2 = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(y))


class UpsampleConvNormReLU(nn.Module):
    """×2 up-sampling to an exact target size, then conv → instance norm → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, mode: str = "resize") -> None:
        super().__init__()
        self.mode = mode
        if mode == "resize":
            self.conv = ConvLayer(in_ch, out_ch, 3)
        else:
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.InstanceNorm2d(out_ch, affine=True)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.mode == "resize":
            y = self.conv(F.interpolate(x, size=size, mode="nearest"))
        else:
            y = self.conv(x)[:, :, : size[0], : size[1]]  # 2·ceil(n/2) ≥ n: crop the extra row/column
        return F.relu(self.norm(y))


class TransformerNet(nn.Module):
    """Image transformation network; ``forward`` maps (N, 3, H, W) in [0, 1] to the same shape in [0, 1].

    Inputs must be at least ``min_size`` pixels on each side (reflection padding needs it).
    """

    def __init__(self, channels: tuple[int, int, int] | list[int] = (32, 64, 128), num_residual: int = 5,
                 end_kernel: int = 9, upsample: str = "resize") -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 3 or min(channels) <= 0:
            raise ConfigError(f"channels must be three positive widths, got {channels}")
        if num_residual < 0:
            raise ConfigError(f"num_residual must be zero or positive, got {num_residual}")
        if end_kernel <= 0 or end_kernel % 2 == 0:
            raise ConfigError(f"end_kernel must be a positive odd number, got {end_kernel}")
        if upsample not in UPSAMPLE_MODES:
            raise unknown_choice("upsample mode", upsample, UPSAMPLE_MODES)
        c1, c2, c3 = channels
        self._config = {"channels": list(channels), "num_residual": int(num_residual),
                        "end_kernel": int(end_kernel), "upsample": upsample}
        self.down1 = ConvNormReLU(3, c1, end_kernel)
        self.down2 = ConvNormReLU(c1, c2, 3, stride=2)
        self.down3 = ConvNormReLU(c2, c3, 3, stride=2)
        self.residuals = nn.Sequential(*[ResidualBlock(c3) for _ in range(num_residual)])
        self.up1 = UpsampleConvNormReLU(c3, c2, upsample)
        self.up2 = UpsampleConvNormReLU(c2, c1, upsample)
        self.out = ConvLayer(c1, 3, end_kernel)
        # Reflection padding of k//2 needs more than k//2 pixels; the 1/4-scale stage needs 2.
        self.min_size = max(end_kernel // 2 + 1, 5)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict (``TransformerNet.from_config`` rebuilds it)."""
        return dict(self._config, channels=list(self._config["channels"]))

    @property
    def preset(self) -> str | None:
        """The name of the preset this configuration matches, if any."""
        for name, cfg in PRESETS.items():
            if dict(cfg, channels=list(cfg["channels"])) == self.config:
                return name
        return None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TransformerNet":
        """Build from a ``config`` dict (as returned by :attr:`config`)."""
        allowed = {"channels", "num_residual", "end_kernel", "upsample"}
        unknown = set(config) - allowed
        if unknown:
            raise ConfigError(f"unknown TransformerNet settings {sorted(unknown)}; valid: {sorted(allowed)}")
        return cls(**config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size1 = (x.shape[-2], x.shape[-1])
        y = self.down1(x)
        y = self.down2(y)
        size2 = (y.shape[-2], y.shape[-1])
        y = self.down3(y)
        y = self.residuals(y)
        y = self.up1(y, size2)
        y = self.up2(y, size1)
        return (torch.tanh(self.out(y)) + 1) * 0.5


def build_transformer(arch: str = "johnson") -> TransformerNet:
    """A TransformerNet from a preset name ('johnson' or 'fast')."""
    if arch not in PRESETS:
        raise unknown_choice("architecture preset", arch, PRESETS)
    return TransformerNet(**PRESETS[arch])


def count_flops(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates ×2 of all convolutions for one (1, 3, H, W) input (FLOPs per image)."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            k = module.kernel_size[0] * module.kernel_size[1]
            if isinstance(module, nn.Conv2d):
                total += 2 * output.numel() * module.in_channels // module.groups * k
            else:
                total += 2 * inputs[0].numel() * module.out_channels // module.groups * k

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for h in handles:
            h.remove()
    return total
