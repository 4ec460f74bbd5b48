"""Loss-network normalisation: one loss scale for every VGG (torchvision, Caffe-imported, random).

Each convolution's weights and bias are divided by a per-filter statistic of its activation (after
the ReLU) over a set of reference images, and the next convolution's input weights are multiplied by
the same factors, layer by layer. ReLU and pooling commute with positive per-channel factors, so every
layer of the normalised network computes the original activations divided by a positive per-filter
constant: the same function up to scale. Two statistics:

- ``rms`` (fastnst's default): each filter's root-mean-square activation becomes one, so content
  losses (mean squared feature differences) are relative to the features' typical energy. Each tapped
  ReLU layer also gets a style normaliser ``1 / mean(G²)`` (G the Gram matrices of the reference images
  on the normalised network), which :class:`~fastnst.losses.PerceptualLoss` multiplies into that
  layer's style loss, so style losses are relative too. Chosen: measured with
  ``scripts/bench_quality.py --balance``: the weighted style/content ratio of the default weights agrees
  within 3x across random, Caffe-imported VGG16 and VGG19 weights, where raw features differ by 10⁴
  and Gatys' mean normalisation by 10³.
- ``mean`` (Gatys et al. 2016, section 2: "the normalised network"): each filter's mean activation
  becomes one; the style normalisers are computed the same way.

The reference images default to fastnst's bundled photos (:data:`REFERENCE_IMAGES`, 256 px long side);
any folder of images can be given instead. The statistics are cached:

- weights from a file: next to it, as ``<file>.normalize-<key>.pt`` (or in the cache folder when that
  folder is not writable);
- ``imagenet`` weights: next to torchvision's file in the torch hub cache (``torch.hub.get_dir()/checkpoints``);
- ``random`` weights: in ``$FASTNST_CACHE_DIR`` or ``$XDG_CACHE_HOME/fastnst`` (default ``~/.cache/fastnst``),
  under ``vgg-normalize/``.

``<key>`` hashes the architecture, the weights' identity, the pooling, the statistic, the image size and
every image file's name, size and modification time, so changing the images recomputes the statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from fastnst.constants import ASSETS_DIR, cache_dir
from fastnst.errors import FastNSTError, InputError, unknown_choice
from fastnst.fileio import atomic_output
from fastnst.image import IMAGE_EXTENSIONS, find_images, load_rgb, resize, to_tensor
from fastnst.losses.functional import gram_matrix

# ``vgg`` below is a fastnst.networks.vgg.VGGFeatures, which imports this module when asked to normalise
# itself (so it is not imported here): its features, names, mean, std, arch, pooling and weights are read,
# its convolutions rescaled in place and its style_norms set.

NORMALIZE_SIZE = 256  # chosen: long side of the normalising images; the paper does not say, 256 is cheap

STATISTICS = ("rms", "mean")  # with "none" (no normalisation): constants.VGG_NORMALIZE_CHOICES
# The bundled reference set (fastnst/assets; licences in ATTRIBUTION.md). Named, so that adding
# assets never changes the loss scale.
REFERENCE_IMAGES = ("content-astronaut.jpg", "content-chelsea.jpg", "content-coffee.jpg",
                    "content-rocket.jpg", "style-hubble.jpg")
# 'rms': a filter's factor is at least this share of its layer's RMS activation. Chosen: without it, a
# random VGG19's filters that barely fire on the photos got gains of 10⁴+ and made relu3_1's style loss
# 10⁵ times the others' on noise; 0.1 leaves every filter of the Caffe VGG16/19 with its own factor but a
# few near-dead ones.
RMS_FLOOR = 0.1
_EPS = 1e-12
_GRAM_PREFIX = "gram/"


def reference_images() -> list[Path]:
    """The bundled reference images (the default normalising set)."""
    files = [ASSETS_DIR / name for name in REFERENCE_IMAGES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"fastnst's bundled reference image '{missing[0]}' is missing; reinstall fastnst "
                         f"or pass a folder of photos as the normalising images")
    return files


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files in ``folder`` and its sub-folders (:func:`fastnst.image.find_images`); InputError when
    there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"normalising images folder '{root}' does not exist; pass a folder of a few photos")
    files = find_images(root, require=False)
    if not files:
        raise InputError(f"no images in '{root}' ({', '.join(sorted(IMAGE_EXTENSIONS))}); add a few photos")
    return files


def _weights_identity(vgg: nn.Module) -> tuple[dict[str, object], Path | None]:
    """What identifies the weights, and the file the statistics should sit next to (None: cache folder)."""
    if vgg.weights == "random":
        return {"weights": "random"}, None
    if vgg.weights == "imagenet":
        from torchvision.models import VGG16_Weights, VGG19_Weights

        url = (VGG16_Weights if vgg.arch == "vgg16" else VGG19_Weights).IMAGENET1K_V1.url
        return {"weights": Path(url).name}, Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    st = os.stat(vgg.weights)
    return {"weights": os.path.abspath(vgg.weights), "bytes": st.st_size, "mtime": st.st_mtime_ns}, Path(vgg.weights)


def stats_path(vgg: nn.Module, images: Sequence[Path], size: int = NORMALIZE_SIZE, statistic: str = "mean") -> Path:
    """Where the statistics of ``vgg`` over ``images`` are (or will be) cached."""
    ident, beside = _weights_identity(vgg)
    files = []
    for p in images:
        st = p.stat()
        files.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    doc = {"arch": vgg.arch, "pooling": vgg.pooling, "size": size, "images": files, **ident}
    if statistic != "mean":  # (mean keeps the keys its caches were written under)
        doc["statistic"] = statistic
    key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    if beside is not None and os.access(beside.parent, os.W_OK):
        return beside.with_name(f"{beside.name}.normalize-{key}.pt")
    name = f"{vgg.arch}-{ident['weights'] if vgg.weights == 'random' else Path(str(ident['weights'])).name}"
    return cache_dir() / "vgg-normalize" / f"{name}-{key}.pt"


def _convs(names: Sequence[str]) -> list[tuple[int, str]]:
    return [(i, n) for i, n in enumerate(names) if n.startswith("conv")]


def _relu_outputs(vgg: nn.Module, images: Iterable[torch.Tensor]) -> Iterable[tuple[str, torch.Tensor]]:
    """(relu name, activation) of every ReLU of ``vgg``, image by image (the ReLUs computed out of place)."""
    param = next(vgg.parameters())
    for img in images:
        h = (img.to(param.device, param.dtype) - vgg.mean) / vgg.std
        for i, module in enumerate(vgg.features):
            h = module(h) if not isinstance(module, nn.ReLU) else torch.relu(h)
            if vgg.names[i].startswith("relu"):
                yield vgg.names[i], h


@torch.inference_mode()
def activation_means(vgg: nn.Module, images: Iterable[torch.Tensor],
                     statistic: str = "mean") -> dict[str, torch.Tensor]:
    """Mean (``statistic="mean"``) or root-mean-square (``"rms"``) activation of every filter after each
    ReLU of ``vgg``, over all images and positions.

    Returns ``{conv_name: (C,) tensor}`` for every conv layer of the (truncated) network whose ReLU is
    built. Images are (1, 3, H, W) in [0, 1].
    """
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}")
    power = 2 if statistic == "rms" else 1
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for name, h in _relu_outputs(vgg, images):
        conv = "conv" + name[4:]
        sums[conv] = sums.get(conv, 0) + h.double().pow(power).sum(dim=(0, 2, 3))
        counts[conv] = counts.get(conv, 0) + h.shape[0] * h.shape[2] * h.shape[3]
    return {k: (sums[k] / counts[k]).pow(1.0 / power).float().cpu() for k in sums}


@torch.inference_mode()
def gram_energies(vgg: nn.Module, images: Iterable[torch.Tensor]) -> dict[str, float]:
    """Mean squared Gram entry ``mean(G²)`` of every ReLU layer of ``vgg``, averaged over ``images``.

    Returns ``{"gram/<relu_name>": value}``; G is :func:`fastnst.losses.functional.gram_matrix` of the activations.
    """
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, h in _relu_outputs(vgg, images):
        key = _GRAM_PREFIX + name
        sums[key] = sums.get(key, 0.0) + float(gram_matrix(h.double()).pow(2).mean())
        counts[key] = counts.get(key, 0) + 1
    return {k: v / counts[k] for k, v in sums.items()}


@torch.no_grad()
def apply_scales(vgg: nn.Module, means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Divide each conv's filters by ``means`` (dead filters keep 1), carrying the factor to the next conv.

    Returns the factors applied ``{conv_name: (C,)}``; layer l then outputs original / factor_l.
    """
    prev: torch.Tensor | None = None
    applied: dict[str, torch.Tensor] = {}
    for i, name in _convs(vgg.names):
        conv = vgg.features[i]
        assert isinstance(conv, nn.Conv2d)
        if name not in means:  # conv without its ReLU (the tap stops at the conv): leave unscaled beyond
            scale = torch.ones(conv.out_channels)
        else:
            m = means[name].to(torch.float64)
            scale = torch.where(m > _EPS, m, torch.ones_like(m))
        w = conv.weight.double()
        if prev is not None:
            w = w * prev.view(1, -1, 1, 1).to(w)
        conv.weight.copy_((w / scale.view(-1, 1, 1, 1).to(w)).to(conv.weight.dtype))
        conv.bias.copy_((conv.bias.double() / scale.to(conv.bias.device)).to(conv.bias.dtype))
        prev = scale.to(conv.weight.device)
        applied[name] = scale.float().cpu()
    return applied


