"""siamese_mrcnn.callbacks: the training budget and its schedule, and one-shot AP while
training (a tiny real run, and the best-checkpoint rule by hand)."""

import csv
import math
import os
import time
import types

import h5py
import keras
import numpy as np
import pytest

from siamese_mrcnn import callbacks
from siamese_mrcnn.config import QuickConfig


# ---------------------------------------------------------------------- schedule
def test_learning_rate_schedule_by_hand():
    # Step 0: a tenth of the peak; warmed up at progress 0: the peak.
    assert callbacks.learning_rate_at(0.0, 0, 0.02, 10) == pytest.approx(0.002)
    assert callbacks.learning_rate_at(0.0, 5, 0.02, 10) == pytest.approx(0.02 * 0.55)
    assert callbacks.learning_rate_at(0.0, 10, 0.02, 10) == pytest.approx(0.02)
    # Half-way through the cosine: 0.05 + 0.95 * 0.5; the end: a twentieth.
    assert callbacks.learning_rate_at(0.5, 100, 0.02, 10) == pytest.approx(0.02 * 0.525)
    assert callbacks.learning_rate_at(1.0, 100, 0.02, 10) == pytest.approx(0.001)
    assert callbacks.learning_rate_at(3.0, 100, 0.02, 10) == pytest.approx(0.001)


def test_loss_curve_by_hand():
    assert callbacks.loss_curve([]) == {"first": None, "last": None, "steps": 0}
    curve = callbacks.loss_curve([4.0, 3.0, 2.0, 1.0, 0.5], window=2)
    assert curve == {"first": 3.5, "last": 0.75, "steps": 5, "window": 2}
    assert callbacks.loss_curve([2.0], window=20)["window"] == 1


def _optimizer_holder():
    """What the budget touches of a model: its optimizer's learning rate and the
    stop flag."""
    return types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=None),
                                 stop_training=False)


def test_budget_stops_after_steps_sets_lr_and_recovers_step_losses():
    budget = callbacks.TrainingBudget(0.1, 2, max_steps=3, progress_bar=False)
    model = _optimizer_holder()
    budget.set_model(model)
    budget.on_train_begin()
    seen_lr = []
    # Keras logs the epoch's running mean: steps of loss 3, 1, 2 log 3, 2, 2.
    for batch, running in enumerate([3.0, 2.0, 2.0]):
        assert not model.stop_training
        budget.on_train_batch_begin(batch)
        seen_lr.append(model.optimizer.learning_rate)
        budget.on_train_batch_end(batch, {"loss": running})
    budget.on_train_end()
    assert model.stop_training and budget.steps == 3
    expected = [callbacks.learning_rate_at(s / 3, s, 0.1, 2) for s in range(3)]
    np.testing.assert_allclose(seen_lr, expected)
    np.testing.assert_allclose(budget.step_losses, [3.0, 1.0, 2.0])
    assert budget.last_logs == {"loss": 2.0} and budget.seconds >= 0


def test_budget_stops_when_time_is_up():
    budget = callbacks.TrainingBudget(0.1, 1, seconds=0.3, progress_bar=False)
    model = _optimizer_holder()
    budget.set_model(model)
    budget.on_train_begin()
    budget.on_train_batch_begin(0)
    budget.on_train_batch_end(0, {"loss": 2.0})
    assert not model.stop_training
    time.sleep(0.35)
    budget.on_train_batch_begin(1)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.05)  # end of the cosine
    budget.on_train_batch_end(1, {"loss": 2.0})
    budget.on_train_end()
    assert model.stop_training and budget.steps == 2


@pytest.mark.parametrize("kwargs", [{}, {"max_steps": 3, "seconds": 1.0}, {"max_steps": 0},
                                    {"seconds": 0.0}])
def test_budget_needs_one_positive_limit(kwargs):
    with pytest.raises(ValueError, match="TrainingBudget"):
        callbacks.TrainingBudget(0.1, 1, **kwargs)


