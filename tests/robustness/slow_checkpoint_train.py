"""``siamese-mrcnn`` with slow HDF5 writes, for a test to kill it mid-checkpoint.

Run as ``python -m tests.robustness.slow_checkpoint_train train ...``. Every HDF5
dataset creation first sleeps ``SLOW_H5_SECONDS`` (default 0.02), as on a slow
shared disk: a checkpoint of the tiny model then takes seconds, not milliseconds,
so a kill lands inside the write. TensorFlow functions run eagerly, as in the rest
of the robustness suite. Nothing of the library itself is replaced.
"""

import os
import sys
import time

import h5py


def _slow_h5py(delay):
    create = h5py.Group.create_dataset

    def slow_create_dataset(self, *args, **kwargs):
        time.sleep(delay)
        return create(self, *args, **kwargs)

    h5py.Group.create_dataset = slow_create_dataset


if __name__ == "__main__":
    _slow_h5py(float(os.environ.get("SLOW_H5_SECONDS", "0.02")))
    import tensorflow as tf
    tf.config.run_functions_eagerly(True)
    from siamese_mrcnn.cli import main
    sys.exit(main(sys.argv[1:]))
