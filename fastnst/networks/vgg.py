"""Frozen VGG16/VGG19 feature taps by layer name, with ImageNet normalisation inside.

Weights are passed in (habit: torchvision's ``vgg16(weights=None)``):

- ``"imagenet"``: torchvision's ``VGG16_Weights.IMAGENET1K_V1`` / ``VGG19_Weights.IMAGENET1K_V1``,
  loaded the standard way through the torch hub cache (downloaded once, where a network exists).
- a path to a ``.pth``/``.pt`` state dict (loaded with ``weights_only=True``) or ``.safetensors`` file
  holding torchvision's VGG state dict (``features.N.weight`` keys, or the features' ``N.weight`` keys).
- ``"random"``: a randomly initialised network, for tests and offline experiments; it is seeded, so the
  same "random" VGG is built every time.

``None`` means the environment variable ``FASTNST_VGG_WEIGHTS``, else ``"imagenet"``.

Also the loss network's factory for image optimisation (:func:`build_vgg`: channels-last, Winograd on the
CPU, normalised, one network kept for the next call) and its size rules (:func:`min_side`, :func:`check_size`).
Layer and architecture names are checked here (:func:`check_layers`, :func:`check_arch`), where they enter.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from fastnst.constants import (DEFAULT_VGG_NORMALIZE, IMAGENET_MEAN, IMAGENET_STD, VGG_ARCHS, VGG_LAYERS,
                               VGG_NORMALIZE_CHOICES, VGG_POOLINGS, VGG_WEIGHT_CHOICES, VGG_WEIGHTS_ENV)
from fastnst.errors import ConfigError, UnsafePickleError, WeightsUnavailableError, unknown_choice
from fastnst.networks import winograd

_RANDOM_SEED = 0  # chosen: a fixed seed makes weights="random" reproducible across runs and processes


def check_arch(arch: str) -> str:
    """Validate a VGG architecture name ('vgg16' or 'vgg19')."""
    if arch not in VGG_ARCHS:
        raise unknown_choice("loss network", arch, VGG_ARCHS)
    return arch


def check_layers(names: Sequence[str] | str, arch: str = "vgg16") -> tuple[str, ...]:
    """Validate layer names for ``arch``; accepts a sequence or a comma-separated string.

    Returns the names in the given order without duplicates. Raises ConfigError naming the valid
    layers and suggesting the closest one for an unknown name.
    """
    valid = VGG_LAYERS[check_arch(arch)]
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    out: list[str] = []
    for name in names:
        if name not in valid:
            raise unknown_choice(f"{arch} layer", name, valid)
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError("no layer names given; name at least one, e.g. relu2_2")
    return tuple(out)


def resolve_weights(weights: str | os.PathLike | None) -> str:
    """'imagenet', 'random' or an absolute file path; None reads FASTNST_VGG_WEIGHTS (default 'imagenet')."""
    if weights is None or str(weights).strip() == "":
        weights = os.environ.get(VGG_WEIGHTS_ENV, "").strip() or "imagenet"
    weights = str(weights)
    if weights in VGG_WEIGHT_CHOICES:
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"VGG weights file '{weights}' does not exist; pass --vgg-weights imagenet|random|PATH "
            f"or set {VGG_WEIGHTS_ENV} to an existing file")
    return str(path.resolve())


def check_weights(weights: str | os.PathLike | None, arch: str = "vgg16") -> str:
    """``weights`` resolved (:func:`resolve_weights`) and, unless 'random', loaded once into a VGG of ``arch``:
    for a job that must know they work before it creates anything (``fastnst demo``). Raises
    WeightsUnavailableError or ConfigError as building the loss network would."""
    resolved = resolve_weights(weights)
    if resolved != "random":
        VGGFeatures(VGG_LAYERS[check_arch(arch)][0], arch, resolved)
    return resolved


def _make_features(arch: str, pooling: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for name in VGG_LAYERS[arch]:
        if name.startswith("conv"):
            block = int(name[4])
            out_ch = (64, 128, 256, 512, 512)[block - 1]
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1))
            in_ch = out_ch
        elif name.startswith("relu"):
            layers.append(nn.ReLU(inplace=True))
        else:
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
    return nn.Sequential(*layers)


def _random_init(features: nn.Sequential) -> None:
    gen = torch.Generator().manual_seed(_RANDOM_SEED)
    for m in features:
        if isinstance(m, nn.Conv2d):  # torchvision's VGG init: kaiming normal (fan_out, relu), zero bias
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_out) ** 0.5)
                m.bias.zero_()


def _imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    weights = VGG16_Weights.IMAGENET1K_V1 if arch == "vgg16" else VGG19_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=True)  # torch hub cache: $TORCH_HOME/hub/checkpoints
    except Exception as exc:  # offline, proxy, corrupt cache file, ...
        file = Path(weights.url).name
        raise WeightsUnavailableError(
            f"cannot load the ImageNet {arch.upper()} weights ({type(exc).__name__}: {exc}); on a machine "
            f"with internet torchvision caches them as ~/.cache/torch/hub/checkpoints/{file}; copy that file "
            f"here and pass --vgg-weights PATH or set {VGG_WEIGHTS_ENV}=PATH "
            f"(--vgg-weights random runs without them, for tests only)") from None


def _file_state_dict(path: str, arch: str) -> dict[str, torch.Tensor]:
    try:
        if path.endswith(".safetensors"):
            from fastnst.fileio import read_safetensors

            sd, meta = read_safetensors(path, f"pass a torchvision {arch} state dict")
            recorded = meta.get("arch")
            if recorded and recorded != arch:
                raise ConfigError(f"'{path}' holds {recorded.upper()} weights, not {arch.upper()}; "
                                  f"use them with --net {recorded} or pass {arch.upper()} weights")
        else:
            from fastnst.fileio import load_weights_only

            sd = load_weights_only(path, "VGG weights")
    except (ConfigError, UnsafePickleError):
        raise
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read VGG weights from '{path}' ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            f"pass a torchvision {arch} state dict (.pth) or .safetensors file") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsUnavailableError(f"'{path}' does not hold a state dict; pass a torchvision {arch} .pth file")
    return sd


def _load_features_state(features: nn.Sequential, sd: dict[str, torch.Tensor], source: str, arch: str,
                         depth: int) -> None:
    """Load the first ``depth`` modules of ``features`` from ``sd`` (a file may hold only the layers a network
    needs, e.g. an encoder cut at relu4_1; float16 weights are widened)."""
    feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    if not feats:
        feats = {k: v for k, v in sd.items() if k.split(".")[0].isdigit()}
    own = nn.Sequential(*list(features)[:depth]).state_dict()
    missing = [k for k in own if k not in feats]
    bad = [k for k in own if k in feats and tuple(feats[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        detail = f"missing {missing[0]}" if missing else f"shape mismatch at {bad[0]}"
        raise WeightsUnavailableError(
            f"'{source}' is not a {arch.upper()} state dict ({detail}); pass torchvision's {arch} weights "
            f"via --vgg-weights PATH or {VGG_WEIGHTS_ENV}")
    nn.Sequential(*list(features)[:depth]).load_state_dict({k: feats[k].float() for k in own})


class VGGFeatures(nn.Module):
    """Activations of named layers of a frozen VGG, for inputs RGB in [0, 1] of shape (N, 3, H, W).

    Only the layers up to the deepest requested one are built and run. The module stays in eval mode
    and its parameters never require gradients (gradients still flow to the input).
    """

    def __init__(self, layers: Sequence[str] | str, arch: str = "vgg16",
                 weights: str | os.PathLike | None = None, pooling: str = "max",
                 normalize: str = "none", normalize_images: str | os.PathLike | None = None) -> None:
        super().__init__()
        if normalize not in VGG_NORMALIZE_CHOICES:
            raise unknown_choice("VGG normalisation", normalize, VGG_NORMALIZE_CHOICES)
        if pooling not in VGG_POOLINGS:
            raise unknown_choice("pooling", pooling, VGG_POOLINGS)
        self.arch = check_arch(arch)
        self.layers = check_layers(layers, arch)
        self.pooling = pooling
        self.weights = resolve_weights(weights)
        names = VGG_LAYERS[arch]
        self._index = {name: i for i, name in enumerate(names)}
        depth = max(self._index[n] for n in self.layers) + 1
        features = _make_features(arch, pooling)
        if self.weights == "random":
            # Layer by layer from one seeded generator: a truncated network gets the same weights
            # for the layers it keeps as a full one, without drawing the deeper ones.
            _random_init(nn.Sequential(*list(features)[:depth]))
        else:
            sd = _imagenet_state_dict(arch) if self.weights == "imagenet" else _file_state_dict(self.weights, arch)
            _load_features_state(features, sd, self.weights, arch, depth)
        # A ReLU must not overwrite a conv output that is itself tapped.
        for name in self.layers:
            i = self._index[name]
            if name.startswith("conv") and i + 1 < depth:
                features[i + 1].inplace = False
        self.features = nn.Sequential(*list(features)[:depth])
        self.names = names[:depth]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)
        # Per style layer: a factor for its style loss (set by normalisation; 1 = raw features).
        self.style_norms: dict[str, float] = {}
        self.normalized = "none"
        if normalize != "none":
            from fastnst.networks.vgg_normalize import normalize_vgg

            normalize_vgg(self, normalize_images, statistic=normalize)

    def train(self, mode: bool = True) -> "VGGFeatures":
        """The loss network always stays in eval mode."""
        return self

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Return ``{layer: activation}`` for ``layers`` (default: all of ``self.layers``)."""
        wanted = self.layers if layers is None else tuple(layers)
        for name in wanted:
            if name not in self.layers:
                raise ConfigError(f"layer '{name}' was not requested when the loss network was built "
                                  f"(built for {', '.join(self.layers)})")
        last = max(self._index[n] for n in wanted)
        out: dict[str, torch.Tensor] = {}
        h = (x - self.mean) / self.std
        for i in range(last + 1):
            h = self.features[i](h)
            name = self.names[i]
            if name in wanted:
                out[name] = h
        return out

    def extra_repr(self) -> str:
        return (f"arch={self.arch}, layers={self.layers}, pooling={self.pooling}, weights={self.weights}, "
                f"normalized={self.normalized}")


