"""fastnst.optimize, the package face: the public API, one-line errors, no module shadowed by a function."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import fastnst.optimize as O
from fastnst.errors import FastNSTError
from tests.optimize_fixtures import RANDOM, content, style  # noqa: F401 (fixtures)


def test_the_face_re_exports_its_rooms_and_no_function_shadows_a_module():
    rooms = [importlib.import_module(f"fastnst.optimize.{m.name}") for m in pkgutil.iter_modules(O.__path__)]
    for name in O.__all__:
        assert any(getattr(room, name, None) is getattr(O, name) for room in rooms) or name == \
            "OptimizationInterrupted", name
    for room in rooms:  # fastnst.optimize.<room> is the module, not a function of the same name
        assert getattr(O, room.__name__.rpartition(".")[2]) is room
    assert {"gatys", "invert", "texture", "dream", "score", "run_job", "GatysJob", "GatysSettings"} <= set(O.__all__)


def test_public_api_returns_pil(content, style):
    import fastnst

    img = fastnst.gatys(content, style, size=32, iterations=1, **RANDOM)
    assert img.size == (32, 21) and img.mode == "RGB"
    assert isinstance(fastnst.score(img, content, style, **RANDOM)["total"], float)
    assert fastnst.texture(style, 24, iterations=1, **RANDOM).size == (24, 24)
    assert fastnst.invert(content, "relu1_2", size=16, iterations=1, **RANDOM).size == (16, 11)
    assert fastnst.dream(content, "relu1_2", size=16, octaves=1, iterations=1, **RANDOM).size == (16, 11)


@pytest.mark.parametrize("kwargs, message", [
    (dict(content_layers="relu4_9"), "did you mean 'relu4_"),
    (dict(style_layers="relu1_1,rleu2_1"), "did you mean 'relu2_1'"),
    (dict(iterations=0), "iterations must be positive, got 0"),
    (dict(size=0), "size must be positive, got 0"),
    (dict(size=8), "too small for the chosen layers"),
    (dict(size=32, scales=3), "fewer --scales"),
    (dict(style_layer_weights=[1, 2]), "2 style layer weights for 5 style layers"),
    (dict(content_weight=-1), "--content-weight must be >= 0, got -1"),
    (dict(optimizer="sgd"), "unknown --optimizer 'sgd'"),
    (dict(net="vgg11"), "unknown loss network"),
])
def test_bad_options_are_one_line_errors(content, style, kwargs, message):
    with pytest.raises(FastNSTError, match=message) as info:
        O.gatys(content, style, **RANDOM, **{"iterations": 1, **kwargs})
    assert "\n" not in str(info.value)


ROOT = Path(__file__).resolve().parent.parent
OWN_MODULES = sorted(str(p.relative_to(ROOT)) for p in [
    *(ROOT / "fastnst/optimize").glob("*.py"), *(ROOT / "fastnst/losses").glob("*.py"),
    *(ROOT / f"fastnst/networks/{m}.py" for m in ("vgg", "vgg_normalize", "vgg_import", "winograd")),
    ROOT / "fastnst/commands/optimize.py", ROOT / "fastnst/commands/vgg.py"])
NN_OVERRIDES = {"train"}  # torch.nn.Module's signature: VGGFeatures.train(mode) ignores mode on purpose


def dead_code(source: str) -> list[str]:
    """Private module-level names nothing uses, conditionals with identical branches, unused parameters."""
    import ast

    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    found = []
    for node in tree.body:
        names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        found += [f"unused {n}" for n in names if n.startswith("_") and not n.startswith("__") and n not in used]
    for node in ast.walk(tree):
        if isinstance(node, ast.IfExp) and ast.dump(node.body) == ast.dump(node.orelse):
            found.append(f"identical branches at line {node.lineno}")
        if isinstance(node, ast.If) and node.orelse and [ast.dump(x) for x in node.body] == \
                [ast.dump(x) for x in node.orelse]:
            found.append(f"identical branches at line {node.lineno}")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in NN_OVERRIDES:
            if any(isinstance(x, ast.Raise) and "NotImplementedError" in ast.dump(x) for x in node.body):
                continue  # an interface stub
            inside = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
                if a.arg not in ("self", "cls") and not a.arg.startswith("_") and a.arg not in inside:
                    found.append(f"unused parameter {a.arg} of {node.name}")
    return found


@pytest.mark.parametrize("path", OWN_MODULES)
def test_no_dead_code(path):
    assert dead_code((ROOT / path).read_text()) == []
