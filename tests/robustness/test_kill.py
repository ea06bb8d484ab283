"""Items 12 and the kill tests that held: kill -9 during a checkpoint write.

A training subprocess is killed while it writes the epoch-2 checkpoint. Every file
it left must open, the interrupted write must not have replaced anything, and
``--weights last`` must resume the run in its folder after epoch 1, removing the
orphaned temporary file (before the issue it stayed forever).
"""

import glob
import json
import logging
import os
import signal
import subprocess
import sys
import time

import h5py
import pytest

from siamese_mrcnn.cli import main
from tests.robustness.conftest import QUICK, TINY, data_flags, run_folders

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_every_dataset(path):
    """Open an HDF5 weight file and read every array; returns the number read."""
    count = []
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert all(name in f for name in names)
        f.visititems(lambda _, obj: count.append(obj[()].size)
                     if isinstance(obj, h5py.Dataset) else None)
    return len(count)


def kill_during_checkpoint(argv, run_glob, checkpoint, log_path, timeout=300):
    """Start ``argv``; SIGKILL it as soon as the temporary file of ``checkpoint``
    (a file name) exists in a folder matching ``run_glob``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(REPO, "lib"), REPO, os.environ.get("PYTHONPATH", "")]))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while not glob.glob(os.path.join(run_glob, f"{checkpoint}.*.tmp")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    with open(log_path) as f:
                        pytest.fail(f"training ended or timed out before writing "
                                    f"{checkpoint}:\n{f.read()[-3000:]}")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    return proc.returncode


def test_kill_during_a_checkpoint_write_then_last_resumes_in_place(tiny_coco, tmp_path,
                                                                    capsys, caplog):
    logs = str(tmp_path / "logs")
    train = ["train", *data_flags(tiny_coco), "--split", "2", "--name", "killed",
             "--logs", logs, *QUICK, *TINY]
    code = kill_during_checkpoint(
        [sys.executable, "-m", "tests.robustness.slow_checkpoint_train", *train,
         "--weights", "none", "--epochs", "2"],
        os.path.join(logs, "killed*"), "siamese_mrcnn_0002.h5", str(tmp_path / "log.txt"))
    assert code == -signal.SIGKILL

    (run,) = run_folders(logs)
    run_dir = os.path.join(logs, run)
    files = sorted(os.listdir(run_dir))
    orphans = [f for f in files if f.endswith(".tmp")]
    assert len(orphans) == 1 and orphans[0].startswith("siamese_mrcnn_0002.h5.")
    assert "siamese_mrcnn_0002.h5" not in files  # the torn write replaced nothing
    # Every file the killed run left opens: the checkpoint with all its arrays.
    assert read_every_dataset(os.path.join(run_dir, "siamese_mrcnn_0001.h5")) > 50
    assert "config.json" in files
    for name in (f for f in files if f.endswith(".json")):
        with open(os.path.join(run_dir, name)) as f:
            json.load(f)

    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="mrcnn.training"):
        assert main([*train, "--weights", "last", "--epochs", "2"]) == 0
    assert f"resuming {run_dir} after epoch 1" in capsys.readouterr().out
    assert run_folders(logs) == [run]  # resumed in place, no new run
    files = sorted(os.listdir(run_dir))
    assert not [f for f in files if f.endswith(".tmp")]  # the orphan is cleaned up
    assert [f for f in files if f.endswith(".h5")] == ["siamese_mrcnn_0001.h5",
                                                       "siamese_mrcnn_0002.h5"]
    assert read_every_dataset(os.path.join(run_dir, "siamese_mrcnn_0002.h5")) > 50
    removed = [r.getMessage() for r in caplog.records
               if "interrupted checkpoint" in r.getMessage()]
    assert removed == [f"removed {os.path.join(run_dir, orphans[0])}, left by an interrupted "
                       f"checkpoint write"]
