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
