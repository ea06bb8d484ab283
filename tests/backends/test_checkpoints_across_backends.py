"""Checkpoints are backend-neutral: a file written on one Keras backend loads on the
others with every weight equal, and the model gives the same detections.

On each backend this test writes a checkpoint in a subprocess of its own backend and
reads it in subprocesses of the other installed backends (a process runs on one
backend), so the three sessions of scripts/test.sh cover all six directions.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.backend import BACKEND

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torchvision"}
OTHERS = [b for b in MODULES if b != BACKEND and importlib.util.find_spec(MODULES[b])]


def run_worker(backend, *args):
    env = dict(os.environ, KERAS_BACKEND=backend,
               PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "lib"),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "tests.backends.checkpoint_worker", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (backend, proc.stderr[-3000:])
    return np.load(args[2])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("across")
    checkpoint = str(folder / f"written_on_{BACKEND}.h5")
    return checkpoint, run_worker(BACKEND, "write", checkpoint, str(folder / "w.npz"), "8")


@pytest.mark.skipif(not OTHERS, reason="no other Keras backend installed")
@pytest.mark.parametrize("reader", OTHERS)
def test_checkpoint_of_this_backend_loads_and_detects_the_same_on(reader, written, tmp_path):
    checkpoint, expected = written
    assert str(expected["backend"]) == BACKEND
    assert len(expected["scores"]) >= 3  # the comparison below is not vacuous
    got = run_worker(reader, "read", checkpoint, str(tmp_path / "r.npz"))
    assert str(got["backend"]) == reader
    weights = [k for k in expected.files if k.startswith("w")]
    assert len(weights) > 100
    for key in weights:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"])
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-4, atol=1e-5)
    # Pixel boxes are rounded, so a float difference can move an edge by one.
    np.testing.assert_allclose(got["rois"], expected["rois"], atol=1)
    assert np.mean(got["masks"] != expected["masks"]) < 1e-3
