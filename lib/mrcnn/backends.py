"""Which Keras backend runs the model, and how training scales out on it.

Keras reads its backend once, when ``keras`` is first imported: from the
``KERAS_BACKEND`` environment variable, else ``~/.keras/keras.json``, else
TensorFlow. This library follows that rule; the command line's and the demo's
``--backend`` only set ``KERAS_BACKEND`` before Keras is imported
(:func:`select_backend`).

Scaling out goes through each backend's own engine (never a wrapper of ours):

- TensorFlow: a ``tf.distribute`` strategy (MirroredStrategy for the GPUs of one
  machine, MultiWorkerMirroredStrategy for several machines), passed to
  ``MaskRCNN(..., strategy=...)``;
- JAX: ``keras.distribution.DataParallel`` over the visible devices, set globally
  before the model is built; Keras shards each global batch across them.

PyTorch runs on one device.
"""

import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
STRATEGIES = ("default", "mirrored", "multiworker", "data-parallel")


class BackendError(RuntimeError):
    """A backend or strategy that cannot be used in this process."""


def select_backend(name):
    """Make ``name`` the Keras backend of this process (sets ``KERAS_BACKEND``).

    Must run before ``keras`` is imported; once it is, only a matching ``name`` is
    accepted. Returns ``name``.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras
        active = keras.backend.backend()
        if active != name:
            raise BackendError(
                f"Keras is already running on {active!r} in this process, so it cannot "
                f"switch to {name!r}: set KERAS_BACKEND={name} before Keras is imported "
                f"(e.g. in a new process)")
        return name
    os.environ["KERAS_BACKEND"] = name
    return name


def requested_backend():
    """The backend Keras will use (or uses): the running one, else KERAS_BACKEND's."""
    if "keras" in sys.modules:
        import keras
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def device_names():
    """Human-readable accelerator and CPU devices of the running backend."""
    import keras
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip()
                for d in jax.devices()]
    if backend == "torch":
        import torch
        if torch.cuda.is_available():
            return [f"cuda:{i} {torch.cuda.get_device_name(i)}"
                    for i in range(torch.cuda.device_count())]
        return ["cpu"]
    import tensorflow as tf
    return [f"{d.device_type}:{d.name}" for d in tf.config.list_logical_devices()]


def make_strategy(name):
    """Set up ``--strategy name`` on the running backend.

    Returns ``(strategy, replicas)``: the ``tf.distribute`` strategy to build the
    model with (None off TensorFlow or for "default") and the number of devices the
    global batch is split over (GPU_COUNT).

    "mirrored" / "multiworker" need TensorFlow; "data-parallel" needs JAX and sets
    ``keras.distribution.DataParallel`` over all visible devices (on one device it is
    the same as "default").
    """
    if name not in STRATEGIES:
        raise BackendError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    import keras
    backend = keras.backend.backend()
    if name == "default":
        return None, 1
    if name in ("mirrored", "multiworker"):
        if backend != "tensorflow":
            raise BackendError(f"--strategy {name} is tf.distribute and needs the TensorFlow "
                               f"backend (running {backend}); on JAX use --strategy "
                               f"data-parallel")
        import tensorflow as tf
        strategy = (tf.distribute.MirroredStrategy() if name == "mirrored"
                    else tf.distribute.MultiWorkerMirroredStrategy())
        return strategy, int(strategy.num_replicas_in_sync)
    if backend != "jax":
        raise BackendError(f"--strategy data-parallel is keras.distribution and needs the "
                           f"JAX backend (running {backend}); on TensorFlow use --strategy "
                           f"mirrored")
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return None, len(devices)
