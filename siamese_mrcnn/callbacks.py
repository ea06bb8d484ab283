"""Keras callbacks for training Siamese Mask R-CNN: a time or step budget with its
learning-rate schedule, and one-shot AP measured while training.

- :class:`TrainingBudget` (the demo's): stops training after a number of steps or
  seconds, sets the learning rate of every step (:func:`learning_rate_at`: linear
  warm-up, then cosine decay over the budget), shows a tqdm progress bar and
  records each step's own loss (:func:`loss_curve` summarises it).
- :class:`OneShotAP`: every ``every`` epochs, copies the training model's weights
  into an inference model and runs the real one-shot evaluation
  (:func:`siamese_mrcnn.evaluation.evaluate_one_shot`) on a small fixed held-out
  set; AP50 for bbox and segm, seen and unseen, goes into the epoch's logs (so
  ``history.csv``, written by :meth:`mrcnn.model.MaskRCNN.train`'s CSV logger,
  gets a column each), to TensorBoard (TensorFlow backend only) and to
  :attr:`OneShotAP.records`; optionally the best epoch's weights are kept in one
  checkpoint, written atomically.

Both work on every Keras backend; nothing here imports TensorFlow unless the
backend is TensorFlow.
"""

import logging
import math
import os
import sys
import time

import keras
import numpy as np

logger = logging.getLogger(__name__)


# ====================================================================== budget
def learning_rate_at(progress, step, base_lr, warmup_steps):
    """The learning rate of step ``step`` (0-based) at ``progress`` in [0, 1] of the
    budget: a linear warm-up over ``warmup_steps`` steps from base_lr / 10, times a
    cosine decay over the budget from base_lr down to base_lr / 20 (progress is
    clipped to [0, 1])."""
    warm = min(1.0, 0.1 + 0.9 * step / max(1, warmup_steps))
    cosine = 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    return base_lr * warm * cosine


def loss_curve(step_losses, window=20):
    """{"first": mean loss of the first ``window`` steps, "last": of the last ``window``,
    "steps", "window"} (rounded to 4 decimals): whether training brought the loss
    down. With no steps: {"first": None, "last": None, "steps": 0}."""
    losses = np.asarray(step_losses, dtype=np.float64)
    if losses.size == 0:
        return {"first": None, "last": None, "steps": 0}
    n = min(window, losses.size)
    return {"first": round(float(losses[:n].mean()), 4),
            "last": round(float(losses[-n:].mean()), 4), "steps": int(losses.size),
            "window": n}


class TrainingBudget(keras.callbacks.Callback):
    """Stop training after ``max_steps`` steps or ``seconds`` seconds (exactly one is
    given; the seconds count from ``on_train_begin``, so graph tracing and any
    evaluation done by other callbacks are included), and set the optimizer's
    learning rate before every step to :func:`learning_rate_at` of the budget's
    progress. Shows a tqdm bar on ``stream`` (default stdout; ``progress_bar=False``
    for none).

    After training: ``steps`` (steps run), ``last_logs`` (the last step's logs,
    floats), ``step_losses`` (each step's own loss: Keras logs the epoch's running
    mean, so step n's loss is n * mean_n - (n - 1) * mean_{n-1}) and ``seconds``
    (wall time from the start of training to its end).
    """

    def __init__(self, base_lr, warmup_steps, max_steps=None, seconds=None,
                 progress_bar=True, stream=None):
        super().__init__()
        if (max_steps is None) == (seconds is None):
            raise ValueError("TrainingBudget: give exactly one of max_steps and seconds")
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"TrainingBudget: max_steps must be >= 1, got {max_steps}")
        if seconds is not None and not float(seconds) > 0:
            raise ValueError(f"TrainingBudget: seconds must be > 0, got {seconds}")
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.max_steps = None if max_steps is None else int(max_steps)
        self.budget_seconds = None if seconds is None else float(seconds)
        self.progress_bar = progress_bar
        self.stream = stream
        self.steps = 0
        self.last_logs = {}
        self.step_losses = []
        self.seconds = None
        self.start = None
        self.bar = None
        self._running = 0.0

    def progress(self):
        """Fraction of the budget used (may exceed 1 on the last step)."""
        if self.max_steps is not None:
            return self.steps / self.max_steps
        return (time.monotonic() - self.start) / self.budget_seconds

    def write(self, text):
        """Print a line without breaking the progress bar."""
        from tqdm import tqdm
        tqdm.write(text, file=self.stream or sys.stdout)

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()
        if self.progress_bar:
            from tqdm import tqdm
            total = self.max_steps if self.max_steps is not None else int(self.budget_seconds)
            unit = "step" if self.max_steps is not None else "s"
            self.bar = tqdm(total=total, unit=unit, desc="training",
                            file=self.stream or sys.stdout, dynamic_ncols=True,
                            mininterval=1.0)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = learning_rate_at(
            self.progress(), self.steps, self.base_lr, self.warmup_steps)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.last_logs = {k: float(v) for k, v in (logs or {}).items()}
        running = self.last_logs.get("loss", float("nan"))
        previous = self._running if batch > 0 else 0.0
        self.step_losses.append((batch + 1) * running - batch * previous)
        self._running = running
        if self.bar is not None:
            if self.max_steps is not None:
                self.bar.update(1)
            else:
                self.bar.n = min(int(self.budget_seconds), int(time.monotonic() - self.start))
                self.bar.refresh()
            self.bar.set_postfix(step=self.steps, loss=f"{self.last_logs.get('loss', 0):.3f}",
                                 lr=f"{float(self.model.optimizer.learning_rate):.4f}",
                                 refresh=False)
        if self.progress() >= 1.0:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.seconds = time.monotonic() - self.start
        if self.bar is not None:
            self.bar.close()


