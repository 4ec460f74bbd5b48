"""Run a weights file (``.safetensors`` / ``.ckpt`` from ``fastnst train``) with torch, as a stylizer.

:class:`TorchStylizer` has the interface of :class:`fastnst.runtime.Stylizer` (padding, tiling with
whole-image instance-norm statistics, strength, colours, styles, batches) but runs the network with
torch, so a checkpoint can be tried before it is exported. Weights load weights-only (no pickled code).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fastnst.errors import ConfigError, unknown_choice
from fastnst.image import to_nchw
from fastnst.networks.transformer import NormStatistics, network_style_names
from fastnst.runtime import DEVICES, StylizerBase, check_threads, parse_style
from fastnst.training.weights import load_transformer


def torch_device(device: str = "auto") -> torch.device:
    """'auto' (CUDA when torch sees one, else CPU), 'cpu' or 'cuda' (ConfigError when there is none)."""
    if device not in DEVICES:
        raise unknown_choice("device", str(device), DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device here; use --device cpu")
    return torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


class TorchStylizer(StylizerBase):
    """The network of a weights file run by torch, with the :class:`fastnst.runtime.Stylizer` interface.

    ``device``: 'auto', 'cpu' or 'cuda'; ``threads``: torch's CPU threads (default: left as torch set them).
    Raises InputError / ModelFormatError for a missing or unsuitable file.
    """

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int | None = None) -> None:
        self.torch_device = torch_device(device)
        if threads is not None:
            torch.set_num_threads(check_threads(threads))
        net, meta = load_transformer(path)
        super().__init__(path, meta, min_size=net.min_size)
        self.net = net.to(self.torch_device).eval()
        self.style_names = network_style_names(net) if net.num_styles > 1 else []

    @property
    def providers(self) -> list[str]:
        return [f"torch:{self.torch_device.type}"]

    @property
    def device(self) -> str:
        return self.torch_device.type

    def _tiler(self) -> Any:
        return True  # the network's instance norms take whole-image statistics (TransformerNet.norm_statistics)

    def _tensor(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        padded = [self._pad(im) for im in images]
        return torch.from_numpy(to_nchw([p for p, _ in padded])).to(self.torch_device), padded[0][1]

    def _net(self, x: torch.Tensor, style: np.ndarray | None) -> torch.Tensor:
        if not self.style_names:
            return self.net(x)
        weights = parse_style(None, self.style_names) if style is None else style
        return self.net(x, torch.from_numpy(np.repeat(weights[None], x.shape[0], 0)).to(self.torch_device))

    def run_batch(self, images: Sequence[np.ndarray], style: np.ndarray | None = None) -> list[np.ndarray]:
        x, box = self._tensor(images)
        with torch.inference_mode():
            y = self._net(x, style).float().cpu().numpy()
        return [self._back(y[i], box) for i in range(len(y))]

    def norm_stats(self, rgb: np.ndarray, style: np.ndarray | None = None) -> NormStatistics:
        x, _ = self._tensor([rgb])
        with torch.inference_mode(), self.net.norm_statistics(NormStatistics()) as stats:
            self._net(x, style)
        return stats

    def run_tile(self, rgb: np.ndarray, stats: NormStatistics, style: np.ndarray | None = None) -> np.ndarray:
        x, box = self._tensor([rgb])
        with torch.inference_mode(), self.net.norm_statistics(stats):
            y = self._net(x, style).float().cpu().numpy()
        return self._back(y[0], box)

    def describe(self) -> dict[str, Any]:
        info = {"model": str(self.path), "size_bytes": self.path.stat().st_size, "io": "float (torch)",
                "config": self.net.config, "parameters": sum(p.numel() for p in self.net.parameters()),
                "metadata": dict(self.metadata), "providers_used": self.providers}
        if self.style_names:
            info["styles"] = list(self.style_names)
        return info


__all__ = ["TorchStylizer", "torch_device"]
