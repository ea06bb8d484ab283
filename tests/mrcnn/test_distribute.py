"""tf.distribute: a MirroredStrategy step on two logical CPU devices equals a
single-device step on the same data (losses and weight updates)."""

import json
import os
import subprocess
import sys

from tests.backend import assert_same_step

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_mirrored_step_matches_single_device_step():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "tests.mrcnn.mirrored_step"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["replicas"] == 2
    assert_same_step(result["single"], result["mirrored"])