# ====================================================================== one-shot AP
def ap_key(iou_type, group):
    """The log key of AP50 of ``iou_type`` ("bbox", "segm") on class ``group``
    ("seen", "unseen"), e.g. "ap50_segm_unseen"."""
    return f"ap50_{iou_type}_{group}"


def copy_weights(source, target):
    """Set every weight of the Keras model ``target`` from the layer of the same name
    in ``source`` (top-level layers; nested sub-models such as ``resnet_model`` are
    copied whole). The training and inference models of one configuration have the
    same layers with weights under the same names. Returns the number of layers
    copied; ValueError naming a layer that ``source`` lacks."""
    layers = {layer.name: layer for layer in source.layers}
    copied = 0
    for layer in target.layers:
        if not layer.weights:
            continue
        twin = layers.get(layer.name)
        if twin is None:
            raise ValueError(f"copy_weights: the source model has no layer {layer.name!r}")
        layer.set_weights(twin.get_weights())
        copied += 1
    return copied


def is_better(value, best):
    """True when ``value`` (an AP, maybe None or NaN) beats ``best`` (None: nothing
    kept yet): a finite value above the best, or any finite value when there is none.
    Ties keep the earlier epoch."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or value > best


class OneShotAP(keras.callbacks.Callback):
    """One-shot AP50 on a small fixed held-out set, every ``every`` epochs.

    At the end of epochs ``every``, ``2 * every``, ... (1-based) the weights of the
    model being trained are copied (:func:`copy_weights`) into an inference
    ``SiameseMaskRCNN`` built once from the training configuration, with
    DETECTION_MIN_CONFIDENCE and RESAMPLING of ``mode`` (default the corrected mode:
    every evaluated class queried in every image, references from other images,
    scores down to 0.05), and :func:`~siamese_mrcnn.evaluation.evaluate_one_shot`
    scores it on ``dataset`` (``runs`` reference draws from ``seed``, the first
    ``limit`` images). AP50 for "bbox" and "segm" on each class group of
    ``classes`` goes to:

    - the epoch's ``logs`` under :func:`ap_key` names (fractions in [0, 1]; NaN in
      epochs that are not evaluated or for a group without ground truth), so the
      CSV logger of ``MaskRCNN.train`` (which runs after the custom callbacks) writes
      a column each, present from the first epoch;
    - TensorBoard, on the TensorFlow backend only, as ``one_shot/ap50_...`` scalars
      at step = epoch in ``log_dir/one_shot_ap`` (``log_dir`` default: the training
      run's folder);
    - :attr:`records`: one dict per evaluation {"epoch", "seconds", and the keys}.

    With ``keep_best`` the weights of the best evaluated epoch by ``monitor`` (a key
    of :func:`ap_key`) are written to ``best_path`` (default ``best_ap50.h5`` in the
    run folder, beside its config.json) with :func:`mrcnn.weights.save_weights`,
    atomically; :attr:`best` holds {"epoch", "value", "monitor", "path"}. The default
    monitor is a *seen* class group: choosing a checkpoint by unseen-class AP would
    use the held-out classes for model selection.

    Args:
        training_model: the :class:`~siamese_mrcnn.model.SiameseMaskRCNN` being
            trained (mode "training"): its config and run folder are used.
        dataset: prepared CocoDataset of the held-out images.
        classes: {group: class ids} (e.g. {"seen": [...], "unseen": [...]}) or a
            ``splits.Split``.
        every: evaluate every this many epochs (>= 1).
        verbose: print one line per evaluation (through tqdm, so a progress bar
            stays intact).
    """

    IOU_TYPES = ("bbox", "segm")

    def __init__(self, training_model, dataset, classes, every=1, runs=1, mode=None,
                 seed=0, limit=None, keep_best=False, monitor=None, best_path=None,
                 log_dir=None, verbose=True):
        super().__init__()
        from siamese_mrcnn.evaluation import EvalMode, _class_groups

        if int(every) < 1:
            raise ValueError(f"OneShotAP: every must be >= 1, got {every}")
        self.training_model = training_model
        self.dataset = dataset
        self.groups = _class_groups(classes)
        self.every = int(every)
        self.runs = int(runs)
        self.mode = EvalMode.corrected() if mode is None else mode
        self.seed = int(seed)
        self.limit = limit
        self.num_images = len(list(dataset.image_ids)[:limit])
        iou_types = self.IOU_TYPES if training_model.config.MODEL == "mrcnn" else ("bbox",)
        self.keys = [ap_key(t, g) for t in iou_types for g in self.groups]
        self.monitor = monitor or ap_key("segm" if "segm" in iou_types else "bbox",
                                         "seen" if "seen" in self.groups
                                         else next(iter(self.groups)))
        if self.monitor not in self.keys:
            raise ValueError(f"OneShotAP: monitor {self.monitor!r} is not one of "
                             f"{', '.join(self.keys)}")
        self.keep_best = bool(keep_best)
        self.best_path = best_path
        self.log_dir = log_dir
        self.verbose = verbose
        self.records = []
        self.best = None
        self._inference = None
        self._writer = None

    # ------------------------------------------------------------------ pieces
    def inference_config(self):
        """The training configuration for one-shot inference: one GPU, the mode's
        DETECTION_MIN_CONFIDENCE and RESAMPLING, and a head batch of up to 16
        reference sets (all the categories queried in one image, where they fit)."""
        config = self.training_model.config
        queried = len({c for ids in self.groups.values() for c in ids})
        values = dict(config.to_dict(), GPU_COUNT=1, IMAGES_PER_GPU=max(1, min(queried, 16)),
                      DETECTION_MIN_CONFIDENCE=self.mode.detection_min_confidence(config),
                      RESAMPLING=self.mode.resampling)
        return type(config).from_dict(values)

    def inference_model(self):
        """The inference model (built on first use) with the current training weights."""
        from siamese_mrcnn.model import SiameseMaskRCNN

        if self._inference is None:
            self._inference = SiameseMaskRCNN("inference", self.inference_config(),
                                              self.training_model.model_dir)
        copy_weights(self.model if self.model is not None
                     else self.training_model.keras_model, self._inference.keras_model)
        return self._inference

    def evaluate(self):
        """{key: AP50} of the current training weights on the held-out set."""
        from siamese_mrcnn.evaluation import evaluate_one_shot, make_model_detector

        model = self.inference_model()
        summary = evaluate_one_shot(self.dataset, make_model_detector(model, self.mode),
                                    self.groups, model.config, runs=self.runs,
                                    shots=int(model.config.NUM_TARGETS), mode=self.mode,
                                    seed=self.seed, limit=self.limit, progress=False)
        values = {}
        for key in self.keys:
            _, iou_type, group = key.split("_", 2)
            mean = summary["groups"][group][iou_type]["AP50"]["mean"]
            values[key] = float("nan") if mean is None else float(mean)
        return values

    def _run_dir(self):
        return getattr(self.training_model, "log_dir", None)

    def _tensorboard(self, epoch, values):
        if keras.backend.backend() != "tensorflow":
            return  # tf.summary is TensorFlow's; other backends keep the CSV
        log_dir = self.log_dir or self._run_dir()
        if not log_dir:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(log_dir, "one_shot_ap"))
        with self._writer.as_default():
            for key, value in values.items():
                if math.isfinite(value):
                    tf.summary.scalar(f"one_shot/{key}", value, step=epoch)
        self._writer.flush()

    def _keep_if_best(self, epoch, values):
        from mrcnn.weights import save_weights

        value = values[self.monitor]
        if not is_better(value, None if self.best is None else self.best["value"]):
            return False
        path = self.best_path or os.path.join(self._run_dir(), "best_ap50.h5")
        save_weights(self.model if self.model is not None
                     else self.training_model.keras_model, path)
        self.best = {"epoch": epoch, "value": value, "monitor": self.monitor, "path": path}
        return True

    # ------------------------------------------------------------------ hooks
    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        done = epoch + 1  # epochs completed, the number checkpoints carry
        if done % self.every:
            for key in self.keys:  # the CSV logger fixes its columns at the first epoch
                logs[key] = float("nan")
            return
        start = time.monotonic()
        values = self.evaluate()
        seconds = time.monotonic() - start
        logs.update(values)
        self.records.append(dict(epoch=done, seconds=round(seconds, 1), **values))
        self._tensorboard(done, values)
        kept = self.keep_best and self._keep_if_best(done, values)
        if self.verbose:
            from tqdm import tqdm
            text = ", ".join(f"{k[len('ap50_'):].replace('_', ' ')} "
                             f"{'-' if not math.isfinite(v) else f'{100 * v:.1f}'}"
                             for k, v in values.items())
            tqdm.write(f"epoch {done}: one-shot AP50 (%) on {self.num_images} held-out "
                       f"images: {text} ({seconds:.0f} s)"
                       + (f"; best {self.monitor} so far, kept" if kept else ""),
                       file=sys.stdout)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
