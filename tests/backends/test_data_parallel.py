"""JAX data parallelism (keras.distribution.DataParallel) on two host CPU devices: a
step on a batch split over both equals a one-device step on the whole batch, in
losses and weight updates, with the step's gradient clipped by the global batch's
norm. TensorFlow's counterpart is tests/mrcnn/test_distribute.py."""

import json
import os
import subprocess
import sys

import pytest

from tests.backend import BACKEND, assert_same_step

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution on JAX")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_data_parallel_step_matches_single_device_step():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "lib"),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "tests.backends.data_parallel_step"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert len(result["devices"]) == 2
    assert result["kernel_devices"] == 2  # weights are replicated on both devices
    assert_same_step(result["single"], result["parallel"])
