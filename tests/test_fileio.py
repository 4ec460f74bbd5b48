import os

import pytest

from fastnst.errors import InputError, OutputExistsError
from fastnst.fileio import atomic_output, check_output, sha256_file


def test_check_output(tmp_path):
    assert check_output(tmp_path / "a.png") == tmp_path / "a.png"
    (tmp_path / "b.png").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output(tmp_path / "b.png")
    assert check_output(tmp_path / "b.png", overwrite=True)
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        check_output(tmp_path / "no" / "c.png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(InputError, match="not writable"):
        check_output(ro / "x.png")


def test_atomic_output_success_and_failure(tmp_path):
    target = tmp_path / "m.bin"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"]
    assert sha256_file(target) == "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_output_gives_the_usual_permissions_under_the_umask(tmp_path, umask, mode):
    """The temp file is created 0600 (mkstemp); the result gets 0666 minus the umask, like open() would give."""
    import os

    old = os.umask(umask)
    try:
        with atomic_output(tmp_path / "out.png") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == mode


def test_empty_output_path_is_refused():
    from fastnst.fileio import check_output

    for bad in ("", "   "):
        with pytest.raises(InputError, match="output path is empty"):
            check_output(bad)


def test_output_equal_to_an_input_is_refused_even_with_overwrite(tmp_path):
    from fastnst.fileio import check_not_input

    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    link = tmp_path / "hard.png"
    os.link(src, link)
    for out in (src, tmp_path / "." / "in.png", link):
        with pytest.raises(InputError, match="would replace it"):
            check_output(out, overwrite=True, inputs=[src])
    check_output(src, overwrite=False, inputs=[src], in_place=True)  # explicit in-place is allowed
    with pytest.raises(InputError, match="input folder"):
        check_not_input(tmp_path, [tmp_path])
    check_not_input(tmp_path / "other.png", [src, None, "-"])


def test_killed_runs_temp_files_are_removed_by_the_next_writer(tmp_path):
    import subprocess
    import sys

    from fastnst.fileio import remove_stale_temps, temp_path

    # a temp file named for a process that has exited (as after kill -9) and one of this live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = temp_path(tmp_path / "a.png")
    mine.write_bytes(b"live")
    stale = tmp_path / mine.name.replace(f"-{os.getpid()}-", f"-{pid}-")
    stale.write_bytes(b"partial")
    (tmp_path / "keep.png").write_bytes(b"x")
    with atomic_output(tmp_path / "b.png") as tmp:
        tmp.write_bytes(b"b")
    assert not stale.exists() and mine.exists() and (tmp_path / "keep.png").exists()
    assert remove_stale_temps(tmp_path, force=True) == []


def test_disk_full_and_permission_errors_become_one_line(tmp_path, monkeypatch):
    import errno

    from fastnst.errors import OutputError

    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    for code, words in ((errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied"),
                        (errno.EROFS, "read-only")):
        with pytest.raises(OutputError, match=words) as info:
            with atomic_output(target, overwrite=True) as tmp:
                tmp.write_bytes(b"part")
                raise OSError(code, os.strerror(code))
        assert "\n" not in str(info.value)
        assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.bin"]

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)  # the rename itself fails
    with pytest.raises(OutputError, match="no space left"):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.bin"]
