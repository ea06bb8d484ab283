"""Test-session setup shared by all test packages.

The suite runs on the Keras backend named by KERAS_BACKEND (default tensorflow).
``scripts/test.sh`` runs all of it on TensorFlow, then the files of
``MULTI_BACKEND_TESTS`` again on JAX and on PyTorch; on those backends every other
file is left uncollected (it may import TensorFlow, which the GPU machines lack).
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

# Quieten TensorFlow's C++ logging (grappler cost-model warnings and the like);
# must be set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# oneDNN convolutions (see lib/mrcnn/__init__.py): tests that import tensorflow
# before mrcnn get them too.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# JAX compiles every new graph (even each weight initialiser's shape); a persistent
# cache makes later builds of the same graphs, in this process or a subprocess,
# seconds instead of minutes.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(REPO, ".pytest_cache", "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# The backend-sensitive tests (relative to tests/): they run on every backend.
# On JAX: ops against numpy, model build + training semantics, detection, checkpoints
# across backends, data parallelism; on PyTorch the same but data parallelism. The
# learning tests run on TensorFlow only: on JAX the Siamese one alone took 194 s of a
# cold-cache CI run (XLA compilation and XLA:CPU's slow convolution gradients) and
# pushed the suite past its 30-minute budget. JAX's training semantics are tested in
# backends/test_training.py and mrcnn/test_model.py; that JAX training learns is shown
# by scripts/gpu_check.sh's demo loss curve (README, "GPU check"), or on demand (a file
# named on the command line is always collected):
# `TEST_BACKENDS=jax bash scripts/test.sh tests/siamese_mrcnn/test_learning.py`.
MULTI_BACKEND_TESTS = {
    "jax": [
        "backends/test_native_ops.py",
        "mrcnn/test_ops_boxes.py",
        "mrcnn/test_ops_proposals.py",
        "mrcnn/test_ops_roi_align.py",
        "mrcnn/test_ops_targets.py",
        "mrcnn/test_ops_detection.py",
        "mrcnn/test_losses.py",
        "mrcnn/test_model.py",
        "siamese_mrcnn/test_model.py",
        "backends/test_training.py",
        "backends/test_checkpoints_across_backends.py",
        "backends/test_no_tensorflow.py",
        "backends/test_data_parallel.py",
    ],
}
MULTI_BACKEND_TESTS["torch"] = [
    f for f in MULTI_BACKEND_TESTS["jax"]
    if f != "backends/test_data_parallel.py"]


def pytest_ignore_collect(collection_path, config):
    """Off TensorFlow, collect only MULTI_BACKEND_TESTS (and the folders holding them)."""
    if BACKEND == "tensorflow":
        return None
    wanted = MULTI_BACKEND_TESTS.get(BACKEND)
    if wanted is None:
        return None
    path = os.path.relpath(str(collection_path), os.path.join(REPO, "tests"))
    if path.startswith(".."):
        return None
    if os.path.isdir(str(collection_path)):
        return not any(f.startswith(path + os.sep) for f in wanted) and path != "."
    if path.endswith(".py") and os.path.basename(path).startswith("test_"):
        return path not in wanted
    return None
