"""Mask R-CNN: the model, assembled from small overridable methods.

Shape shorthand: B batch, A anchors (all pyramid levels), N proposals, T training
ROIs per image, G ground-truth slots, K classes (incl. background), D detections.

``MaskRCNN(mode, config, model_dir)`` builds ``keras_model`` for ``mode`` "training"
(inputs: the dict of ``mrcnn.data.DataGenerator``; outputs: raw head outputs and
their targets, from which :meth:`MaskRCNN.compute_losses` computes the five losses)
or "inference" (inputs: molded images and metas; outputs: detections and masks).

The assembly is split so that an extension overrides only what differs
(``siamese_mrcnn`` overrides the inputs, the feature extraction and the heads'
class layout):

    build_inputs -> build_feature_maps -> build_rpn -> build_anchors -> proposals
      training:  build_roi_targets -> build_classifier_head / build_mask_head
      inference: build_classifier_head -> DetectionLayer -> build_mask_head

Coordinates: the graph works in normalised boxes; ``detect`` returns pixel boxes
(y1, x1, y2, x2), exclusive at y2/x2, in the original image.
"""

import contextlib
import datetime
import json
import logging
import math
import os
import re

import keras
import numpy as np

from mrcnn import losses as loss_fns
from mrcnn import utils
from mrcnn import weights as weights_io
from mrcnn.config import RUN_CONFIG_FILE
from mrcnn.data import DataGenerator, compose_image_meta, mold_image
from mrcnn.files import write_json
from mrcnn.data import parse_image_meta as parse_meta_numpy
from mrcnn.layers.backbone import fpn_graph, resnet_graph
from mrcnn.layers.detection import (AnchorLayer, DetectionLayer, DetectionTargetLayer,
                                    ProposalLayer, PyramidROIAlign)
from mrcnn.layers.graph_utils import NormBoxes
from mrcnn.layers.heads import build_fpn_mask_graph, build_rpn_model, fpn_classifier_graph
from mrcnn.ops.meta import parse_image_meta
from mrcnn.training import (AtomicCheckpoint, LossModel, SkippedSamplesLogger,
                            checkpoint_dir_ok, compiles_with_jit, make_optimizer,
                            resolve_layer_regex, set_trainable)

logger = logging.getLogger(__name__)


