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
    assert oct(target.stat().st_mode & 0o777) != "0o600"
    assert sha256_file(target) == "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437"
