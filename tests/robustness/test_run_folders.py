"""Items 1, 2 and 12: a run never writes into another run's folder; branching from a
middle epoch starts a new run; checkpoints follow the umask like config.json.
"""

import datetime
import hashlib
import json
import os
import shutil
import stat

import h5py

from siamese_mrcnn.cli import main
from tests.robustness.conftest import QUICK, TINY, data_flags, run_folders


def digest_of_folder(folder):
    """{file name: (sha1, mtime_ns)} of every file in ``folder``."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = (hashlib.sha1(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def test_a_new_run_never_writes_into_an_existing_run_folder(trained_run, tiny_coco, tmp_path,
                                                            capsys):
    """Item 1. Runs are named to the minute: a training started in the minute of an
    existing run of the same --name must get a folder of its own."""
    logs = str(tmp_path / "logs")
    os.makedirs(logs)
    now = datetime.datetime.now()
    taken = [f"robust{t:%Y%m%dT%H%M}" for t in (now, now + datetime.timedelta(minutes=1))]
    for name in taken:  # earlier runs of this minute and the next (the test may cross it)
        shutil.copytree(trained_run["run_dir"], os.path.join(logs, name))
    before = {name: digest_of_folder(os.path.join(logs, name)) for name in taken}

    assert main(["train", *data_flags(tiny_coco), "--weights", "none", "--split", "2",
                 "--epochs", "1", "--name", "robust", "--logs", logs, *QUICK, *TINY,
                 "--set", "DETECTION_MIN_CONFIDENCE=0.3"]) == 0

    folders = run_folders(logs)
    assert len(folders) == 3
    (new,) = set(folders) - set(taken)
    assert new.startswith(tuple(taken)) and new.rsplit("_", 1)[1] == "2"
    for name in taken:  # nothing of the earlier runs changed
        assert digest_of_folder(os.path.join(logs, name)) == before[name]
    new_dir = os.path.join(logs, new)
    assert sorted(f for f in os.listdir(new_dir) if f.endswith(".h5")) == [
        "siamese_mrcnn_0001.h5"]
    with open(os.path.join(new_dir, "config.json")) as f:
        assert json.load(f)["config"]["DETECTION_MIN_CONFIDENCE"] == 0.3
    assert f"checkpoints and config.json in {new_dir} (epoch 1)" in capsys.readouterr().out


def test_branching_from_a_middle_epoch_starts_a_new_run_recording_its_parent(
        trained_run, tiny_coco, tmp_path, capsys):
    """Item 2. The run has epochs 1 and 2; training from epoch 1 must not overwrite
    epoch 2: it continues after epoch 1 in a new folder that names its parent."""
    parent_dir = trained_run["run_dir"]
    first = trained_run["checkpoints"][0]
    before = digest_of_folder(parent_dir)
    logs = str(tmp_path / "branches")

    assert main(["train", *data_flags(tiny_coco), "--weights", first, "--split", "2",
                 "--epochs", "2", "--logs", logs, *QUICK, *TINY]) == 0
    out = capsys.readouterr().out
    assert f"branching a new run from {first} (epoch 1)" in out

    assert digest_of_folder(parent_dir) == before  # epoch 2 of the parent untouched
    (branch,) = run_folders(logs)
    branch_dir = os.path.join(logs, branch)
    # Only the epochs trained after the branch point are in the new run.
    assert sorted(f for f in os.listdir(branch_dir) if f.endswith(".h5")) == [
        "siamese_mrcnn_0002.h5"]
    with open(os.path.join(branch_dir, "run.json")) as f:
        record = json.load(f)
    assert record["parent_checkpoint"] == first and record["parent_epoch"] == 1
    assert record["split"]["unseen_names"] == ["c5"]


def test_checkpoints_follow_the_umask_like_config_json(trained_run):
    """Item 12. Checkpoints were written 0600 (tempfile.mkstemp) next to a 0644
    config.json, so teammates could not read a shared run."""
    modes = {name: stat.S_IMODE(os.stat(os.path.join(trained_run["run_dir"], name)).st_mode)
             for name in os.listdir(trained_run["run_dir"])
             if name.endswith((".h5", ".json"))}
    assert set(modes) >= {"siamese_mrcnn_0001.h5", "siamese_mrcnn_0002.h5", "config.json"}
    assert set(modes.values()) == {0o644}, modes  # the fixture trains under umask 022
    for path in trained_run["checkpoints"]:
        with h5py.File(path, "r") as f:
            assert "fpn_distance_P2" in f