def compute_backbone_shapes(config, image_shape):
    """[levels, 2] (height, width) of P2..P6 feature maps for an image of ``image_shape``."""
    if callable(config.BACKBONE):
        return np.asarray(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array([[int(math.ceil(image_shape[0] / s)), int(math.ceil(image_shape[1] / s))]
                     for s in config.BACKBONE_STRIDES])


def run_compiled(model, inputs):
    """``model.predict_on_batch(inputs)`` as numpy, outputs in the model's structure."""
    outputs = model.predict_on_batch(inputs)
    return keras.tree.map_structure(np.asarray, outputs)


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class MaskRCNN:
    """Mask R-CNN with Matterport's API, on Keras 3.

    Args:
        mode: "training" or "inference".
        config: a :class:`mrcnn.config.Config`.
        model_dir: directory for logs and checkpoints (a run gets a sub-directory).
        strategy: optional ``tf.distribute.Strategy`` (TensorFlow backend); the model
            is built in its scope and ``train`` runs on all its replicas.
            ``config.GPU_COUNT`` must equal the strategy's ``num_replicas_in_sync`` so
            BATCH_SIZE is the global batch. On JAX, scale out with
            ``keras.distribution.set_distribution(DataParallel(...))`` before building
            the model instead (see README).
    """

    # Checkpoint file name; {name} is config.NAME lower-cased, {epoch} the epoch.
    CHECKPOINT_TEMPLATE = "mask_rcnn_{name}_{epoch:04d}.h5"

    def __init__(self, mode, config, model_dir, strategy=None):
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', got {mode!r}")
        if strategy is not None and strategy.num_replicas_in_sync != config.GPU_COUNT:
            raise ValueError(f"config.GPU_COUNT ({config.GPU_COUNT}) must equal the "
                             f"strategy's replica count ({strategy.num_replicas_in_sync})")
        if mode == "training" and config.IMAGE_RESIZE_MODE not in ("square", "crop"):
            raise ValueError("training needs a fixed image shape: IMAGE_RESIZE_MODE must be "
                             f"'square' or 'crop', got {config.IMAGE_RESIZE_MODE!r}")
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.strategy = strategy
        self._anchor_cache = {}
        self.set_log_dir()
        with self.scope(), _dtype_policy(config.DTYPE_POLICY):
            self.keras_model = self.build_model()
        # XLA on JAX (every step jitted); TensorFlow's NMS and crop ops and
        # PyTorch's dynamic shapes run uncompiled (see training.compiles_with_jit).
        self.keras_model.jit_compile = compiles_with_jit()

    def scope(self):
        """The distribution strategy's scope, or a no-op context without one."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    # ================================================================ assembly
    @property
    def static_image_shape(self):
        """True when every molded image has config.IMAGE_SHAPE (modes square, crop)."""
        return self.config.IMAGE_RESIZE_MODE in ("square", "crop")

    def build_model(self):
        """Assemble and return the Keras model for ``self.mode``."""
        config = self.config
        inputs = self.build_inputs()
        rpn_feature_maps, mrcnn_feature_maps = self.build_feature_maps(inputs)
        rpn_class_logits, rpn_probs, rpn_bbox = self.build_rpn(rpn_feature_maps)
        anchors = self.build_anchors(inputs)
        training = self.mode == "training"
        proposal_count = (config.POST_NMS_ROIS_TRAINING if training
                          else config.POST_NMS_ROIS_INFERENCE)
        rpn_rois = ProposalLayer(proposal_count, config.RPN_NMS_THRESHOLD,
                                 config.PRE_NMS_LIMIT, config.RPN_BBOX_STD_DEV,
                                 name="ROI")([rpn_probs, rpn_bbox, anchors])
        rpn = {"rpn_class_logits": rpn_class_logits, "rpn_class": rpn_probs,
               "rpn_bbox": rpn_bbox, "rpn_rois": rpn_rois}
        if training:
            return self.build_training_model(inputs, rpn, mrcnn_feature_maps)
        return self.build_inference_model(inputs, rpn, mrcnn_feature_maps)

    def build_inputs(self):
        """Dict of keras.Input; training adds the ground-truth and RPN-target inputs."""
        config = self.config
        h, w = (config.IMAGE_SHAPE[:2] if self.static_image_shape else (None, None))
        inputs = {
            "input_image": keras.Input([h, w, config.IMAGE_CHANNEL_COUNT], name="input_image"),
            "input_image_meta": keras.Input([config.IMAGE_META_SIZE], name="input_image_meta"),
        }
        if self.mode == "training":
            mask_shape = (list(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK
                          else list(config.IMAGE_SHAPE[:2]))
            inputs.update({
                "input_rpn_match": keras.Input([None, 1], dtype="int32", name="input_rpn_match"),
                "input_rpn_bbox": keras.Input([None, 4], name="input_rpn_bbox"),
                "input_gt_class_ids": keras.Input([None], dtype="int32",
                                                  name="input_gt_class_ids"),
                "input_gt_boxes": keras.Input([None, 4], name="input_gt_boxes"),
                "input_gt_masks": keras.Input(mask_shape + [None], dtype="uint8",
                                              name="input_gt_masks"),
            })
            if not config.USE_RPN_ROIS:
                inputs["input_rois"] = keras.Input([None, 4], name="input_rois")
        elif not self.static_image_shape:
            inputs["input_anchors"] = keras.Input([None, 4], name="input_anchors")
        return inputs

    def build_feature_maps(self, inputs):
        """Backbone + FPN: returns (RPN maps [P2..P6], head maps [P2..P5])."""
        config = self.config
        image = inputs["input_image"]
        if callable(config.BACKBONE):
            _, c2, c3, c4, c5 = config.BACKBONE(image, stage5=True, train_bn=config.TRAIN_BN)
        else:
            _, c2, c3, c4, c5 = resnet_graph(image, config.BACKBONE, stage5=True,
                                             train_bn=config.TRAIN_BN,
                                             width=config.BACKBONE_WIDTH)
        p2, p3, p4, p5, p6 = fpn_graph(c2, c3, c4, c5, config.TOP_DOWN_PYRAMID_SIZE)
        return [p2, p3, p4, p5, p6], [p2, p3, p4, p5]

    def build_rpn(self, feature_maps):
        """Shared RPN over all levels -> (logits [B,A,2], probs [B,A,2], deltas [B,A,4])."""
        config = self.config
        depth = feature_maps[0].shape[-1]
        rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS), depth,
                              conv_size=config.RPN_CONV_SIZE)
        per_level = [rpn(p) for p in feature_maps]
        names = ["rpn_class_logits", "rpn_class", "rpn_bbox"]
        return [keras.layers.Concatenate(axis=1, name=name)([lvl[i] for lvl in per_level])
                for i, name in enumerate(names)]

    def build_anchors(self, inputs):
        """Anchors [B, A, 4], normalised; a constant for fixed image shapes."""
        if "input_anchors" in inputs:
            return inputs["input_anchors"]
        return self._anchor_layer()(inputs["input_image"])

    def _anchor_layer(self):
        config = self.config
        return AnchorLayer(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                           config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE,
                           [int(v) for v in config.IMAGE_SHAPE[:2]],
                           feature_shapes=compute_backbone_shapes(
                               config, config.IMAGE_SHAPE).tolist(),
                           name="anchors")

    def build_roi_targets(self, inputs, rpn_rois):
        """Sample training ROIs and their targets (normalised boxes)."""
        config = self.config
        image = inputs["input_image"]
        gt_boxes = NormBoxes(name="norm_gt_boxes")([inputs["input_gt_boxes"], image])
        if not config.USE_RPN_ROIS:
            rpn_rois = NormBoxes(name="norm_input_rois")([inputs["input_rois"], image])
        return DetectionTargetLayer(
            config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO, config.BBOX_STD_DEV,
            list(config.MASK_SHAPE), config.USE_MINI_MASK, name="proposal_targets",
        )([rpn_rois, inputs["input_gt_class_ids"], gt_boxes, inputs["input_gt_masks"]])

    @property
    def class_agnostic_heads(self):
        """Whether box and mask heads predict one output shared by all classes."""
        return False

    @property
    def has_mask_head(self):
        return True

    def build_classifier_head(self, rois, feature_maps, image_meta):
        """-> (class logits [B,R,K], class probs [B,R,K], box deltas [B,R,K,4])."""
        config = self.config
        pooled = PyramidROIAlign([config.POOL_SIZE, config.POOL_SIZE],
                                 name="roi_align_classifier")([rois, image_meta] + feature_maps)
        return fpn_classifier_graph(pooled, config.NUM_CLASSES, train_bn=config.TRAIN_BN,
                                    fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
                                    class_agnostic_bbox=self.class_agnostic_heads)

    def build_mask_head(self, rois, feature_maps, image_meta):
        """-> masks [B, R, MASK_SHAPE[0], MASK_SHAPE[1], K] (sigmoid)."""
        config = self.config
        pooled = PyramidROIAlign([config.MASK_POOL_SIZE, config.MASK_POOL_SIZE],
                                 name="roi_align_mask")([rois, image_meta] + feature_maps)
        return build_fpn_mask_graph(pooled, config.NUM_CLASSES, train_bn=config.TRAIN_BN,
                                    class_agnostic=self.class_agnostic_heads,
                                    conv_size=config.MASK_HEAD_CONV_SIZE)

    def build_training_model(self, inputs, rpn, feature_maps):
        meta = inputs["input_image_meta"]
        rois, target_class_ids, target_bbox, target_mask = self.build_roi_targets(
            inputs, rpn["rpn_rois"])
        class_logits, _, bbox = self.build_classifier_head(rois, feature_maps, meta)
        outputs = dict(rpn, rois=rois, target_class_ids=target_class_ids,
                       target_bbox=target_bbox, mrcnn_class_logits=class_logits,
                       mrcnn_bbox=bbox)
        if self.has_mask_head:
            outputs["target_mask"] = target_mask
            outputs["mrcnn_mask"] = self.build_mask_head(rois, feature_maps, meta)
        model = LossModel(inputs=inputs, outputs=outputs, name="mask_rcnn")
        model.configure_losses(self.compute_losses, self.config.LOSS_WEIGHTS,
                               self.config.WEIGHT_DECAY, self.config.GRADIENT_CLIP_NORM)
        return model

    def build_inference_model(self, inputs, rpn, feature_maps):
        config = self.config
        meta = inputs["input_image_meta"]
        _, class_probs, bbox = self.build_classifier_head(rpn["rpn_rois"], feature_maps, meta)
        detections = DetectionLayer(config.BBOX_STD_DEV, config.DETECTION_MIN_CONFIDENCE,
                                    config.DETECTION_MAX_INSTANCES,
                                    config.DETECTION_NMS_THRESHOLD, name="mrcnn_detection",
                                    )([rpn["rpn_rois"], class_probs, bbox, meta])
        outputs = {"detections": detections, "mrcnn_class": class_probs, "mrcnn_bbox": bbox,
                   "rpn_rois": rpn["rpn_rois"], "rpn_class": rpn["rpn_class"],
                   "rpn_bbox": rpn["rpn_bbox"]}
        if self.has_mask_head:
            outputs["mrcnn_mask"] = self.build_mask_head(detections[..., :4], feature_maps, meta)
        return keras.Model(inputs=inputs, outputs=outputs, name="mask_rcnn")

    # ================================================================ losses
    def active_class_ids(self, inputs):
        """[B, K] classes of each image's source, used to mask the classifier loss."""
        return parse_image_meta(inputs["input_image_meta"])["active_class_ids"]

    def compute_losses(self, outputs, inputs):
        """The five named loss scalars from the training graph's outputs and inputs."""
        losses = {
            "rpn_class_loss": loss_fns.rpn_class_loss(inputs["input_rpn_match"],
                                                      outputs["rpn_class_logits"]),
            "rpn_bbox_loss": loss_fns.rpn_bbox_loss(inputs["input_rpn_bbox"],
                                                    inputs["input_rpn_match"],
                                                    outputs["rpn_bbox"]),
            "mrcnn_class_loss": loss_fns.mrcnn_class_loss(outputs["target_class_ids"],
                                                          outputs["mrcnn_class_logits"],
                                                          self.active_class_ids(inputs)),
            "mrcnn_bbox_loss": loss_fns.mrcnn_bbox_loss(outputs["target_bbox"],
                                                        outputs["target_class_ids"],
                                                        outputs["mrcnn_bbox"]),
        }
        if self.has_mask_head:
            losses["mrcnn_mask_loss"] = loss_fns.mrcnn_mask_loss(
                outputs["target_mask"], outputs["target_class_ids"], outputs["mrcnn_mask"])
        return losses

    # ================================================================ training
    def make_data_generator(self, dataset, shuffle=True, augmentation=None, seed=None,
                            steps=None):
        """The batch generator ``train`` feeds to ``fit``; overridden by extensions."""
        return DataGenerator(dataset, self.config, shuffle=shuffle,
                             augmentation=augmentation, seed=seed, steps=steps)

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers,
              augmentation=None, custom_callbacks=None, seed=None, verbose=1):
        """Train up to epoch ``epochs`` (a cumulative target, Matterport style).

        ``layers``: "heads", "3+", "4+", "5+", "all" or a regular expression over layer
        names. Starts at ``self.epoch`` (set by ``load_weights`` of a checkpoint of
        this run's naming, so a resumed run continues at the right epoch and writes
        into the same directory). Each call compiles a fresh optimizer (OPTIMIZER: SGD
        with momentum LEARNING_MOMENTUM, or Adam; the train step clips the global
        batch's gradient to GRADIENT_CLIP_NORM) and fresh loss trackers. Returns the Keras History
        (None when already at ``epochs``).

        Each epoch's losses are appended to ``history.csv`` in the run folder (every
        backend; also TensorBoard logs on TensorFlow). ``custom_callbacks`` run before
        the CSV logger and the checkpoint writer (after TensorBoard's), so keys they
        add to an epoch's logs are written to ``history.csv``, provided they are present
        from the first epoch (the CSV logger fixes its columns then).
        """
        if self.mode != "training":
            raise ValueError("train() needs a model built in mode='training'")
        config = self.config
        regex = resolve_layer_regex(layers)
        if self.epoch >= epochs:
            logger.warning("already at epoch %d >= epochs=%d: nothing to train",
                           self.epoch, epochs)
            return None
        train_gen = self.make_data_generator(train_dataset, shuffle=True,
                                             augmentation=augmentation, seed=seed,
                                             steps=config.STEPS_PER_EPOCH)
        if hasattr(train_gen, "set_epoch"):
            train_gen.set_epoch(self.epoch)
        val_gen = None
        if val_dataset is not None and config.VALIDATION_STEPS:
            val_seed = None if seed is None else seed + 1
            val_gen = self.make_data_generator(val_dataset, shuffle=True, seed=val_seed,
                                               steps=config.VALIDATION_STEPS)
        self._claim_log_dir()
        config.save(os.path.join(self.log_dir, RUN_CONFIG_FILE),
                    run={"backend": keras.backend.backend(), "keras": keras.__version__})
        self._write_run_record()
        # Callbacks that add to an epoch's logs (the caller's, e.g. one-shot AP, and the
        # skipped-sample count) run before the CSV logger writes the epoch's row; the
        # CSV logger fixes its columns at the first epoch.
        callbacks = list(custom_callbacks or []) + [
            SkippedSamplesLogger(train_gen),
            # Losses per epoch, appended across resumed runs, on every backend.
            keras.callbacks.CSVLogger(os.path.join(self.log_dir, "history.csv"), append=True),
            AtomicCheckpoint(self.checkpoint_path, self.keras_model),
        ]
        if keras.backend.backend() == "tensorflow":
            # Keras' TensorBoard writer needs tf.summary; other backends keep the CSV.
            callbacks.insert(0, keras.callbacks.TensorBoard(log_dir=self.log_dir,
                                                            write_graph=False))
        logger.info("training layers %r from epoch %d to %d at lr %g; checkpoints in %s",
                    layers, self.epoch, epochs, learning_rate, self.log_dir)
        with self.scope():
            set_trainable(self.keras_model, regex)
            optimizer = make_optimizer(config.OPTIMIZER, learning_rate,
                                       config.LEARNING_MOMENTUM, config.GRADIENT_CLIP_NORM)
            self.keras_model.compile(optimizer=optimizer, jit_compile=compiles_with_jit())
        # The generator already orders batches reproducibly from (seed, epoch); Keras'
        # own shuffle would reorder them with Python's global random state.
        history = self.keras_model.fit(train_gen, initial_epoch=self.epoch, epochs=epochs,
                                       validation_data=val_gen, callbacks=callbacks,
                                       verbose=verbose, shuffle=False)
        self.epoch = max(self.epoch, epochs)
        return history

    # ================================================================ files
    # A run folder: {name}{YYYYmmddTHHMM}, with _2, _3, ... when that name is taken.
    RUN_DIR_SUFFIX = r"\d{8}T\d{4}(?:_\d+)?"
    # Beside the checkpoints: what the run started from and what its caller recorded.
    RUN_RECORD_FILE = "run.json"
    # JSON-able dict a caller sets before train() to record it in run.json (the
    # siamese-mrcnn command records the dataset and the class split).
    run_info = None

    def set_log_dir(self, model_path=None):
        """Set ``log_dir``, ``checkpoint_path``, ``epoch`` and ``parent_checkpoint``.

        The run-folder rules (README, "Run folders, branching and resuming"):

        - Without ``model_path``: a new run, ``model_dir/{name}{YYYYmmddTHHMM}``,
          epoch 0. The folder is created when training starts; if a folder of that
          name exists already (another run started in the same minute), ``_2``,
          ``_3``, ... is appended. A new run never writes into an existing folder.
        - ``model_path`` the newest checkpoint of its run folder (what
          :meth:`find_last` returns for the newest run): continue that run in place,
          after the checkpoint's epoch.
        - ``model_path`` an earlier checkpoint of a run (later epochs exist beside
          it): a branch. A new run folder as above, starting after the checkpoint's
          epoch; its ``run.json`` records the checkpoint as ``parent_checkpoint``.
          The parent run's files are never written.
        - Any other weight file: a new run from epoch 0 recording the file as
          ``parent_checkpoint``.
        """
        self.epoch = 0
        self.parent_checkpoint = None
        self._log_dir_owned = False  # True once this model may write into log_dir
        name = self.config.NAME.lower()
        self.log_dir = os.path.join(self.model_dir,
                                    f"{name}{datetime.datetime.now():%Y%m%dT%H%M}")
        if model_path:
            path = os.path.abspath(model_path)
            self.parent_checkpoint = path
            epoch, later = self.checkpoint_position(path)
            if epoch is not None:
                self.epoch = epoch
                if not later:
                    # The run's newest checkpoint: resume the run in its folder.
                    self.log_dir = os.path.dirname(path)
                    self.parent_checkpoint = None
                    self._log_dir_owned = True
        self.checkpoint_path = os.path.join(
            self.log_dir, self.CHECKPOINT_TEMPLATE.replace("{epoch:04d}", "{{epoch:04d}}")
            .format(name=name))

    def checkpoint_position(self, path):
        """(epoch, later epochs) of a checkpoint of this class's naming inside a run
        folder (any location): the epoch it finished and the sorted epochs of the
        run's checkpoints after it. (None, []) for any other file."""
        name = self.config.NAME.lower()
        stem = re.escape(self.CHECKPOINT_TEMPLATE.split("{epoch")[0].format(name=name))
        path = os.path.abspath(path)
        m = re.match(r".*[/\\][\w.-]*?" + self.RUN_DIR_SUFFIX + r"[/\\]" + stem
                     + r"(\d{4})\.h5$", path)
        if not m:
            return None, []
        epoch = int(m.group(1))
        run_dir = os.path.dirname(path)
        epochs = sorted(int(e.group(1)) for e in (
            re.fullmatch(stem + r"(\d{4})\.h5", f) for f in os.listdir(run_dir)) if e)
        return epoch, [e for e in epochs if e > epoch]

    def _claim_log_dir(self):
        """Create this run's folder before anything is written; when another run
        holds the name, take the next free ``_N`` suffix (``os.mkdir`` is atomic, so
        two runs started together cannot both get one name)."""
        if self._log_dir_owned:
            checkpoint_dir_ok(self.log_dir)
            return
        os.makedirs(self.model_dir, exist_ok=True)
        base, attempt = self.log_dir, 1
        while True:
            candidate = base if attempt == 1 else f"{base}_{attempt}"
            try:
                os.mkdir(candidate)
                break
            except FileExistsError:
                attempt += 1
        if candidate != base:
            logger.info("run folder %s exists (another run); this run writes to %s",
                        base, candidate)
            if self.checkpoint_path.startswith(base + os.sep):
                self.checkpoint_path = candidate + self.checkpoint_path[len(base):]
        self.log_dir = candidate
        self._log_dir_owned = True
        checkpoint_dir_ok(self.log_dir)

    def _write_run_record(self):
        """Write ``run.json`` beside the checkpoints: ``parent_checkpoint`` and
        ``parent_epoch`` when the run started from a weight file, plus
        ``self.run_info`` (what the caller records: dataset, split, ...). A resumed
        run keeps the keys its first session wrote and adds new ones."""
        path = os.path.join(self.log_dir, self.RUN_RECORD_FILE)
        record = {}
        if os.path.isfile(path):
            with contextlib.suppress(OSError, ValueError):
                with open(path, encoding="utf-8") as f:
                    record = dict(json.load(f))
        new = dict(getattr(self, "run_info", None) or {})
        if self.parent_checkpoint and "parent_checkpoint" not in record:
            new["parent_checkpoint"] = self.parent_checkpoint
            new["parent_epoch"] = self.epoch
        record = {**new, **record} if record else new
        write_json(path, record)

    def find_last(self):
        """Path of the last checkpoint of the newest run of this config's NAME.

        Runs are ordered by their folder's timestamp, then by the ``_N`` suffix a
        run started in the same minute as another gets.
        """
        name = self.config.NAME.lower()
        if not os.path.isdir(self.model_dir):
            raise FileNotFoundError(f"model directory does not exist: {self.model_dir}")
        pattern = re.escape(name) + r"(\d{8}T\d{4})(?:_(\d+))?"
        runs = []
        for d in os.listdir(self.model_dir):
            m = re.fullmatch(pattern, d)
            if m and os.path.isdir(os.path.join(self.model_dir, d)):
                runs.append((m.group(1), int(m.group(2) or 1), d))
        prefix = self.CHECKPOINT_TEMPLATE.split("{epoch")[0].format(name=name)
        for *_, run in sorted(runs, reverse=True):
            run_dir = os.path.join(self.model_dir, run)
            checkpoints = sorted(f for f in os.listdir(run_dir)
                                 if re.fullmatch(re.escape(prefix) + r"\d{4}\.h5", f))
            if checkpoints:
                return os.path.join(run_dir, checkpoints[-1])
        raise FileNotFoundError(f"could not find a checkpoint of '{name}' under "
                                f"{self.model_dir} (looked for {prefix}NNNN.h5)")

    def load_weights(self, filepath, by_name=False, exclude=None):
        """Load a legacy HDF5 weight file (ours, Matterport's or the original project's).

        With ``by_name`` layers are matched by (top-level) name; ``exclude`` lists layer
        names to leave untouched. Loading one of this run-layout's checkpoints sets the
        log directory and epoch so ``train`` resumes. Returns the loader's report.
        """
        report = weights_io.load_weights(self.keras_model, filepath, by_name=by_name,
                                         exclude=exclude)
        self.set_log_dir(filepath)
        return report

    def save_weights(self, filepath):
        """Write all weights to ``filepath`` (legacy HDF5 layout, atomically)."""
        weights_io.save_weights(self.keras_model, filepath)

    # ================================================================ inference
    def get_anchors(self, image_shape):
        """Anchors [A, 4] for a molded image of ``image_shape``, normalised coordinates."""
        key = tuple(int(v) for v in image_shape[:2])
        if key not in self._anchor_cache:
            backbone_shapes = compute_backbone_shapes(self.config, key)
            anchors = utils.generate_pyramid_anchors(
                self.config.RPN_ANCHOR_SCALES, self.config.RPN_ANCHOR_RATIOS,
                backbone_shapes, self.config.BACKBONE_STRIDES, self.config.RPN_ANCHOR_STRIDE)
            self._anchor_cache[key] = utils.norm_boxes(anchors, key).astype(np.float32)
        return self._anchor_cache[key]

    def mold_inputs(self, images):
        """Resize, pad and mean-subtract images (resampled by ``config.RESAMPLING``).

        Returns (molded [B, H, W, 3] float32, image_metas [B, 12+K], windows [B, 4]
        pixel boxes of the image inside the molded frame).
        """
        config = self.config
        molded, metas, windows = [], [], []
        for image in images:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[-1] != config.IMAGE_CHANNEL_COUNT:
                raise ValueError(f"images must be [H, W, {config.IMAGE_CHANNEL_COUNT}], "
                                 f"got shape {image.shape}")
            resized, window, scale, _, _ = utils.resize_image(
                image, min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
                max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE,
                resampling=utils.config_resampling(config))
            molded.append(mold_image(resized, config))
            windows.append(window)
            metas.append(compose_image_meta(0, image.shape, resized.shape, window, scale,
                                            np.zeros([config.NUM_CLASSES], np.int32)))
        shapes = {m.shape for m in molded}
        if len(shapes) > 1:
            raise ValueError(f"images mold to different shapes {sorted(shapes)}; detect them "
                             "in separate calls or use IMAGE_RESIZE_MODE='square'")
        return (np.stack(molded).astype(np.float32), np.stack(metas).astype(np.float32),
                np.stack(windows))

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape,
                          window):
        """Turn one image's detections into original-image pixels.

        Args:
            detections: [D, 6] (y1, x1, y2, x2, class_id, score), normalised, zero padded.
            mrcnn_mask: [D, h, w, K] mask probabilities (or None without a mask head).
            original_image_shape: [H, W, C] before resizing; image_shape: molded shape.
            window: [4] pixel box of the real image inside the molded image.
        Returns: boxes int32 [N, 4] pixel, class_ids int32 [N], scores float32 [N],
            masks bool [H, W, N] (each mask pasted into its box by
            ``config.RESAMPLING``'s rule, see :func:`mrcnn.utils.unmold_mask`).
        """
        class_ids_all = detections[:, 4].astype(np.int32)
        keep = np.where(class_ids_all > 0)[0]
        boxes = detections[keep, :4]
        class_ids = class_ids_all[keep]
        scores = detections[keep, 5].astype(np.float32)
        wy1, wx1, wy2, wx2 = utils.norm_boxes(np.asarray(window, np.float32)[None],
                                              image_shape[:2])[0]
        shift = np.array([wy1, wx1, wy1, wx1])
        scale = np.array([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
        boxes = utils.denorm_boxes((boxes - shift) / scale, original_image_shape[:2])
        nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, class_ids, scores = boxes[nonempty], class_ids[nonempty], scores[nonempty]
        height, width = original_image_shape[:2]
        if mrcnn_mask is None or len(boxes) == 0:
            masks = np.zeros([height, width, len(boxes)], bool)
        else:
            rows = keep[nonempty]
            small = mrcnn_mask[rows, :, :, class_ids]
            resampling = utils.config_resampling(self.config)
            masks = np.stack([utils.unmold_mask(m, b, original_image_shape, resampling)
                              for m, b in zip(small, boxes)], axis=-1)
        return boxes.astype(np.int32), class_ids, scores, masks

    def run_graph_on_batch(self, inputs):
        """Run the inference model on a dict of numpy inputs; a dict of numpy outputs.

        Goes through Keras' own compiled predict step on every backend (a
        ``tf.function`` on TensorFlow, ``jax.jit`` on JAX, eager PyTorch), compiled
        once per input shape.
        """
        return run_compiled(self.keras_model, inputs)

    def anchors_input(self, molded_shape, batch):
        """``{"input_anchors": [batch, A, 4]}`` for molded images of ``molded_shape``
        (H, W[, C]) when the molded shape varies (IMAGE_RESIZE_MODE none / pad64),
        else ``{}``: the anchors are then a constant of the graph."""
        if self.static_image_shape:
            return {}
        anchors = self.get_anchors(molded_shape[:2])
        return {"input_anchors": np.broadcast_to(anchors, (batch,) + anchors.shape).copy()}

    def detect_molded(self, molded_images, image_metas, verbose=0, extra_inputs=None):
        """Detect on already molded images, unmolded to each meta's original image.

        Args:
            molded_images: [B, H, W, C] float32 from :meth:`mold_inputs`.
            image_metas: [B, 12 + K] their metas.
            extra_inputs: optional dict of further model inputs, passed to the graph
                as they are (e.g. the Siamese model's ``input_reference_images``).

        Returns one Matterport dict per image (see :meth:`detect`).
        """
        if self.mode != "inference":
            raise ValueError("detect needs a model built in mode='inference'")
        inputs = {"input_image": np.asarray(molded_images, np.float32),
                  "input_image_meta": np.asarray(image_metas, np.float32)}
        inputs.update(self.anchors_input(inputs["input_image"].shape[1:3],
                                         len(inputs["input_image"])))
        inputs.update(extra_inputs or {})
        return self.unmold_outputs(self.run_graph_on_batch(inputs), inputs["input_image_meta"])

    def unmold_outputs(self, outputs, image_metas):
        """Inference outputs of a batch (``detections`` [B, D, 6] and, with a mask head,
        ``mrcnn_mask`` [B, D, h, w, K]) -> one Matterport dict per image, in the
        original image's pixels. The metas [B, 12 + K] (read with
        :func:`mrcnn.data.parse_image_meta`) give each image's shapes and window."""
        meta = parse_meta_numpy(np.asarray(image_metas))
        results = []
        for i in range(len(meta["image_id"])):
            masks = outputs["mrcnn_mask"][i] if "mrcnn_mask" in outputs else None
            rois, class_ids, scores, full_masks = self.unmold_detections(
                outputs["detections"][i], masks, meta["original_image_shape"][i].astype(int),
                meta["image_shape"][i].astype(int), meta["window"][i])
            results.append({"rois": rois, "class_ids": class_ids, "scores": scores,
                            "masks": full_masks})
        return results

    def detect(self, images, verbose=0):
        """Detect instances in a list of RGB images (any number; run BATCH_SIZE at a time).

        Returns one dict per image: rois int32 [N, 4] (y1, x1, y2, x2) pixel boxes in
        the original image, class_ids int32 [N], scores float32 [N], masks bool
        [H, W, N].
        """
        if self.mode != "inference":
            raise ValueError("detect needs a model built in mode='inference'")
        if len(images) == 0:
            return []
        results = []
        batch = self.config.BATCH_SIZE
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            molded, metas, _ = self.mold_inputs(chunk)
            if verbose:
                logger.info("detecting %d image(s), molded shape %s", len(chunk),
                            molded.shape[1:])
            results.extend(self.detect_molded(molded, metas))
        return results
