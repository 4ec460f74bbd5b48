"""``fastnst demo``: parse, call :func:`fastnst.demo.run_demo`, print."""

from __future__ import annotations

from fastnst.commands.common import Parser, add_options, chosen


def main(argv: list[str]) -> int:
    """``fastnst demo``: train briefly on the bundled photos, export, verify, stylise into ./fastnst-demo/."""
    from fastnst.demo import DemoOptions, run_demo

    p = Parser(prog="fastnst demo", description="Train a style network briefly on the bundled demo photos, "
               "export and verify it, and stylise the photos: the whole pipeline in about two minutes on a 2-core CPU.",
               epilog="examples:\n  fastnst demo\n  fastnst demo --vgg-weights random   # offline: untrained "
                      "VGG, the output shows the pipeline, not a style\n")
    add_options(p, DemoOptions)
    print("\n".join(run_demo(DemoOptions(**chosen(p.parse_args(argv), DemoOptions))).lines()))
    return 0
