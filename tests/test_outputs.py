"""The one output planner (fastnst.outputs): files, folders, stdout, names, formats, collisions, inputs, overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastnst.errors import ConfigError, InputError, OutputExistsError
from fastnst.outputs import Source, check_run_folder, check_target, folder_targets, is_inside, plan
from tests.conftest import synthetic_rgb


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png", "c.gif"):
        synthetic_rgb(8, 8).save(folder / name)
    return folder


def _sources(folder):
    return [Source(str(folder / r), folder / r, Path(r)) for r in ("a.jpg", "sub/b.png", "c.gif")]


def test_stdout_file_and_folder_modes(photos, tmp_path):
    one = [Source("a", photos / "a.jpg")]
    assert plan(one, "-").mode == "stdout" and plan(one, "-").paths == [None]
    with pytest.raises(ConfigError, match="exactly one input"):
        plan(_sources(photos), "-")
    assert plan(one, str(tmp_path / "x.webp")).paths == [tmp_path / "x.webp"]
    folder = plan(_sources(photos), str(tmp_path / "out"))
    assert folder.mode == "folder" and (tmp_path / "out").is_dir()  # created: its parent exists
    # sub-folders mirrored; a format fastnst does not write (gif) becomes png
    assert folder.paths == [tmp_path / "out" / "a.jpg", tmp_path / "out" / "sub" / "b.png", tmp_path / "out" / "c.png"]
    assert plan(one, str(tmp_path / "new") + "/").mode == "folder"
    with pytest.raises(ConfigError, match="cannot tell the format"):
        plan([Source("<stdin>", None)], str(tmp_path / "x.out"))
    with pytest.raises(InputError, match="unsupported output format"):
        plan(one, str(tmp_path / "x.xyz"))
    with pytest.raises(InputError, match="cannot be created"):
        plan(_sources(photos), str(tmp_path / "no" / "such"))


def test_never_onto_an_input_and_never_over_an_existing_file(photos, tmp_path):
    one = [Source("a", photos / "a.jpg")]
    with pytest.raises(InputError, match="would replace it"):
        plan(one, str(photos / "a.jpg"), overwrite=True)
    assert plan(one, str(photos / "a.jpg"), in_place=True).paths == [photos / "a.jpg"]
    with pytest.raises(InputError, match="is the input"):  # a folder output that is the input folder
        plan(_sources(photos), str(photos))
    (tmp_path / "x.png").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        plan(one, str(tmp_path / "x.png"))
    assert plan(one, str(tmp_path / "x.png"), overwrite=True).mode == "file"
    assert (tmp_path / "x.png").read_bytes() == b"old"  # planning writes nothing


def test_names_templates_and_collisions(tmp_path):
    named = folder_targets([Source("p/a.jpg", Path("p/a.jpg")), Source("q/b.gif", Path("q/b.gif"), Path("q/b.gif"))],
                           tmp_path, name="{stem}-{style}{suffix}", fields={"style": "mosaic"})
    assert named == [tmp_path / "a-mosaic.jpg", tmp_path / "q" / "b-mosaic.png"]
    sources = [Source("p/a.jpg", Path("p/a.jpg")), Source("q/a.png", Path("q/a.png"))]
    with pytest.raises(ConfigError, match="would both be written"):
        folder_targets(sources, tmp_path, "png")
    with pytest.raises(ConfigError, match="^p/a.jpg then q/a.png -> "):
        folder_targets(sources, tmp_path, "png", clash="{earlier} then {current} -> {target}")


def test_one_target(tmp_path):
    src = tmp_path / "in.png"
    synthetic_rgb(8, 8).save(src)
    assert check_target(tmp_path / "out.png", inputs=[src]) == tmp_path / "out.png"
    with pytest.raises(InputError, match="unsupported output format"):
        check_target(tmp_path / "out.mp4")
    assert check_target(tmp_path / "out.mp4", known_format=False) == tmp_path / "out.mp4"  # e.g. a video container
    with pytest.raises(OutputExistsError, match="^output '.*in.png' exists; pass overwrite=True$"):
        check_target(src, exists_hint="pass overwrite=True")
    with pytest.raises(InputError, match="would replace it"):
        check_target(src, overwrite=True, inputs=[src])


def test_a_run_folder(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    assert is_inside(data / "run", data) and is_inside(data, data) and not is_inside(tmp_path, data)
    assert check_run_folder(tmp_path / "run", ["last.ckpt"], keep=False, held="busy") == tmp_path / "run"
    with pytest.raises(InputError, match="^--out '.*photos/run' is inside the data: it; choose another --out$"):
        check_run_folder(data / "run", [], keep=False, held="", reads=data, among="the data: it")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.ckpt").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="^busy$"):
        check_run_folder(tmp_path / "run", ["last.ckpt"], keep=False, held="busy")
    assert check_run_folder(tmp_path / "run", ["last.ckpt"], keep=True, held="busy") == tmp_path / "run"
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InputError, match="is a file"):
        check_run_folder(tmp_path / "file", [], keep=False, held="")
