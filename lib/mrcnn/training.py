"""Training machinery of Mask R-CNN: the train/test step, layer selection, callbacks.

``LossModel`` is the functional training graph (inputs -> raw head outputs and
targets) whose ``compute_loss`` is Mask R-CNN's: the owner (``MaskRCNN``) supplies a
function that turns the graph's outputs into the five named losses, and
``compute_loss`` adds the weighted sum and the L2 weight decay. It runs on every
Keras backend through that backend's own train step (TensorFlow's is overridden to
clip the global batch's gradient under ``tf.distribute``).

Everything here is stateless across ``MaskRCNN.train`` calls: each call compiles a
fresh optimizer and fresh loss trackers, so training in stages within one process
reports the same losses as a fresh process would.
"""

import glob
import logging
import os
import re

import keras
import numpy as np
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution, unscale_loss_for_distribution

from mrcnn import weights as weights_io
from mrcnn.files import stale_temporaries

logger = logging.getLogger(__name__)

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
              "mrcnn_bbox_loss", "mrcnn_mask_loss")

# Layer presets of MaskRCNN.train(layers=...): a regular expression over layer names.
LAYER_PRESETS = {
    # Everything but the ResNet backbone.
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    # ResNet from a given stage up, plus the heads.
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}


def resolve_layer_regex(layers):
    """Map a preset name ("heads", "3+", "4+", "5+", "all") or a regex to a regex."""
    if not isinstance(layers, str) or not layers:
        raise ValueError(f"layers must be a preset name {sorted(LAYER_PRESETS)} or a "
                         f"regular expression, got {layers!r}")
    regex = LAYER_PRESETS.get(layers, layers)
    try:
        re.compile(regex)
    except re.error as e:
        raise ValueError(f"layers={layers!r} is not a preset {sorted(LAYER_PRESETS)} "
                         f"nor a valid regular expression: {e}") from None
    return regex


def set_trainable(model, layer_regex):
    """Mark layers whose name fully matches ``layer_regex`` trainable, the rest frozen.

    Nested sub-models (``rpn_model``, ``resnet_model``, ``fpn_model``) are entered
    and their inner layers matched by name, so "heads" trains the RPN inside
    ``rpn_model`` while leaving the ResNet inside ``resnet_model`` frozen.
    Layers without weights are skipped. Returns the names of the trainable layers.
    """
    trainable = []

    def visit(layer):
        if isinstance(layer, keras.Model) or hasattr(layer, "layers") and layer.layers:
            # A container: its own trainable flag must be on for inner layers to train.
            layer.trainable = True
            for inner in layer.layers:
                visit(inner)
            return
        if not layer.weights:
            return
        on = bool(re.fullmatch(layer_regex, layer.name))
        layer.trainable = on
        if on:
            trainable.append(layer.name)

    for layer in model.layers:
        visit(layer)
    return trainable


def _iter_leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _iter_leaf_layers(layer)
        else:
            yield layer


def decayed_weights(model):
    """Trainable weight tensors that get L2 weight decay: all but BatchNorm gamma/beta."""
    out = []
    for layer in _iter_leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        out.extend(layer.trainable_weights)
    return out


