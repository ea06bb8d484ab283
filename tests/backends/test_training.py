"""Training semantics on the running Keras backend (TensorFlow, JAX or PyTorch).

The loss is the weighted sum of the five losses plus the L2 weight decay; one step
clips the gradient by its global norm; frozen BatchNorm keeps its statistics while
its gamma/beta train. ``tests/mrcnn/test_model.py`` (also run on every backend)
covers layer presets, checkpoints, resume, the optimizer choice, detection and mixed
precision.
"""

import numpy as np
import pytest

from mrcnn.model import MaskRCNN
from tests.backend import as_numpy, fill_weights
from tests.configs import DeterministicTinyConfig, shapes_dataset


class SmallStepConfig(DeterministicTinyConfig):
    """ResNet-18 (fewer layers to compile on JAX), one step of two images."""

    NAME = "tiny_step"
    BACKBONE = "resnet18"
    STEPS_PER_EPOCH = 1
    LEARNING_MOMENTUM = 0.0
    WEIGHT_DECAY = 0.01
    LOSS_WEIGHTS = {"rpn_class_loss": 2.0, "rpn_bbox_loss": 0.1, "mrcnn_class_loss": 2.0,
                    "mrcnn_bbox_loss": 0.5, "mrcnn_mask_loss": 1.0}
    # Far below any real gradient's norm: the step's update has norm lr * clip.
    GRADIENT_CLIP_NORM = 1e-3


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    model = MaskRCNN("training", SmallStepConfig(), str(tmp_path_factory.mktemp("step")))
    fill_weights(model.keras_model, seed=4)
    return model


@pytest.fixture(scope="module")
def dataset():
    return shapes_dataset(count=4, seed=2)


def test_loss_is_the_weighted_sum_plus_weight_decay(model, dataset):
    config = model.config
    km = model.keras_model
    model.train(dataset, None, 1e-12, 1, "all", seed=1, verbose=0)  # compiles, moves nothing
    batch = model.make_data_generator(dataset, shuffle=False, seed=1, steps=1)[0]
    # Keras' compiled predict step (jitted on JAX: op-by-op JAX would compile each op);
    # BN is frozen and the ROI sampler deterministic here, so it equals training mode.
    outputs = km.predict_on_batch(batch)
    named = {k: float(as_numpy(v)) for k, v in model.compute_losses(outputs, batch).items()}
    assert len(named) == 5 and all(np.isfinite(v) for v in named.values()), named
    weighted = sum(config.LOSS_WEIGHTS[k] * v for k, v in named.items())
    # Decay over trainable weights other than BN gamma/beta: sum(w^2) / size(w) each.
    decay = 0.0
    for w in km.trainable_weights:
        if w.path.split("/")[-1] in ("gamma", "beta"):
            continue
        value = as_numpy(w.value).astype(np.float64)
        decay += float((value ** 2).sum() / value.size)
    assert decay > 0
    total = float(as_numpy(km.compute_loss(x=batch, y_pred=outputs)))
    np.testing.assert_allclose(total, weighted + config.WEIGHT_DECAY * decay, rtol=1e-5)


def test_step_clips_global_norm_and_frozen_bn_keeps_its_statistics(model, dataset):
    km = model.keras_model
    trainable = {w.path: as_numpy(w.value).copy() for w in km.trainable_weights}
    statistics = {w.path: as_numpy(w.value).copy() for w in km.non_trainable_weights
                  if w.path.endswith(("moving_mean", "moving_variance"))}
    assert statistics  # every BatchNorm of the backbone and heads has them
    history = model.train(dataset, None, 1.0, model.epoch + 1, "all", seed=5, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    updates = {p: as_numpy(w.value) - trainable[p] for w in km.trainable_weights
               for p in [w.path]}
    norm = np.sqrt(sum(float((u.astype(np.float64) ** 2).sum()) for u in updates.values()))
    # SGD without momentum at lr 1: the update is the clipped gradient, norm 1e-3.
    np.testing.assert_allclose(norm, 1e-3, rtol=1e-3)
    moved = [p for p, u in updates.items() if np.abs(u).max() > 0]
    assert any(p.endswith("gamma") for p in moved) and any(p.endswith("kernel") for p in moved)
    for path, before in statistics.items():
        after = as_numpy(next(w for w in km.non_trainable_weights if w.path == path).value)
        np.testing.assert_array_equal(after, before, err_msg=path)
