"""Detect with a tiny Siamese model on the backend of this process (KERAS_BACKEND).

    python -m tests.backends.checkpoint_worker write CHECKPOINT OUT.npz SEED
    python -m tests.backends.checkpoint_worker read CHECKPOINT OUT.npz

``write``: weights drawn from a seeded numpy generator (``tests.backend.fill_weights``)
and assigned on this backend, saved as a legacy HDF5 checkpoint; ``read``: a fresh
model (Keras' random initial weights) loads CHECKPOINT by name. Either way the
model detects in a fixed query with a fixed reference and the detections (and every
weight) go to OUT.npz. Used by test_checkpoints_across_backends.py, one process per
backend (a process runs on one backend).
"""

import sys

import numpy as np


def query_and_reference():
    rng = np.random.default_rng(21)
    return (rng.integers(0, 256, size=(64, 80, 3), dtype=np.uint8),
            rng.integers(0, 256, size=(24, 30, 3), dtype=np.uint8))


def build(model_dir):
    from siamese_mrcnn.model import SiameseMaskRCNN
    from tests.configs import TinySiameseConfig
    return SiameseMaskRCNN("inference", TinySiameseConfig(), model_dir)


def main(argv):
    import tempfile

    import keras
    mode, checkpoint, out = argv[:3]
    model = build(tempfile.mkdtemp())
    if mode == "write":
        # Moderate weights (Keras' random ones saturate every score of this untrained
        # model into background), then "match" favoured a little so it detects.
        from tests.backend import fill_weights
        fill_weights(model.keras_model, seed=int(argv[3]))
        logits = model.keras_model.get_layer("mrcnn_class_logits")
        kernel, _ = logits.get_weights()
        logits.set_weights([kernel, np.array([0.0, 1.0], np.float32)])
        model.save_weights(checkpoint)
    else:
        report = model.load_weights(checkpoint, by_name=True)
        assert not report.missing and not report.skipped, report.summary()
    query, reference = query_and_reference()
    result = model.detect([reference], [query])[0]
    weights = {f"w{i}": np.asarray(w) for i, w in enumerate(model.keras_model.get_weights())}
    np.savez(out, backend=keras.backend.backend(), rois=result["rois"],
             scores=result["scores"], class_ids=result["class_ids"], masks=result["masks"],
             **weights)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
