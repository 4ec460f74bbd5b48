"""The import structure: folders are the layers, arrows only go down, no circles, torch stays in its half.

Reads every module of the package with ``ast`` (nothing is imported) and checks:
- no circle of imports (at any level: a lazy import inside a function is an arrow too);
- every arrow goes to a layer at or below its own (LAYERS, top to bottom);
- the torch-free half never imports torch, Lightning or a torch-half module at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "fastnst"

# Top to bottom; a module belongs to the first entry its dotted name starts with. Modules of one layer
# may import each other (without circles).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("fastnst.__main__", "fastnst.cli", "fastnst"),  # "fastnst": the package face (lazy names)
    ("fastnst.commands",),
    ("fastnst.demo",),
    ("fastnst.batch", "fastnst.models", "fastnst.augment", "fastnst.anystyle"),
    ("fastnst.training", "fastnst.optimize"),
    ("fastnst.networks",),
    ("fastnst.losses",),
    ("fastnst.video", "fastnst.web"),
    ("fastnst.styles",),
    ("fastnst.runtime",),
    ("fastnst.image", "fastnst.outputs", "fastnst.sources"),  # outputs: the one output planner; sources: data
    ("fastnst.options", "fastnst.checks", "fastnst.fileio", "fastnst.cpu"),
    ("fastnst.constants", "fastnst.contract", "fastnst.errors"),
)
TORCH_HALF = ("fastnst.networks", "fastnst.losses", "fastnst.training", "fastnst.optimize", "fastnst.demo")
TORCH_PACKAGES = ("torch", "torchvision", "pytorch_lightning", "lightning", "datasets", "jsonargparse")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(target: str) -> str | None:
    """The fastnst module a dotted import names (a name inside a module resolves to that module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported name, at module level) for every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    for node in tree.body:  # module-level if/try blocks run at import too; `if TYPE_CHECKING:` does not
        if isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            top |= {id(n) for n in node.body + node.orelse}
        elif isinstance(node, ast.Try):
            top |= {id(n) for n in node.body + node.orelse + node.finalbody}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out += [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, id(node) in top) for a in node.names]
    return out


def _layer(module: str) -> int:
    """Index in LAYERS (0 = top); the longest matching name wins ('fastnst' matches only the face)."""
    best = max(((len(n), i) for i, names in enumerate(LAYERS) for n in names
                if module == n or (n != "fastnst" and module.startswith(n + "."))), default=None)
    assert best is not None, f"{module} has no layer in LAYERS"
    return best[1]


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for name, _ in imports(m):
            target = _resolve(name) if name.split(".")[0] == "fastnst" else None
            if target and target != m:
                edges[m].add(target)
    return edges


def test_every_module_has_a_layer():
    assert sorted(m for m in MODULES if _layer(m) is None) == []


def test_no_circles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def test_arrows_only_go_down():
    up = [f"{m} -> {t}" for m, targets in graph().items() for t in targets if _layer(t) < _layer(m)]
    assert up == []


def test_the_torch_free_half_imports_no_torch_at_module_level():
    bad = []
    for m in MODULES:
        if m.startswith(TORCH_HALF):
            continue
        for name, top in imports(m):
            if top and (name.split(".")[0] in TORCH_PACKAGES or name.startswith(TORCH_HALF)):
                bad.append(f"{m} imports {name}")
    assert bad == []
