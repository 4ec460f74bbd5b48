"""Winograd F(4x4, 3x3) convolution for the frozen loss network on the CPU (Lavin & Gray 2016).

A 3x3 convolution (stride 1, padding 1) computes each 4x4 output tile from a 6x6 input tile with 36
element-wise products per channel pair instead of 144: the input tiles and the weights are transformed
(B^T d B, G g G^T), multiplied as 36 batched matrix products over channels, and transformed back
(A^T m A). For VGG's layers with 128-512 channels this is 1.5-2.2x faster than oneDNN's direct
convolution on an AVX2 CPU (measured; scripts/bench_gatys.py), at a relative error of about 1e-5.

Only the gradient with respect to the input is provided (the loss network is frozen): it is the same
convolution with the kernel flipped and its channel axes swapped, computed the same way.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

# Lavin & Gray 2016, F(4x4, 3x3) with interpolation points 0, ±1, ±2, ∞.
_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
_M, _A = 4, 6  # output tile, input tile

MIN_CHANNELS = 128  # chosen: measured slower than oneDNN's direct convolution at 64 input channels
MIN_PIXELS = 256    # chosen: measured slower below 16x16 positions (tile overhead), faster from there
WINOGRAD_ENV = "FASTNST_WINOGRAD"  # "0" turns it off (for comparisons)


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """Conv weight (K, C, 3, 3) -> Winograd-domain weight (36, C, K) = G g Gᵀ for each channel pair."""
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ar,kcrs,bs->abck", g, weight.detach().double(), g)
    return u.reshape(_A * _A, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def conv3x3_nchw(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Like :func:`conv3x3_nhwc` for (N, C, H, W) tensors; the result is a channels-last tensor, not a view."""
    n, _, h, w = x.shape
    result = torch.empty((n, u.shape[2], h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    conv3x3_nhwc(x.permute(0, 2, 3, 1).contiguous(), u, bias, result=result.permute(0, 2, 3, 1))
    return result


def _kron(mat: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    key = (id(mat), like.dtype, like.device)
    k = _KRON.get(key)
    if k is None:
        m = torch.tensor(mat, dtype=torch.float64)
        k = _KRON[key] = torch.kron(m, m).to(dtype=like.dtype, device=like.device)
    return k


_KRON: dict[tuple, torch.Tensor] = {}


def conv3x3_nhwc(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None,
                 result: torch.Tensor | None = None) -> torch.Tensor:
    """3x3 convolution, stride 1, zero padding 1, of ``x`` (N, H, W, C) with ``u`` from :func:`transform_weight`.

    Returns (N, H, W, K), contiguous, written into ``result`` when given. No autograd: see
    :class:`WinogradConv2d`. Both tile transforms are single matrix products with the Kronecker
    products Bᵀ⊗Bᵀ (36x36) and Aᵀ⊗Aᵀ (16x36), so the whole convolution is a handful of large kernels.
    """
    n, h, w, c = x.shape
    k = u.shape[2]
    th, tw = -(-h // _M), -(-w // _M)
    hp, wp = th * _M + 2, tw * _M + 2
    xp = x.new_zeros(n, hp, wp, c)
    xp[:, 1:h + 1, 1:w + 1] = x
    # the 6x6 input tiles (stride 4), gathered as (36, N*th*tw*C)
    sn, sh, sw, sc = xp.stride()
    tiles = xp.as_strided((_A, _A, n, th, tw, c), (sh, sw, sn, _M * sh, _M * sw, sc))
    d = tiles.reshape(_A * _A, n * th * tw * c)
    del xp, tiles
    v = torch.mm(_kron(_BT, x), d).view(_A * _A, n * th * tw, c)             # Bᵀ d B for every tile
    del d
    m = torch.bmm(v, u)                                                       # (36, tiles, K)
    del v
    y = torch.mm(_kron(_AT, x), m.view(_A * _A, n * th * tw * k))             # Aᵀ m A: (16, tiles*K)
    del m
    y = y.view(_M, _M, n, th, tw, k).permute(2, 3, 0, 4, 1, 5)                # (N, th, 4, tw, 4, K)
    exact = th * _M == h and tw * _M == w
    if exact:
        out = result.view(n, th, _M, tw, _M, k) if result is not None else x.new_empty(n, th, _M, tw, _M, k)
        out.copy_(y)
        full = out.view(n, h, w, k)
    else:
        full = y.reshape(n, th * _M, tw * _M, k)[:, :h, :w]
        if result is not None:
            result.copy_(full)
            full = result
        else:
            full = full.contiguous()
    if bias is not None:
        full += bias
    return full


class _WinogradFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, u: torch.Tensor, u_t: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(u_t)
        return conv3x3_nchw(x, u, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (u_t,) = ctx.saved_tensors
        return conv3x3_nchw(grad, u_t), None, None, None


class WinogradConv2d(nn.Module):
    """A frozen 3x3/stride-1/padding-1 ``nn.Conv2d`` computed with Winograd F(4x4, 3x3).

    Same inputs and outputs as the convolution it replaces ((N, C, H, W); output channels-last);
    gradients flow to the input only. Inputs of another dtype than the weights (autocast) and small maps
    use the direct convolution.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_eligible(conv, 0):
            raise ValueError("WinogradConv2d replaces 3x3, stride-1, padding-1, ungrouped convolutions only")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        weight = conv.weight.detach()
        self.register_buffer("u", transform_weight(weight))
        self.register_buffer("u_t", transform_weight(weight.transpose(0, 1).flip(2, 3)))
        self.register_buffer("weight", weight.clone())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Small maps: the direct convolution is faster. Reduced precision (bf16-mixed autocast gives bfloat16
        # activations): the transforms lose too much in bfloat16, and cuDNN/oneDNN have their own kernels.
        if x.shape[-2] * x.shape[-1] < MIN_PIXELS or x.dtype != self.u.dtype:
            return F.conv2d(x, self.weight, self.bias, padding=1)
        return _WinogradFn.apply(x, self.u, self.u_t, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size=(3, 3), F(4x4, 3x3)"


def is_eligible(conv: nn.Module, min_channels: int = MIN_CHANNELS) -> bool:
    """Whether ``conv`` is a plain 3x3 convolution with at least ``min_channels`` input channels."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.in_channels >= min_channels)


def enabled(device: torch.device | str) -> bool:
    """Winograd is used on the CPU (cuDNN chooses its own algorithms on GPUs) unless FASTNST_WINOGRAD=0."""
    return torch.device(device).type == "cpu" and os.environ.get(WINOGRAD_ENV, "1") != "0"


def use_winograd(features: nn.Sequential, min_channels: int = MIN_CHANNELS) -> list[int]:
    """Replace the eligible convolutions of a frozen ``features`` stack in place; returns their indices.

    Call after the weights are final (normalisation included): the transformed weights are copies.
    """
    replaced = []
    for i, module in enumerate(features):
        if is_eligible(module, min_channels):
            features[i] = WinogradConv2d(module).to(module.weight.device)
            replaced.append(i)
    return replaced