def normalize_vgg(vgg: nn.Module, images: str | os.PathLike | None = None, size: int = NORMALIZE_SIZE,
                  use_cache: bool = True, statistic: str = "mean") -> dict[str, torch.Tensor]:
    """Rescale ``vgg`` in place so each filter's ``statistic`` ('mean' or 'rms') ReLU activation over the
    images in folder ``images`` (default: the bundled :data:`REFERENCE_IMAGES`), resized to long side
    ``size``, is one; set ``vgg.style_norms`` ({relu layer: 1 / mean(G²) on those images}).
    Statistics are read from / written to the cache (see module doc).

    Returns the per-filter factors applied. Raises InputError for a missing or empty folder.
    """
    if statistic not in STATISTICS:
        raise unknown_choice("VGG normalisation", statistic, STATISTICS)
    files = reference_images() if images is None else list_images(images)
    path = stats_path(vgg, files, size, statistic)
    relus = [n for n in vgg.names if n.startswith("relu")]
    needed = {"conv" + n[4:] for n in relus} | {_GRAM_PREFIX + n for n in relus}
    stats: dict[str, torch.Tensor] | None = None
    if use_cache and path.is_file():
        try:
            from fastnst.fileio import load_weights_only

            cached = load_weights_only(path)
            if isinstance(cached, dict) and needed <= set(cached):
                stats = cached
        except Exception:  # a corrupt cache file is recomputed
            stats = None

    def tensors() -> Iterable[torch.Tensor]:
        for f in files:
            yield to_tensor(resize(load_rgb(f), long_edge=size))

    if stats is not None:
        applied = apply_scales(vgg, {k: v for k, v in stats.items() if not k.startswith(_GRAM_PREFIX)})
    else:
        means = activation_means(vgg, tensors(), statistic)
        if statistic == "rms":  # filters (nearly) silent on the reference photos must not get huge gains
            means = {k: torch.maximum(m, RMS_FLOOR * m.pow(2).mean().sqrt()) for k, m in means.items()}
        applied = apply_scales(vgg, means)
        grams = gram_energies(vgg, tensors())  # on the normalised network
        stats = {**means, **{k: torch.tensor(v, dtype=torch.float64) for k, v in grams.items()}}
        if use_cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_output(path, overwrite=True) as tmp:
                    torch.save(stats, tmp)
            except (OSError, FastNSTError):  # the cache is an optimisation; a read-only place must not fail the run
                pass
    vgg.normalize_stats_path = str(path)  # type: ignore[attr-defined]  # where the statistics are cached
    vgg.style_norms = {n: 1.0 / max(float(stats[_GRAM_PREFIX + n]), _EPS)  # type: ignore[attr-defined]
                       for n in relus}
    vgg.normalized = statistic  # type: ignore[attr-defined]
    return applied