class LossModel(keras.Model):
    """Functional training graph whose loss is Mask R-CNN's five losses.

    Built as ``LossModel(inputs=..., outputs=..., name=...)`` like any functional
    model; :meth:`configure_losses` must be called before ``compile``/``fit``.
    ``fit`` takes the input dicts of ``mrcnn.data.DataGenerator`` as ``x`` (no ``y``).

    The loss hooks into Keras the documented way, by overriding :meth:`compute_loss`,
    so every backend's own train step runs it (JAX's stateless, jitted step; PyTorch's
    autograd step). Only TensorFlow gets its own :meth:`train_step`, because under a
    ``tf.distribute`` strategy the optimizer would clip each replica's partial
    gradient: that step clips the global batch's gradient instead. On JAX and PyTorch
    the gradient a step sees is already the global batch's (``keras.distribution``
    shards the batch inside one compiled step), so the optimizer's
    ``global_clipnorm`` clips it (see :func:`make_optimizer`).
    """

    def configure_losses(self, loss_fn, loss_weights, weight_decay, gradient_clip_norm=None):
        """``loss_fn(outputs, inputs) -> {name: scalar}`` for the names of LOSS_NAMES
        present in ``loss_weights`` (missing weights count as 1.0).

        ``gradient_clip_norm``: the global norm the global batch's gradient is clipped
        to (TensorFlow: in :meth:`train_step`; other backends: by the optimizer).
        """
        self._mrcnn_clip_norm = gradient_clip_norm
        self._mrcnn_loss_fn = loss_fn
        self._mrcnn_loss_weights = dict(loss_weights)
        self._mrcnn_weight_decay = float(weight_decay)
        # Tracked as the model's own metrics, so they are reset each epoch and, on
        # JAX, carried through the stateless step like any metric variable.
        self._mrcnn_trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES]

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Recomputed per compile because train() changes which layers are trainable.
        self._mrcnn_decayed = decayed_weights(self)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Weighted sum of the five losses plus L2 weight decay, as a float32 scalar.

        Records each named loss in its tracker. Under a TensorFlow strategy the
        result is scaled for the replica count (Keras' convention for a loss summed
        over replicas); elsewhere that scaling is the identity.
        """
        losses = self._mrcnn_loss_fn(y_pred, x)
        total = ops.convert_to_tensor(0.0, dtype="float32")
        for name, value in losses.items():
            total = total + ops.cast(value, "float32") * self._mrcnn_loss_weights.get(name, 1.0)
        if self._mrcnn_weight_decay > 0 and self._mrcnn_decayed:
            decay = [ops.sum(ops.square(ops.cast(w, "float32"))) / float(np.prod(w.shape))
                     for w in self._mrcnn_decayed]
            total = total + self._mrcnn_weight_decay * ops.sum(ops.stack(decay))
        for tracker in self._mrcnn_trackers:
            if tracker.name in losses:
                tracker.update_state(losses[tracker.name])
        return scale_loss_for_distribution(total)

    if keras.backend.backend() == "tensorflow":
        def train_step(self, data):
            """TensorFlow's step with the global batch's gradient clipped (see class)."""
            import tensorflow as tf
            x = data[0] if isinstance(data, tuple) else data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self._compute_loss(x=x, y_pred=y_pred, training=True)
                self._loss_tracker.update_state(unscale_loss_for_distribution(loss))
                loss = self.optimizer.scale_loss(loss)
            variables = self.trainable_variables
            grads = tape.gradient(loss, variables)
            pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
            grads = self._clip_global_batch_gradient([g for g, _ in pairs])
            self.optimizer.apply_gradients(zip(grads, [v for _, v in pairs]))
            return self.get_metrics_result()

        def _clip_global_batch_gradient(self, grads):
            """Clip by the global norm of the gradient summed over replicas.

            With R > 1 replicas the summed gradient is clipped and divided by R again,
            because the optimizer sums the replicas' gradients once more (one extra
            all-reduce per step, the price of clipping the true global norm). Under a
            loss scale the threshold is scaled too (clipping commutes with scaling),
            and non-finite gradients stay non-finite so the loss-scale optimizer skips
            them.
            """
            import tensorflow as tf
            clip = self._mrcnn_clip_norm
            if not clip or not grads:
                return grads
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            if replicas > 1:
                grads = tf.distribute.get_replica_context().all_reduce(
                    tf.distribute.ReduceOp.SUM, grads)
            threshold = tf.constant(float(clip), tf.float32)
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                # The same scale scale_loss() applied (its variable exists once built).
                opt = self.optimizer
                scale = opt.dynamic_scale if opt.built else opt.initial_scale
                threshold = threshold * tf.cast(scale, tf.float32)
            grads, _ = tf.clip_by_global_norm(grads, threshold)
            if replicas > 1:
                grads = [g / replicas for g in grads]
            return grads


def compiles_with_jit():
    """Whether Mask R-CNN's Keras models compile with ``jit_compile`` on this backend.

    JAX: yes (XLA; every op here has static shapes there). TensorFlow: no, its NMS
    and crop-and-resize kernels have no XLA lowering. PyTorch: no (``torch.compile``
    of the dynamic NMS output sizes is not worth its compile time).
    """
    return keras.backend.backend() == "jax"


def make_optimizer(name, learning_rate, momentum, gradient_clip_norm):
    """The optimizer ``MaskRCNN.train`` compiles: "SGD" (with momentum) or "Adam".

    On TensorFlow the train step clips (see :class:`LossModel`), so the optimizer
    does not; on JAX and PyTorch the optimizer clips by ``global_clipnorm``, which
    there sees the global batch's gradient.
    """
    clip = {}
    if gradient_clip_norm and keras.backend.backend() != "tensorflow":
        clip = {"global_clipnorm": float(gradient_clip_norm)}
    if str(name).lower() == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, **clip)
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, **clip)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the weights after every epoch as a legacy HDF5 file, atomically.

    ``path_template`` is formatted with ``epoch`` (1-based, the number of completed
    epochs), e.g. ``.../mask_rcnn_shapes_{epoch:04d}.h5``. ``weights_owner`` is the
    model whose layer layout the file uses (the training model).

    When training starts, temporary files that an interrupted checkpoint write of
    this template left in its directory (``<checkpoint>.h5.<random>.tmp``) are
    removed, each with a warning: the run owns its folder, so no other writer can
    be using them.
    """

    def __init__(self, path_template, weights_owner):
        super().__init__()
        self.path_template = path_template
        self.weights_owner = weights_owner
        self.saved = []
        self.removed_temporaries = []

    def on_train_begin(self, logs=None):
        directory = os.path.dirname(os.path.abspath(self.path_template))
        pattern = glob.escape(os.path.basename(self.path_template).split("{")[0]) + "*"
        pattern += os.path.splitext(self.path_template)[1]
        for path in stale_temporaries(directory, pattern):
            os.remove(path)
            self.removed_temporaries.append(path)
            logger.warning("removed %s, left by an interrupted checkpoint write", path)

    def on_epoch_end(self, epoch, logs=None):
        path = self.path_template.format(epoch=epoch + 1)
        weights_io.save_weights(self.weights_owner, path)
        self.saved.append(path)
        logger.info("saved checkpoint %s", path)


class SkippedSamplesLogger(keras.callbacks.Callback):
    """Report, at each epoch end, how many samples the data generator skipped."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def on_epoch_end(self, epoch, logs=None):
        skipped = getattr(self.generator, "num_skipped", 0)
        if logs is not None:
            logs["skipped_samples"] = float(skipped)
        if skipped:
            logger.warning("epoch %d: %d training sample(s) skipped so far because they "
                           "failed to load (see earlier warnings)", epoch + 1, skipped)


def checkpoint_dir_ok(path):
    """Create ``path`` if needed and check it is writable, with a clear error."""
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"log/checkpoint directory is not writable: {path}")
    return path
