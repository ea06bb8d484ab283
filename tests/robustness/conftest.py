"""Shared data and helpers of the robustness suite (issue 10).

The suite feeds the library what users feed it by mistake (corrupt and odd images,
broken annotations, kills mid-write, odd settings, runs started together) and checks
that nothing is lost and nothing is silently wrong. It reuses the tiny COCO-format
dataset of ``tests/siamese_mrcnn/conftest.py`` (8 images of 64x96, classes c2, c5, c9,
c11 = contiguous 1..4) and one tiny CLI training run shared by the whole session.
"""

import json
import os

import pytest

from siamese_mrcnn.cli import main
from tests.configs import TINY_CLI
# Fixtures of the one-shot tests, registered here by import.
from tests.siamese_mrcnn.conftest import (  # noqa: F401
    TinyConfig, build_tiny_coco, data_flags, image_path, run_error, tiny_coco, tiny_config,
    tiny_dataset)

TINY = TINY_CLI  # a CPU-sized model for the CLI (tests/configs.py)

# One step per epoch, batch 1, no validation, a learning rate that keeps the random
# heads near their initial state (they then match some proposals).
QUICK = ["--steps-per-epoch", "1", "--validation-steps", "0", "--images-per-gpu", "1",
         "--lr", "1e-9", "--seed", "3", "--schedule", "quick", "--heads-epochs", "0"]


def write_annotations(path, data):
    """Write a COCO-format dict as JSON to ``path``; returns the path as a str."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return str(path)


def run_folders(logs):
    """Run folders under ``logs``, sorted."""
    return sorted(d for d in os.listdir(logs) if os.path.isdir(os.path.join(logs, d)))


@pytest.fixture(scope="package", autouse=True)
def eager_tensorflow():
    """TensorFlow functions run eagerly in this suite: tracing the training step
    costs ~15 s per training run on a 2-core CPU, one eager step well under one.
    What is tested here is files, folders, records and messages, not the graph
    (graph-mode training and inference are tested in tests/mrcnn and
    tests/siamese_mrcnn). Restored when the package's tests are done."""
    import tensorflow as tf
    before = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(before)


@pytest.fixture(scope="package")
def trained_run(tiny_coco, tmp_path_factory):
    """Two epochs of one step on split 2 (c5 held out), named "robust":
    {"logs", "run_dir", "checkpoints": [epoch 1, epoch 2]}."""
    logs = str(tmp_path_factory.mktemp("robust_logs"))
    umask = os.umask(0o022)  # the usual one, so file modes are known
    try:
        assert main(["train", *data_flags(tiny_coco), "--weights", "none", "--split", "2",
                     "--epochs", "2", "--name", "robust", "--logs", logs, *QUICK,
                     *TINY]) == 0
    finally:
        os.umask(umask)
    (run,) = run_folders(logs)
    run_dir = os.path.join(logs, run)
    return {"logs": logs, "run_dir": run_dir,
            "checkpoints": [os.path.join(run_dir, f"siamese_mrcnn_{e:04d}.h5")
                            for e in (1, 2)]}


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            # Eager mode (above) does not apply to tf.data functions; TF says so once.
            item.add_marker(pytest.mark.filterwarnings(
                "ignore:Even though the `tf.config.experimental_run_functions_eagerly`"
                ":UserWarning"))