# ---------------------------------------------------------------------- best checkpoint
def test_is_better_by_hand():
    assert callbacks.is_better(0.1, None)
    assert not callbacks.is_better(None, None) and not callbacks.is_better(float("nan"), None)
    assert callbacks.is_better(0.3, 0.2) and not callbacks.is_better(0.2, 0.2)  # ties: earlier
    assert not callbacks.is_better(0.1, 0.2) and not callbacks.is_better(float("nan"), 0.2)
    assert callbacks.ap_key("segm", "unseen") == "ap50_segm_unseen"


class ScriptedAP(callbacks.OneShotAP):
    """OneShotAP whose evaluations return given numbers (the model is a small Dense
    network), to check which epochs it keeps by hand."""

    def __init__(self, values, **kwargs):
        self.values = list(values)
        super().__init__(**kwargs)

    def evaluate(self):
        return self.values.pop(0)


def test_best_checkpoint_rule_by_hand(tmp_path):
    run = types.SimpleNamespace(config=QuickConfig(), log_dir=str(tmp_path),
                                model_dir=str(tmp_path))
    dataset = types.SimpleNamespace(image_ids=np.arange(3))
    nan = float("nan")
    # Evaluated every 2 epochs: epochs 2, 4, 6, 8 with seen segm AP50 0.2, NaN, 0.5, 0.5.
    scripted = [{"ap50_bbox_seen": b, "ap50_bbox_unseen": 0.0, "ap50_segm_seen": s,
                 "ap50_segm_unseen": 0.9} for b, s in ((0.3, 0.2), (0.9, nan), (0.1, 0.5),
                                                     (0.2, 0.5))]
    monitor = ScriptedAP(scripted, training_model=run, dataset=dataset,
                         classes={"seen": [2], "unseen": [1]}, every=2, keep_best=True,
                         verbose=False)
    assert monitor.monitor == "ap50_segm_seen"  # a seen group by default
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="dense")])
    monitor.set_model(net)
    rows = []
    for epoch in range(8):
        # The weights of each epoch are recognisable: the kernel holds the epoch + 1.
        net.get_layer("dense").set_weights([np.full((2, 1), epoch + 1.0, np.float32),
                                            np.zeros(1, np.float32)])
        logs = {"loss": 1.0}
        monitor.on_epoch_end(epoch, logs)
        rows.append(logs)
    # Every epoch's logs carry the four keys; NaN where not evaluated.
    assert all(set(monitor.keys) <= set(r) for r in rows)
    np.testing.assert_array_equal([r["ap50_segm_seen"] for r in rows[1::2]],
                                  [0.2, nan, 0.5, 0.5])
    assert all(math.isnan(r["ap50_segm_seen"]) for r in rows[0::2])
    assert [r["epoch"] for r in monitor.records] == [2, 4, 6, 8]
    # Best: epoch 6 (0.5; NaN never wins, the tie at epoch 8 keeps the earlier epoch).
    path = os.path.join(str(tmp_path), "best_ap50.h5")
    assert monitor.best == {"epoch": 6, "value": 0.5, "monitor": "ap50_segm_seen",
                            "path": path}
    with h5py.File(path, "r") as f:
        kernel = np.asarray(f["dense"][f["dense"].attrs["weight_names"][0]])
    np.testing.assert_array_equal(kernel, 6.0)
    # No temporaries left (TensorBoard's folder on TensorFlow aside).
    assert sorted(set(os.listdir(tmp_path)) - {"one_shot_ap"}) == ["best_ap50.h5"]
    with pytest.raises(ValueError, match="monitor 'ap50_segm_all'"):
        callbacks.OneShotAP(run, dataset, {"seen": [2]}, monitor="ap50_segm_all")
    with pytest.raises(ValueError, match="every must be >= 1"):
        callbacks.OneShotAP(run, dataset, {"seen": [2]}, every=0)


# ---------------------------------------------------------------------- a tiny real run
class TinyConfig(QuickConfig):
    """The quick preset at one image a step, one step an epoch."""

    NAME = "tiny_one_shot_ap"
    IMAGES_PER_GPU = 1
    STEPS_PER_EPOCH = 1


