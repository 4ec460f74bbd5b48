"""Johnson et al. (2016) image transformation network.

Layout (paper, supplementary Table 1): 9×9 conv → two stride-2 3×3 convs → residual blocks → two ×2
up-sampling stages → 9×9 conv, with instance normalisation (Ulyanov et al. 2016, which replaced the
paper's batch norm in the authors' own later code) and reflection padding. Up-sampling is
resize-then-convolve by default (Odena et al. 2016: no checkerboard artefacts); transposed
convolution, the paper's choice, is an option.

The output has exactly the input's height and width for any size: each up-sampling stage resizes to
the size its matching down-sampling stage received, so odd sizes such as 301×257 come back unchanged.
Input and output are RGB in [0, 1]; the output layer is the paper's scaled tanh, mapped to [0, 1].

Several styles in one network (``num_styles > 1``): conditional instance normalisation (Dumoulin,
Shlens and Kudlur 2017, "A Learned Representation for Artistic Style"). Every instance norm keeps one
scale and shift per style; ``forward(x, style)`` takes ``style`` as blend weights (N, num_styles), and
the scale and shift are ``style @ table``, so a one-hot row is one style and a convex combination
blends them with no retraining. The norm itself is parameter-free instance normalisation followed by
``x * gamma + beta`` (it exports as a plain InstanceNormalization node, a MatMul, a Mul and an Add).
A single-style network is the plain network, with the same state-dict keys as before.

Two switches on the norms leave the weights and the exported graph alone: ``group_norm`` (set by
:func:`use_layout_friendly_norms` for channels_last training) computes the same statistics with
F.group_norm, and :meth:`TransformerNet.norm_statistics` makes this network's norms record their inputs'
statistics or normalise with recorded ones (tiles normalised as the whole image was).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
# Upper bound on styles in one network (chosen: Dumoulin et al. trained 32; this leaves room, bounds memory).
MAX_STYLES = 256


class ConvLayer(nn.Module):
    """Reflection padding then a convolution (same size for stride 1, ceil(size/2) for stride 2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class NormStatistics:
    """Per-channel mean and variance of each instance norm's input in one forward pass, in the order the
    norms ran (see :meth:`TransformerNet.norm_statistics`). Empty, the norms record into it while they
    normalise as usual; recorded, they normalise with these values instead of their input's, in order."""

    def __init__(self) -> None:
        self.values: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.replaying = False
        self._next = 0

    def start(self) -> None:
        """Before a forward pass: replay from the first norm when something was recorded, else record."""
        self.replaying, self._next = bool(self.values), 0

    def record(self, x: torch.Tensor) -> None:
        xf = x.float()
        self.values.append((xf.mean(dim=(2, 3), keepdim=True), xf.var(dim=(2, 3), unbiased=False, keepdim=True)))

    def normalize(self, x: torch.Tensor, eps: float, weight: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` normalised with the next recorded statistics, then scaled and shifted per channel."""
        mean, var = self.values[self._next]
        self._next += 1
        y = (x - mean.to(x.dtype)) * torch.rsqrt(var.to(x.dtype) + eps)
        if weight is not None:
            y = y * weight[None, :, None, None]
        if bias is not None:
            y = y + bias[None, :, None, None]
        return y


class AffineInstanceNorm2d(nn.InstanceNorm2d):
    """The single-style norm: ``nn.InstanceNorm2d(channels, affine=True)`` (the same parameters and maths)
    with the two switches of this module: ``group_norm`` (F.group_norm with one group per channel keeps
    channels_last tensors channels_last, where InstanceNorm2d returns NCHW and every layer would pay two
    layout copies; chosen: measured faster on CPU, see scripts/bench_train.py) and ``statistics``."""

    group_norm = False
    statistics: NormStatistics | None = None

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.statistics is not None:
            if self.statistics.replaying:
                return self.statistics.normalize(x, self.eps, self.weight, self.bias)
            self.statistics.record(x)
        if self.group_norm and x.dim() == 4:
            return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)
        return super().forward(x)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm with one scale/shift per style (Dumoulin et al. 2017), blended by weights.

    ``weight`` and ``bias`` are (num_styles, C) tables; ``forward(x, style)`` with ``style`` (N, num_styles)
    computes parameter-free instance norm, then ``x * (style @ weight) + (style @ bias)`` per channel.
    ``group_norm=True`` (set by training under channels_last) computes the same statistics with
    F.group_norm, which keeps channels_last tensors in that layout; export uses F.instance_norm.
    ``statistics``: see :class:`NormStatistics`.
    """

    def __init__(self, num_features: int, num_styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.num_styles, self.eps = int(num_features), int(num_styles), float(eps)
        self.weight = nn.Parameter(torch.ones(num_styles, num_features))
        self.bias = nn.Parameter(torch.zeros(num_styles, num_features))
        self.group_norm = False
        self.statistics: NormStatistics | None = None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.statistics is not None and self.statistics.replaying:
            y = self.statistics.normalize(x, self.eps)
        else:
            if self.statistics is not None:
                self.statistics.record(x)
            y = F.group_norm(x, self.num_features, eps=self.eps) if self.group_norm else \
                F.instance_norm(x, eps=self.eps)
        style = style.to(y.dtype)
        gamma = (style @ self.weight.to(y.dtype))[:, :, None, None]
        beta = (style @ self.bias.to(y.dtype))[:, :, None, None]
        return y * gamma + beta

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_styles={self.num_styles}, eps={self.eps}"


def _make_norm(channels: int, num_styles: int) -> nn.Module:
    if num_styles == 1:
        return AffineInstanceNorm2d(channels)
    return ConditionalInstanceNorm2d(channels, num_styles)


def _apply_norm(norm: nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
    if isinstance(norm, ConditionalInstanceNorm2d):
        return norm(x, style)
    return norm(x)


class ConvNormReLU(nn.Module):
    """ConvLayer → InstanceNorm (affine; conditional when num_styles > 1) → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, num_styles: int = 1) -> None:
        super().__init__()
        self.conv = ConvLayer(in_ch, out_ch, kernel, stride)
        self.norm = _make_norm(out_ch, num_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return F.relu(_apply_norm(self.norm, self.conv(x), style))


class ResidualBlock(nn.Module):
    """Two 3×3 conv + instance-norm layers with an identity shortcut (Gross & Wilber 2016 variant)."""

    def __init__(self, ch: int, num_styles: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3)
        self.norm1 = _make_norm(ch, num_styles)
        self.conv2 = ConvLayer(ch, ch, 3)
        self.norm2 = _make_norm(ch, num_styles)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        y = F.relu(_apply_norm(self.norm1, self.conv1(x), style))
        return x + _apply_norm(self.norm2, self.conv2(y), style)


class UpsampleConvNormReLU(nn.Module):
    """×2 up-sampling to an exact target size, then conv → instance norm → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, mode: str = "resize", num_styles: int = 1) -> None:
        super().__init__()
        self.mode = mode
        if mode == "resize":
            self.conv = ConvLayer(in_ch, out_ch, 3)
        else:
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        self.norm = _make_norm(out_ch, num_styles)

    def forward(self, x: torch.Tensor, size: tuple[int, int], style: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "resize":
            y = self.conv(F.interpolate(x, size=size, mode="nearest"))
        else:
            y = self.conv(x)[:, :, : size[0], : size[1]]  # 2·ceil(n/2) ≥ n: crop the extra row/column
        return F.relu(_apply_norm(self.norm, y, style))


class TransformerNet(nn.Module):
    """Image transformation network; ``forward`` maps (N, 3, H, W) in [0, 1] to the same shape in [0, 1].

    Inputs must be at least ``min_size`` pixels on each side (reflection padding needs it).
    With ``num_styles > 1`` every instance norm is conditional (one scale/shift per style) and
    ``forward(x, style)`` takes the style blend weights (N, num_styles); ``style_names`` names them.
    """

    def __init__(self, channels: tuple[int, int, int] | list[int] = (32, 64, 128), num_residual: int = 5,
                 end_kernel: int = 9, upsample: str = "resize", num_styles: int = 1,
                 style_names: list[str] | tuple[str, ...] | None = None) -> None:
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
        if isinstance(num_styles, bool) or not isinstance(num_styles, int) or not 1 <= num_styles <= MAX_STYLES:
            raise ConfigError(f"num_styles must be a whole number from 1 to {MAX_STYLES}, got {num_styles}")
        if style_names is not None:
            style_names = [str(n) for n in style_names]
            if len(style_names) != num_styles:
                raise ConfigError(f"{len(style_names)} style names for {num_styles} styles; give one name per style")
            if len(set(style_names)) != len(style_names) or not all(style_names):
                raise ConfigError(f"style names must be distinct and non-empty, got {style_names}")
        c1, c2, c3 = channels
        self._config: dict[str, Any] = {"channels": list(channels), "num_residual": int(num_residual),
                                        "end_kernel": int(end_kernel), "upsample": upsample}
        if num_styles > 1:  # single-style configs stay exactly as before
            self._config["num_styles"] = num_styles
            if style_names is not None:
                self._config["style_names"] = list(style_names)
        self.num_styles = num_styles
        self.style_names: list[str] = list(style_names) if style_names is not None else \
            ([] if num_styles == 1 else [f"style{i}" for i in range(num_styles)])
        s = num_styles
        self.down1 = ConvNormReLU(3, c1, end_kernel, num_styles=s)
        self.down2 = ConvNormReLU(c1, c2, 3, stride=2, num_styles=s)
        self.down3 = ConvNormReLU(c2, c3, 3, stride=2, num_styles=s)
        self.residuals = nn.Sequential(*[ResidualBlock(c3, num_styles=s) for _ in range(num_residual)])
        self.up1 = UpsampleConvNormReLU(c3, c2, upsample, num_styles=s)
        self.up2 = UpsampleConvNormReLU(c2, c1, upsample, num_styles=s)
        self.out = ConvLayer(c1, 3, end_kernel)
        # Reflection padding of k//2 needs more than k//2 pixels; the 1/4-scale stage needs 2.
        self.min_size = max(end_kernel // 2 + 1, 5)

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict (``TransformerNet.from_config`` rebuilds it)."""
        out = dict(self._config, channels=list(self._config["channels"]))
        if "style_names" in out:
            out["style_names"] = list(out["style_names"])
        return out

    @property
    def preset(self) -> str | None:
        """The name of the preset this configuration matches, if any (whatever the number of styles)."""
        arch = {k: v for k, v in self.config.items() if k not in ("num_styles", "style_names")}
        for name, cfg in PRESETS.items():
            if dict(cfg, channels=list(cfg["channels"])) == arch:
                return name
        return None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TransformerNet":
        """Build from a ``config`` dict (as returned by :attr:`config`)."""
        allowed = {"channels", "num_residual", "end_kernel", "upsample", "num_styles", "style_names"}
        unknown = set(config) - allowed
        if unknown:
            raise ConfigError(f"unknown TransformerNet settings {sorted(unknown)}; valid: {sorted(allowed)}")
        return cls(**config)

    def style_weights(self, style: int | str | torch.Tensor | list[float] | None, batch: int = 1) -> torch.Tensor:
        """Blend weights (batch, num_styles) for ``style``: an index, a name, a weight vector or matrix.

        Raises ConfigError for an unknown name, an index out of range, a wrong length, or weights that
        are negative or sum to zero. Weights are used as given (callers normalise if they want to).
        """
        n = self.num_styles
        if style is None:
            if n == 1:
                return torch.ones(batch, 1)
            raise ConfigError(f"this network holds {n} styles ({', '.join(self.style_names)}); pick one with a "
                              f"style index, name or weight vector")
        if isinstance(style, str):
            if style not in self.style_names:
                raise unknown_choice("style", style, self.style_names)
            style = self.style_names.index(style)
        if isinstance(style, int) and not isinstance(style, bool):
            if not 0 <= style < n:
                raise ConfigError(f"style index {style} is out of range; this network holds {n} styles (0..{n - 1})")
            return F.one_hot(torch.full((batch,), style), n).float()
        w = torch.as_tensor(style, dtype=torch.float32)
        if w.dim() == 1:
            w = w[None].expand(batch, -1)
        if w.dim() != 2 or w.shape[1] != n:
            raise ConfigError(f"style weights of shape {tuple(w.shape)}; this network needs (N, {n})")
        if not torch.isfinite(w).all() or (w < 0).any() or (w.sum(dim=1) <= 0).any():
            raise ConfigError("style weights must be finite, zero or positive, and not all zero")
        return w

    @contextlib.contextmanager
    def norm_statistics(self, stats: NormStatistics) -> Iterator[NormStatistics]:
        """Within the block, the forward pass of this network records each instance norm's input statistics
        into ``stats`` (when it is empty) or normalises with the ones recorded in it (a tile normalised as the
        whole image was). Only this network is affected; its norms are as before after the block."""
        stats.start()
        norms = [m for m in self.modules() if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d))]
        for norm in norms:
            norm.statistics = stats
        try:
            yield stats
        finally:
            for norm in norms:
                norm.statistics = None

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Stylise ``x`` (N, 3, H, W) in [0, 1]; ``style`` (N, num_styles) blend weights when num_styles > 1.

        A single-style network ignores ``style``. A multi-style network without ``style`` raises
        ConfigError (there is no silent default style).
        """
        if self.num_styles > 1:
            if style is None:
                raise ConfigError(f"this network holds {self.num_styles} styles; pass style weights "
                                  f"(N, {self.num_styles})")
            if style.dim() == 1:
                style = style[None].expand(x.shape[0], -1)
        else:
            style = None
        size1 = (x.shape[-2], x.shape[-1])
        y = self.down1(x, style)
        y = self.down2(y, style)
        size2 = (y.shape[-2], y.shape[-1])
        y = self.down3(y, style)
        for block in self.residuals:
            y = block(y, style)
        y = self.up1(y, size2, style)
        y = self.up2(y, size1, style)
        return (torch.tanh(self.out(y)) + 1) * 0.5


def use_layout_friendly_norms(model: nn.Module) -> nn.Module:
    """Switch ``model``'s instance norms to their ``group_norm`` path in place, for channels_last training
    (same state dict; outputs equal to float rounding)."""
    for module in model.modules():
        if isinstance(module, (AffineInstanceNorm2d, ConditionalInstanceNorm2d)):
            module.group_norm = True
    return model


def single_style_copy(net: TransformerNet, style: int | str | None = None) -> TransformerNet:
    """A single-style network with ``net``'s convolutions and, in every norm, the scale and shift of ``net``'s
    style ``style`` (an index or a name) or, by default, the mean of its styles' (a neutral start): what a new
    style is learned from (Dumoulin, Shlens and Kudlur 2017, section 4.3). A single-style ``net`` is copied."""
    config = {k: v for k, v in net.config.items() if k not in ("num_styles", "style_names")}
    out = TransformerNet(**config)
    row = None if style is None or net.num_styles == 1 else \
        int(net.style_weights(style, 1)[0].argmax())
    state = net.state_dict()
    copied = {}
    for key, value in out.state_dict().items():
        source = state[key].detach()
        if source.shape != value.shape:  # a conditional norm's (num_styles, C) table -> one style's row
            source = source[row] if row is not None else source.mean(0)
        copied[key] = source.clone()
    out.load_state_dict(copied)
    return out


def norm_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The instance norms' scales and shifts of ``net`` (a style's own parameters, Dumoulin et al. 2017)."""
    return [p for m in net.modules() if isinstance(m, (AffineInstanceNorm2d, ConditionalInstanceNorm2d))
            for p in m.parameters(recurse=False)]


def train_only_norms(net: nn.Module) -> nn.Module:
    """Freeze every weight of ``net`` but its instance norms' scales and shifts (in place); returns ``net``."""
    keep = {id(p) for p in norm_parameters(net)}
    for p in net.parameters():
        p.requires_grad_(id(p) in keep)
    return net


def network_style_names(net: nn.Module) -> list[str]:
    """Names of a (multi-style) network's styles: its ``style_names`` attribute, else its config's
    'style_names', else style0, style1, ... (any module with TransformerNet's interface)."""
    count = int(getattr(net, "num_styles", 1) or 1)
    config = getattr(net, "config", None)
    names = getattr(net, "style_names", None)
    if not names and isinstance(config, dict):
        names = config.get("style_names")
    names = [str(n) for n in (names or [])]
    if len(names) != count or len(set(names)) != count:
        names = [f"style{i}" for i in range(count)]
    return names


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
            x = torch.zeros(1, 3, height, width)
            styles = getattr(model, "num_styles", 1)
            model(x, torch.full((1, styles), 1.0 / styles)) if styles > 1 else model(x)
    finally:
        for h in handles:
            h.remove()
    return total
