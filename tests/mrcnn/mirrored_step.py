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
from tests.backend import train_one_step  # noqa: E402
from tests.configs import DeterministicTinyConfig, shapes_dataset  # noqa: E402

class SingleDevice(DeterministicTinyConfig):
    NAME = "single"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    STEPS_PER_EPOCH = 1


class TwoReplicas(SingleDevice):
    NAME = "mirrored"
    GPU_COUNT = 2
    IMAGES_PER_GPU = 1


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
        out["single"] = train_one_step(single, dataset, 0.002)
        out["mirrored"] = train_one_step(mirrored, dataset, 0.002)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
