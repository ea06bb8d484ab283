"""Helpers for tests that run on every Keras backend (see tests/conftest.py).

``BACKEND`` is the running backend; ``as_numpy`` turns any backend's tensor (or a
nested structure of them) into numpy; ``const`` makes a float32/int32 numpy array as
``tf.constant`` would; ``tensorflow_only`` marks a test about TensorFlow itself
(``tf.function`` with unknown dimensions, tf.distribute); ``gradients`` is the
gradient of a scalar function on any backend.
"""

import os

import numpy as np
import pytest

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="about TensorFlow itself (tf.function, tf.distribute)")


def as_numpy(value):
    """A tensor (any backend, gradient-tracking or not) or a structure of them -> numpy."""
    import keras
    return keras.tree.map_structure(keras.ops.convert_to_numpy, value)


def const(values, dtype=None):
    """numpy array of ``values``: float64 -> float32 and int64 -> int32, as tf.constant."""
    array = np.asarray(values)
    if dtype is not None:
        return array.astype(dtype)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64:
        return array.astype(np.int32)
    return array


def gradients(fn, arrays):
    """Gradients of the scalar ``fn(*tensors)`` with respect to each of ``arrays``
    (numpy), on the running backend; numpy results (None where nothing flows)."""
    import keras
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        tensors = [tf.convert_to_tensor(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
        return [None if g is None else tf.convert_to_tensor(g).numpy() for g in grads]
    if backend == "jax":
        import jax
        grads = jax.grad(lambda *xs: fn(*xs), argnums=tuple(range(len(arrays))))(
            *[jax.numpy.asarray(a) for a in arrays])
        return [np.asarray(g) for g in grads]
    import torch
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*tensors).backward()
    return [None if t.grad is None else t.grad.numpy() for t in tensors]


def fill_weights(keras_model, seed):
    """Set every weight of ``keras_model`` from a numpy generator, so that a model gets
    the same weights on every backend (Keras' own initialisers draw from each
    backend's random numbers). Kernels are LeCun-normal (variance 1 / fan-in, so
    activations stay moderate through a ResNet whose BN layers are identities here),
    biases and BN betas/means 0, BN gammas and variances 1. Returns the model."""
    import zlib
    for weight in keras_model.weights:
        name = weight.path.split("/")[-1]
        shape = tuple(weight.shape)
        if name in ("gamma", "moving_variance"):
            value = np.ones(shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = np.zeros(shape)
        else:
            rng = np.random.default_rng([seed, zlib.crc32(weight.path.encode())])
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            value = rng.normal(0.0, np.sqrt(1.0 / max(fan_in, 1)), size=shape)
            if weight.path.endswith("conv1/kernel"):
                value /= 64.0  # molded pixels are +-128: start the backbone at O(1)
        weight.assign(value.astype(weight.dtype))
    return keras_model


# ---------------------------------------------------------------------- one step on 1 vs 2 devices
STEP_LAYERS = ("conv1", "fpn_p2", "mrcnn_class_logits", "mrcnn_bbox_fc")
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss", "loss")


def train_one_step(model, dataset, learning_rate):
    """Train ``model`` one epoch (its STEPS_PER_EPOCH = 1); return its losses and the
    kernel update of each layer of STEP_LAYERS (JSON-ready lists)."""
    def kernels():
        return {name: model.keras_model.get_layer(name).get_weights()[0]
                for name in STEP_LAYERS}
    before = kernels()
    history = model.train(dataset, None, learning_rate, 1, "all", seed=0, verbose=0).history
    after = kernels()
    return {"losses": {k: float(v[0]) for k, v in history.items()},
            "updates": {k: (after[k] - before[k]).ravel().tolist() for k in STEP_LAYERS}}


def assert_same_step(single, parallel):
    """Losses and layer updates of a step split over devices equal those of one device.

    Each layer's update is compared as a whole (relative L2): float32 sums in another
    order (per device, then an all-reduce) move single elements of early layers by
    ~1e-7 absolute and a layer's update by about 1% at most (measured: usually 1e-5,
    once 7.4e-3 for conv1, whose small update passes through every layer's
    round-off); a per-device clip or a missing all-reduce changes it by tens of
    percent.
    """
    for name in LOSS_NAMES:
        np.testing.assert_allclose(parallel["losses"][name], single["losses"][name],
                                   rtol=1e-5, err_msg=name)
    for layer, update in single["updates"].items():
        update = np.asarray(update)
        if layer != "mrcnn_bbox_fc":  # gets gradient only from positive ROIs
            assert np.abs(update).max() > 0, layer
        diff = np.linalg.norm(np.asarray(parallel["updates"][layer]) - update)
        scale = max(np.linalg.norm(update), 1e-12)
        assert diff / scale < 3e-2, (layer, diff / scale)

