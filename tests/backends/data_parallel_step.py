"""One training step on one JAX device, then with keras.distribution.DataParallel on
two host devices, from the same weights and the same batch.

Executed in a subprocess by test_data_parallel.py with
XLA_FLAGS=--xla_force_host_platform_device_count=2 (JAX reads it when it starts).
Prints one JSON line with both runs' losses and weight updates. The batch holds two
different images, one per device in the parallel step; the gradient is clipped
(GRADIENT_CLIP_NORM far below its norm), so the step's update also shows that the
clip saw the global batch's gradient.
"""

import json
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402

from mrcnn.model import MaskRCNN  # noqa: E402
from tests.backend import train_one_step  # noqa: E402
from tests.configs import DeterministicTinyConfig, shapes_dataset  # noqa: E402

class SingleDevice(DeterministicTinyConfig):
    NAME = "single"
    BACKBONE = "resnet18"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    STEPS_PER_EPOCH = 1
    GRADIENT_CLIP_NORM = 0.01


class TwoDevices(SingleDevice):
    NAME = "data_parallel"
    GPU_COUNT = 2
    IMAGES_PER_GPU = 1


def main():
    keras.utils.set_random_seed(0)
    dataset = shapes_dataset(count=2, seed=5)
    out = {"devices": [str(d) for d in keras.distribution.list_devices()]}
    with tempfile.TemporaryDirectory() as tmp:
        single = MaskRCNN("training", SingleDevice(), tmp)
        init = os.path.join(tmp, "init.h5")
        single.save_weights(init)
        out["single"] = train_one_step(single, dataset, 1.0)
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
        parallel = MaskRCNN("training", TwoDevices(), tmp)
        parallel.load_weights(init, by_name=True)
        parallel.set_log_dir()
        kernel = parallel.keras_model.get_layer("conv1").kernel.value
        out["kernel_devices"] = len(kernel.sharding.device_set)
        out["parallel"] = train_one_step(parallel, dataset, 1.0)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