# ----------------------------------------------------------------------------------------------- sizes

def _pools_before(layer: str, arch: str) -> int:
    names = VGG_LAYERS[arch]
    return sum(1 for n in names[:names.index(layer)] if n.startswith("pool"))


def min_side(layers: Sequence[str], arch: str) -> int:
    """Smallest image side for which every layer in ``layers`` (checked names) keeps at least one position."""
    return 2 ** max(_pools_before(n, arch) for n in layers)


def check_size(wh: tuple[int, int], layers: Sequence[str], arch: str, what: str) -> None:
    """ConfigError when an image of ``wh`` = (width, height) is too small for the deepest of ``layers``."""
    need = min_side(layers, arch)
    if min(wh) < need:
        deepest = max(layers, key=lambda n: VGG_LAYERS[arch].index(n))
        raise ConfigError(f"{what} {wh[0]}x{wh[1]} is too small for layer {deepest} (needs at least {need} pixels "
                          f"a side); use a larger size or shallower layers")


# ----------------------------------------------------------------------------------------------- factory

def normalization(vgg_normalize: str | os.PathLike | None,
                  normalize_images: str | os.PathLike | None = None) -> tuple[str, str | None]:
    """(statistic, images folder or None for the bundled set) from the user's options (checked here).

    ``vgg_normalize`` is 'rms' (default of the losses), 'mean' (Gatys' normalised VGG), 'none' or None, or, as
    before, a folder of images (meaning 'mean' over that folder)."""
    if vgg_normalize is None:
        return "none", None
    text = str(vgg_normalize)
    if text in VGG_NORMALIZE_CHOICES:
        return text, None if normalize_images is None else str(normalize_images)
    if os.path.isdir(text):
        return "mean", text
    raise unknown_choice("VGG normalisation", text, VGG_NORMALIZE_CHOICES + ("a folder of images",))


