"""Run one training step on one device and under MirroredStrategy on two logical CPUs.

Executed in a subprocess by test_distribute.py (logical devices must be configured
before TensorFlow initialises). Prints one JSON line with both runs' losses and
weight checksums. The dataset holds one image, so both replicas see the same sample
and the per-replica mean losses equal the single-device batch mean.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


from mrcnn.model import MaskRCNN  # noqa: E402
from tests.configs import DeterministicTinyConfig, shapes_dataset  # noqa: E402

LAYERS = ("conv1", "fpn_p2", "mrcnn_class_logits", "mrcnn_bbox_fc")


class SingleDevice(DeterministicTinyConfig):
    NAME = "single"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    STEPS_PER_EPOCH = 1


class TwoReplicas(SingleDevice):
    NAME = "mirrored"
    GPU_COUNT = 2
    IMAGES_PER_GPU = 1


def run(model, dataset):
    """Train one step; return losses and each checked layer's kernel update."""
    before = {name: model.keras_model.get_layer(name).get_weights()[0] for name in LAYERS}
    history = model.train(dataset, None, 0.002, 1, "all", seed=0, verbose=0).history
    after = {name: model.keras_model.get_layer(name).get_weights()[0] for name in LAYERS}
    return {"losses": {k: float(v[0]) for k, v in history.items()},
            "updates": {k: (after[k] - before[k]).ravel().tolist() for k in LAYERS}}


def main():
    import keras
    keras.utils.set_random_seed(0)
    dataset = shapes_dataset(count=1, seed=5)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        single = MaskRCNN("training", SingleDevice(), tmp)
        init = os.path.join(tmp, "init.h5")
        single.save_weights(init)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        mirrored = MaskRCNN("training", TwoReplicas(), tmp, strategy=strategy)
        mirrored.load_weights(init, by_name=True)
        mirrored.set_log_dir()
        out["replicas"] = strategy.num_replicas_in_sync
        out["single"] = run(single, dataset)
        out["mirrored"] = run(mirrored, dataset)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
