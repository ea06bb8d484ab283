"""mrcnn.files: the one atomic-write helper (checkpoints, JSON records, exports)."""

import json
import os
import stat

import pytest

from mrcnn.files import atomic_open, atomic_path, stale_temporaries, write_json


def test_a_file_appears_whole_and_follows_the_umask(tmp_path):
    target = tmp_path / "record.json"
    old = os.umask(0o022)
    try:
        write_json(target, {"epoch": 3})
    finally:
        os.umask(old)
    assert json.loads(target.read_text()) == {"epoch": 3}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # readable by teammates
    assert sorted(os.listdir(tmp_path)) == ["record.json"]  # no temporary left


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["config.json"]


def test_a_killed_write_is_found_as_a_stale_temporary(tmp_path):
    target = tmp_path / "siamese_mrcnn_0003.h5"
    with atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".tmp")
        # What a kill -9 before os.replace leaves: the temporary, found by pattern.
        assert stale_temporaries(tmp_path, "siamese_mrcnn_*.h5") == [tmp]
        with open(tmp, "wb") as f:
            f.write(b"weights")
    assert target.read_bytes() == b"weights"
    assert stale_temporaries(tmp_path, "siamese_mrcnn_*.h5") == []


def test_missing_directory_is_named_or_created(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match="no/such"):
        write_json(missing / "a.json", {})
    write_json(missing / "a.json", {"a": 1}, make_dirs=True)
    assert json.loads((missing / "a.json").read_text()) == {"a": 1}
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", mode="a"):
            pass
