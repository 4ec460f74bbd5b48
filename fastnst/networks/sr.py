"""Johnson et al. (2016) super-resolution network.

Layout (paper, section 3.1 and supplementary): a 9×9 convolution, residual blocks at the *low*
resolution, then log2(factor) ×2 up-sampling stages, then a 9×9 convolution with the paper's scaled
tanh (mapped to [0, 1]). Batch normalisation as in the paper (at inference it is a per-channel affine
map, so the network is purely local: tiles with enough margin reproduce the whole-image result
exactly). Up-sampling is resize-then-convolve as everywhere in fastnst (Odena et al. 2016: no
checkerboard artefacts) instead of the paper's fractionally strided convolutions.

Input (N, 3, h, w) in [0, 1]; output (N, 3, factor·h, factor·w) in [0, 1], for any h, w ≥ ``min_size``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.constants import SR_NORMS, SR_SKIPS
from fastnst.contract import META_FACTOR, META_SR_CONFIG, META_TASK, SR_FACTORS, SR_TASK
from fastnst.errors import ConfigError, InputError, ModelFormatError, UnsafePickleError, unknown_choice
from fastnst.networks.transformer import ConvLayer

# Paper (supplementary, super-resolution network): 64 channels, 4 residual blocks.
DEFAULT_CHANNELS = 64
DEFAULT_RESIDUAL = 4


def _norm(kind: str, ch: int) -> nn.Module:
    return nn.BatchNorm2d(ch) if kind == "batch" else nn.Identity()


class SRResidualBlock(nn.Module):
    """conv → norm → ReLU → conv → norm, plus the identity (paper, supplementary Fig. 1)."""

    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.conv1, self.norm1 = ConvLayer(ch, ch, 3), _norm(norm, ch)
        self.conv2, self.norm2 = ConvLayer(ch, ch, 3), _norm(norm, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x)))))


class SRUpsample(nn.Module):
    """Nearest ×2 resize, 3×3 conv, norm, ReLU."""

    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.conv, self.norm = ConvLayer(ch, ch, 3), _norm(norm, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class SRNet(nn.Module):
    """Super-resolution network for an up-sampling ``factor`` of 2, 4 or 8.

    Args:
        factor: output size / input size (paper: 4 and 8).
        channels: width of every layer (paper: 64).
        num_residual: residual blocks at the low resolution (paper: 4).
        norm: 'batch' (paper) or 'none'.
        skip: 'none' (paper: the network paints the whole image) or 'bicubic' (the network adds a
            residual to the bicubic enlargement, clipped to [0, 1]; chosen for short CPU runs: colours
            are right from the first step, measured in scripts/bench_sr.py).
    """

    def __init__(self, factor: int = 4, channels: int = DEFAULT_CHANNELS, num_residual: int = DEFAULT_RESIDUAL,
                 norm: str = "batch", skip: str = "none") -> None:
        super().__init__()
        if isinstance(factor, bool) or factor not in SR_FACTORS:
            raise ConfigError(f"the super-resolution factor must be one of {', '.join(map(str, SR_FACTORS))}, "
                              f"got {factor}")
        if int(channels) <= 0 or int(num_residual) < 0:
            raise ConfigError(f"channels must be positive and num_residual zero or positive, "
                              f"got {channels}, {num_residual}")
        if norm not in SR_NORMS:
            raise unknown_choice("norm", norm, SR_NORMS)
        if skip not in SR_SKIPS:
            raise unknown_choice("skip", skip, SR_SKIPS)
        ch = int(channels)
        self.factor = int(factor)
        self._config = {"factor": self.factor, "channels": ch, "num_residual": int(num_residual), "norm": norm,
                        "skip": skip}
        self.head = ConvLayer(3, ch, 9)
        self.head_norm = _norm(norm, ch)
        self.residuals = nn.Sequential(*[SRResidualBlock(ch, norm) for _ in range(int(num_residual))])
        self.ups = nn.Sequential(*[SRUpsample(ch, norm) for _ in range(self.factor.bit_length() - 1)])
        self.out = ConvLayer(ch, 3, 9)
        if skip == "bicubic":
            # ReZero (Bachlechner et al. 2020): the residual is scaled by a learned gate that starts at 0, so
            # the network starts as the bicubic enlargement and grows its residual gradually. Measured: a
            # zero-initialised last convolution instead jumped after Adam's first step (every weight moves
            # by the learning rate) and saturated the clip, where no gradient flows.
            self.gate = nn.Parameter(torch.zeros(1))
        # reflection padding of 4 pixels needs at least 5 on each side
        self.min_size = 5

    @property
    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SRNet":
        allowed = {"factor", "channels", "num_residual", "norm", "skip"}
        unknown = set(config) - allowed
        if unknown:
            raise ConfigError(f"unknown SRNet settings {sorted(unknown)}; valid: {sorted(allowed)}")
        return cls(**config)

    @property
    def margin(self) -> int:
        """Low-resolution pixels of context one output pixel depends on (receptive-field radius, rounded up):
        tiles cut with this margin reproduce the whole-image output exactly."""
        # head 9x9, 3x3 pairs, up-sampling stages and 9x9 end (> bicubic's 2)
        return 4 + 2 * len(self.residuals) + 1 + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.head_norm(self.head(x)))
        y = self.ups(self.residuals(y) if len(self.residuals) else y)
        if self._config["skip"] == "bicubic":
            base = F.interpolate(x, scale_factor=float(self.factor), mode="bicubic", align_corners=False)
            return (base + self.gate * torch.tanh(self.out(y))).clamp(0.0, 1.0)
        return (torch.tanh(self.out(y)) + 1) * 0.5


def sr_metadata(net: SRNet) -> dict[str, str]:
    """Metadata that marks weights/ONNX files as a super-resolution model."""
    return {META_TASK: SR_TASK, META_FACTOR: str(net.factor), META_SR_CONFIG: json.dumps(net.config)}


def is_sr_metadata(meta: dict[str, str]) -> bool:
    return meta.get(META_TASK) == SR_TASK


def is_sr_file(path: str | os.PathLike) -> bool:
    """True when ``path`` holds super-resolution weights (save_sr's safetensors or a train-sr checkpoint)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if path.suffix.lower() == ".ckpt":
            from fastnst.fileio import load_weights_only

            ckpt = load_weights_only(path)
            return isinstance(ckpt, dict) and "sr_config" in (ckpt.get("hyper_parameters") or {})
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return is_sr_metadata(dict(f.metadata() or {}))
    except Exception:  # noqa: BLE001 - not readable as either: not an SR file (the caller reports it)
        return False


def save_sr(path: str | os.PathLike, net: SRNet, metadata: dict[str, Any] | None = None,
            overwrite: bool = False) -> Path:
    """Write ``net``'s weights (safetensors, no pickle) with its configuration and ``metadata``."""
    from safetensors.torch import save_file

    from fastnst.fileio import atomic_output

    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta.update(sr_metadata(net))
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_sr(path: str | os.PathLike) -> tuple[SRNet, dict[str, str]]:
    """Load an SR network from ``.safetensors`` (save_sr) or a ``fastnst train-sr`` ``.ckpt``.

    Returns the network in eval mode and its metadata. Raises InputError (missing file) or
    ModelFormatError (not a fastnst super-resolution model).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model '{path}' does not exist; check the path")
    if path.suffix.lower() == ".ckpt":
        from fastnst.fileio import load_weights_only

        try:
            ckpt = load_weights_only(path, "model")
        except UnsafePickleError:
            raise
        except Exception:
            raise ModelFormatError(f"'{path}' is not a checkpoint that loads safely (weights only)") from None
        hparams = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
        config = hparams.get("sr_config")
        state = {k[len("net."):]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("net.")}
        meta = {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in hparams.items()}
    else:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:
            raise ModelFormatError(f"'{path}' is not a readable safetensors file ({exc})") from None
        config = json.loads(meta[META_SR_CONFIG]) if META_SR_CONFIG in meta else None
    if not isinstance(config, dict) or not state:
        raise ModelFormatError(f"'{path}' is not a fastnst super-resolution model; pass weights written by "
                               f"fastnst train-sr")
    net = SRNet.from_config(config)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"'{path}' does not match its recorded SR configuration: "
                               f"{str(exc).splitlines()[0]}") from None
    meta.update(sr_metadata(net))
    return net.eval(), meta


def degrade(hr: torch.Tensor, factor: int, sigma: float = 1.0) -> torch.Tensor:
    """Low-resolution inputs as in the paper (section 4.2): Gaussian blur of width ``sigma`` (pixels),
    then bicubic down-sampling by ``factor``. (N, 3, H, W) in [0, 1] → (N, 3, H//factor, W//factor)."""
    if sigma > 0:
        radius = max(1, int(round(3 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=hr.dtype, device=hr.device)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = k / k.sum()
        c = hr.shape[1]
        x = F.pad(hr, (radius, radius, radius, radius), mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        hr = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    h, w = hr.shape[-2] // factor, hr.shape[-1] // factor
    return F.interpolate(hr, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