def build_vgg(layers: Sequence[str], net: str = "vgg19", vgg_weights: str | os.PathLike | None = None,
              pooling: str = "max", vgg_normalize: str | os.PathLike | None = DEFAULT_VGG_NORMALIZE,
              device: torch.device | str = "cpu", normalize_images: str | os.PathLike | None = None) -> VGGFeatures:
    """A channels-last :class:`VGGFeatures` for ``layers`` on ``device``, normalised as asked.

    On the CPU its 3x3 convolutions with >= 128 input channels run as Winograd F(4x4, 3x3)
    (:mod:`fastnst.networks.winograd`; ``FASTNST_WINOGRAD=0`` turns that off).

    ``vgg_normalize``: 'rms' (default: one loss scale for every weight set), 'mean' (Gatys' normalised
    VGG), 'none'; the statistics come from ``normalize_images`` (a folder; default fastnst's bundled
    photos) and are cached (see :mod:`fastnst.networks.vgg_normalize`). A folder given as
    ``vgg_normalize`` means 'mean' over it (:func:`normalization`). The last network built with the same
    settings is reused (not for user image folders); :func:`clear_vgg_cache` forgets it.
    """
    statistic, images = normalization(vgg_normalize, normalize_images)
    fast = winograd.enabled(device)
    w = resolve_weights(vgg_weights)
    stamp = os.stat(w).st_mtime_ns if os.path.isfile(w) else None
    key = None if images is not None else (tuple(layers), net, w, stamp, pooling, str(torch.device(device)), fast,
                                           statistic)
    if key is not None and key in _VGG_CACHE:
        return _VGG_CACHE[key]
    vgg = VGGFeatures(layers, arch=net, weights=vgg_weights, pooling=pooling, normalize=statistic,
                      normalize_images=images)
    vgg = vgg.to(device=torch.device(device), memory_format=torch.channels_last)
    if fast:
        winograd.use_winograd(vgg.features)
    if key is not None:
        _VGG_CACHE.clear()  # keep one network: VGG19 is 80 MB
        _VGG_CACHE[key] = vgg
    return vgg


_VGG_CACHE: dict[tuple, VGGFeatures] = {}


def clear_vgg_cache() -> None:
    """Forget the loss network :func:`build_vgg` keeps for the next call (benchmarks, memory)."""
    _VGG_CACHE.clear()