def test_one_shot_ap_while_training(tmp_path, capsys):
    """Two epochs, evaluated at the second: history.csv gets the AP columns (NaN, then
    the numbers the real evaluation gives for the weights the inference model was
    given), TensorBoard gets them on TensorFlow, the best epoch's weights are kept."""
    from siamese_mrcnn.evaluation import EvalMode, evaluate_one_shot, make_model_detector
    from siamese_mrcnn.model import SiameseMaskRCNN
    from siamese_mrcnn.procedural import (generated_dataset, held_out_dataset,
                                          procedural_layout, procedural_split)

    seen, unseen = procedural_split(8)
    layout = procedural_layout(64, 8)
    train = generated_dataset(4, seen, 0, layout)
    held_out = held_out_dataset(4, [2, 3, 1, 5], 0, str(tmp_path / "held"), layout)
    classes = {"seen": [2, 3], "unseen": [1, 5]}
    keras.utils.set_random_seed(0)
    model = SiameseMaskRCNN("training", TinyConfig(), str(tmp_path / "logs"))
    monitor = callbacks.OneShotAP(model, held_out, classes, every=2, keep_best=True,
                                  monitor="ap50_bbox_unseen")
    model.train(train, None, 0.01, 2, "all", seed=0, custom_callbacks=[monitor], verbose=0,
                active_class_ids=seen)

    with open(os.path.join(model.log_dir, "history.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    keys = ["ap50_bbox_seen", "ap50_bbox_unseen", "ap50_segm_seen", "ap50_segm_unseen"]
    assert [int(r["epoch"]) for r in rows] == [0, 1] and set(keys) <= set(rows[0])
    assert all(rows[0][k] == "nan" for k in keys)
    (record,) = monitor.records
    assert record["epoch"] == 2
    for key in keys:
        assert 0.0 <= float(rows[1][key]) <= 1.0
        assert float(rows[1][key]) == pytest.approx(record[key])
    printed = capsys.readouterr().out
    assert "epoch 2: one-shot AP50 (%) on 4 held-out images: bbox seen " in printed

    # The inference model holds the training weights of epoch 2 (the last checkpoint),
    # and scoring it again gives the logged numbers.
    inference = monitor._inference
    assert inference.config.DETECTION_MIN_CONFIDENCE == 0.05
    assert inference.config.IMAGES_PER_GPU == 4  # every queried category in one batch
    with_weights = [layer for layer in inference.keras_model.layers if layer.weights]
    assert len(with_weights) > 20
    for layer in with_weights:
        for got, want in zip(layer.get_weights(),
                             model.keras_model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
    summary = evaluate_one_shot(held_out, make_model_detector(inference, EvalMode.corrected()),
                                classes, inference.config, runs=1, mode=EvalMode.corrected(),
                                progress=False)
    assert summary["groups"]["unseen"]["bbox"]["AP50"]["mean"] == pytest.approx(
        record["ap50_bbox_unseen"])

    # The best (only) evaluated epoch is kept and loads into an inference model.
    assert monitor.best["epoch"] == 2
    assert monitor.best["path"] == os.path.join(model.log_dir, "best_ap50.h5")
    reloaded = SiameseMaskRCNN("inference", monitor.inference_config(), str(tmp_path / "x"))
    reloaded.load_weights(monitor.best["path"], by_name=False)
    np.testing.assert_array_equal(
        reloaded.keras_model.get_layer("mrcnn_mask").get_weights()[0],
        model.keras_model.get_layer("mrcnn_mask").get_weights()[0])

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        folder = os.path.join(model.log_dir, "one_shot_ap")
        (events,) = os.listdir(folder)
        scalars = {}
        for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, events)):
            for value in event.summary.value:
                scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
        assert set(scalars) == {(f"one_shot/{k}", 2) for k in keys}
        for key in keys:
            assert scalars[(f"one_shot/{key}", 2)] == pytest.approx(record[key])
    else:
        assert not os.path.exists(os.path.join(model.log_dir, "one_shot_ap"))
