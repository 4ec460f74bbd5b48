"""fastnst.losses, the package face: its names, and that it imports no network (no circle through networks/)."""

import subprocess
import sys

import fastnst.losses as L
from fastnst.losses import functional, modules, perceptual


def test_the_face_re_exports_each_room():
    rooms = (functional, modules, perceptual)
    for name in L.__all__:
        assert any(getattr(room, name, None) is getattr(L, name) for room in rooms), name
    assert {"gram_matrix", "PerceptualLoss", "StyleLoss", "style_targets", "total_variation"} <= set(L.__all__)


def test_importing_the_losses_loads_no_network_module():
    code = "import sys, fastnst.losses; print(sorted(m for m in sys.modules if m.startswith('fastnst.networks')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
