"""Saving and loading trained TransformerNet weights without pickle.

The trained network is stored as ``.safetensors`` with string metadata: ``fastnst_config`` (the JSON
of the network's constructor arguments), ``fastnst_arch`` (preset name or "custom") and whatever the
caller adds (style name, SHA-256, loss settings, steps). Lightning ``.ckpt`` files are read with
``torch.load(weights_only=True)`` only: a checkpoint carrying code is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fastnst.constants import VERSION
from fastnst.contract import META_ARCH, META_CONFIG, META_VERSION
from fastnst.errors import FastNSTError, InputError, ModelFormatError
from fastnst.fileio import atomic_output
from fastnst.networks.transformer import TransformerNet

CKPT_PREFIX = "transformer."


def save_transformer(path: str | os.PathLike, model: TransformerNet, metadata: dict[str, Any] | None = None,
                     overwrite: bool = False) -> Path:
    """Write ``model``'s weights and ``metadata`` (values turned into strings) to a safetensors file, atomically."""
    from safetensors.torch import save_file

    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta[META_CONFIG] = json.dumps(model.config)
    meta[META_ARCH] = model.preset or "custom"
    meta.setdefault(META_VERSION, VERSION)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


# Bounds of a recorded network configuration before anything is built from it (a hostile file must not
# allocate gigabytes): far above every preset (johnson: widths 32-128, 5 residual blocks, kernel 9).
_CONFIG_BOUNDS = {"width": 4096, "num_residual": 64, "end_kernel": 31}


def _check_config(config: dict[str, Any], source: str) -> None:
    bad = f"'{source}' has malformed '{META_CONFIG}' metadata"
    channels = config.get("channels")
    if channels is not None and (not isinstance(channels, (list, tuple)) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 < c <= _CONFIG_BOUNDS["width"] for c in channels)):
        raise ModelFormatError(f"{bad} (channels {channels!r}); re-export or retrain the weights")
    for key in ("num_residual", "end_kernel"):
        value = config.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= _CONFIG_BOUNDS[key]):
            raise ModelFormatError(f"{bad} ({key} {value!r}); re-export or retrain the weights")


def _from_state(state: dict[str, torch.Tensor], config: Any, source: str) -> TransformerNet:
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            raise ModelFormatError(f"'{source}' has malformed '{META_CONFIG}' metadata (not JSON); "
                                   f"re-export or retrain the weights") from None
    if not isinstance(config, dict):
        raise ModelFormatError(f"'{source}' has no fastnst network configuration; is it a fastnst model?")
    _check_config(config, source)
    try:
        model = TransformerNet.from_config(config)
    except (TypeError, ValueError, KeyError, FastNSTError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelFormatError(f"'{source}' has malformed '{META_CONFIG}' metadata ({first}); "
                               f"re-export or retrain the weights") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFormatError(f"'{source}' does not match its recorded network configuration: "
                               f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def load_transformer(path: str | os.PathLike) -> tuple[TransformerNet, dict[str, str]]:
    """Load a trained network from ``.safetensors`` (save_transformer) or a Lightning ``.ckpt``.

    Returns the network in eval mode and its metadata. Raises InputError for a missing file and
    ModelFormatError for a file of the wrong kind (including pickles that carry code).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model '{path}' does not exist; check the path")
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        from fastnst.fileio import read_safetensors

        state, meta = read_safetensors(path, "pass weights written by fastnst train")
        if META_CONFIG not in meta:
            raise ModelFormatError(f"'{path}' has no '{META_CONFIG}' metadata; it was not written by fastnst train")
        return _from_state(state, meta[META_CONFIG], str(path)), meta
    from fastnst.fileio import load_weights_only

    try:
        ckpt = load_weights_only(path, "model")
    except FastNSTError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"'{path}' is not a fastnst checkpoint that loads safely (weights only): "
                               f"{first}; pass an .onnx, .safetensors or .ckpt written by fastnst") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ModelFormatError(f"'{path}' is not a Lightning checkpoint of fastnst train (no state_dict)")
    hparams = ckpt.get("hyper_parameters") or {}
    config = hparams.get("transformer_config")
    state = {k[len(CKPT_PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(CKPT_PREFIX)}
    if config is None or not state:
        raise ModelFormatError(f"'{path}' is a checkpoint, but not of a fastnst style network")
    meta = {k: v if isinstance(v, str) else json.dumps(v, default=str) for k, v in hparams.items()}
    meta[META_CONFIG] = json.dumps(config)
    meta.setdefault("global_step", str(ckpt.get("global_step", "")))
    model = _from_state(state, config, str(path))
    meta.setdefault(META_ARCH, model.preset or "custom")
    return model, meta
