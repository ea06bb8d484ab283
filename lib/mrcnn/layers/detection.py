"""Keras layers over the detection ops: anchors, proposals, ROI align, targets, detections.

Shape shorthand: ``B`` batch, ``A`` anchors, ``N`` proposals per image, ``R`` ROIs,
``G`` ground-truth slots, ``T`` training ROIs per image, ``K`` classes including
background, ``D`` detections, ``C`` channels. Boxes are normalised (y1, x1, y2, x2)
and zero padded unless stated.

Each layer takes explicit arguments (no Config), returns them from ``get_config`` and
declares its output shapes, so it works in a functional model and survives
``from_config(get_config())``. Layers default to the float32 dtype policy: NMS and
box math stay in float32 under a mixed-precision global policy.
"""

import keras
import numpy as np
from keras import ops

from mrcnn.ops.anchors import feature_shapes_for, pyramid_anchors_normalised
from mrcnn.ops.boxes import norm_boxes
from mrcnn.ops.detection import refine_detections
from mrcnn.ops.meta import parse_image_meta
from mrcnn.ops.proposals import generate_proposals
from mrcnn.ops.roi_align import pyramid_roi_align
from mrcnn.ops.targets import detection_targets


def _float32_default(kwargs):
    kwargs.setdefault("dtype", "float32")
    return kwargs


def _floats(values, name, count=None):
    values = [float(v) for v in np.asarray(values).reshape(-1)]
    if count is not None and len(values) != count:
        raise ValueError(f"{name} needs {count} values, got {values}")
    return values


@keras.saving.register_keras_serializable(package="mrcnn")
class AnchorLayer(keras.layers.Layer):
    """Anchors of the pyramid, tiled over the batch.

    Args:
        scales: anchor side lengths in pixels, one per pyramid level.
        ratios: width/height ratios.
        strides: feature strides in pixels, one per level.
        anchor_stride: anchors at every ``anchor_stride``-th feature cell.
        image_shape: (height, width[, C]) of the molded image in pixels.
        feature_shapes: optional [L, 2] feature map sizes; default
            ``ceil(image_side / stride)`` (a custom backbone may differ).

    Input: any tensor whose first dim is the batch (e.g. the image).
    Output: float32 [B, A, 4] normalised anchors (a constant computed once).
    """

    def __init__(self, scales, ratios, strides, anchor_stride, image_shape,
                 feature_shapes=None, **kwargs):
        super().__init__(**_float32_default(kwargs))
        self.scales = _floats(scales, "AnchorLayer scales")
        self.ratios = _floats(ratios, "AnchorLayer ratios")
        self.strides = [int(s) for s in strides]
        self.anchor_stride = int(anchor_stride)
        self.image_shape = [int(v) for v in image_shape]
        if feature_shapes is None:
            feature_shapes = feature_shapes_for(self.image_shape, self.strides)
        self.feature_shapes = [[int(h), int(w)] for h, w in feature_shapes]
        self.anchors = pyramid_anchors_normalised(
            self.scales, self.ratios, self.feature_shapes, self.strides, self.anchor_stride,
            self.image_shape)

    def call(self, inputs):
        anchors = ops.convert_to_tensor(self.anchors, dtype="float32")
        return ops.broadcast_to(anchors[None], (ops.shape(inputs)[0],) + self.anchors.shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.anchors.shape[0], 4)

    def get_config(self):
        config = super().get_config()
        config.update(scales=self.scales, ratios=self.ratios, strides=self.strides,
                      anchor_stride=self.anchor_stride, image_shape=self.image_shape,
                      feature_shapes=self.feature_shapes)
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class ProposalLayer(keras.layers.Layer):
    """RPN proposals (see ``ops.proposals.generate_proposals``).

    Inputs: [rpn_probs float [B, A, 2], rpn_bbox float [B, A, 4] (deltas / std dev),
    anchors float [B, A, 4] or [A, 4] normalised].
    Output: float32 [B, proposal_count, 4] normalised, zero padded.
    """

    def __init__(self, proposal_count, nms_threshold, pre_nms_limit, rpn_bbox_std_dev,
                 **kwargs):
        super().__init__(**_float32_default(kwargs))
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.rpn_bbox_std_dev = _floats(rpn_bbox_std_dev, "ProposalLayer rpn_bbox_std_dev", 4)

    def call(self, inputs):
        rpn_probs, rpn_bbox, anchors = inputs
        return generate_proposals(rpn_probs, rpn_bbox, anchors, self.proposal_count,
                                  self.nms_threshold, self.pre_nms_limit,
                                  self.rpn_bbox_std_dev)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)

    def get_config(self):
        config = super().get_config()
        config.update(proposal_count=self.proposal_count, nms_threshold=self.nms_threshold,
                      pre_nms_limit=self.pre_nms_limit, rpn_bbox_std_dev=self.rpn_bbox_std_dev)
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """ROI align on the pyramid level of each box (see ``ops.roi_align``).

    Args:
        pool_shape: int or (ph, pw).

    Inputs: [boxes float [B, R, 4] normalised, image_meta float [B, 12 + K],
    P2, P3, P4, P5 each [B, h_l, w_l, C]]. The image area for the level rule is the
    molded ``image_shape`` of the first image's meta (all images of a batch share it).
    Output: [B, R, ph, pw, C].
    """

    def __init__(self, pool_shape, **kwargs):
        super().__init__(**_float32_default(kwargs))
        if isinstance(pool_shape, (int, np.integer)):
            pool_shape = (pool_shape, pool_shape)
        self.pool_shape = [int(v) for v in pool_shape]
        if len(self.pool_shape) != 2:
            raise ValueError(f"PyramidROIAlign pool_shape must be an int or (height, width), "
                             f"got {pool_shape!r}")

    def call(self, inputs):
        boxes, image_meta = inputs[0], inputs[1]
        feature_maps = list(inputs[2:])
        image_shape = parse_image_meta(image_meta)["image_shape"][0, :2]
        return pyramid_roi_align(boxes, feature_maps, tuple(self.pool_shape), image_shape)

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1], *self.pool_shape, feature_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(pool_shape=self.pool_shape)
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionTargetLayer(keras.layers.Layer):
    """Training ROIs and their targets (see ``ops.targets.detection_targets``).

    Args:
        train_rois_per_image: T.
        roi_positive_ratio: fraction of positives among sampled ROIs.
        bbox_std_dev: 4 floats dividing the box targets.
        mask_shape: (mh, mw) of the mask targets.
        use_mini_mask: whether ``gt_masks`` are mini masks.
        seed: None (a random start), or an int making the sequence of samples
            reproducible: the layer draws every step's sample from a
            ``keras.random.SeedGenerator`` seeded with it.

    Inputs: [proposals float [B, N, 4], gt_class_ids int [B, G], gt_boxes float
    [B, G, 4] normalised, gt_masks bool [B, h, w, G]].
    Outputs: [rois float32 [B, T, 4], class_ids int32 [B, T], deltas float32 [B, T, 4],
    masks float32 [B, T, mh, mw]].
    """

    def __init__(self, train_rois_per_image, roi_positive_ratio, bbox_std_dev, mask_shape,
                 use_mini_mask, seed=None, **kwargs):
        super().__init__(**_float32_default(kwargs))
        self.train_rois_per_image = int(train_rois_per_image)
        self.roi_positive_ratio = float(roi_positive_ratio)
        self.bbox_std_dev = _floats(bbox_std_dev, "DetectionTargetLayer bbox_std_dev", 4)
        self.mask_shape = [int(v) for v in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)
        self.seed = None if seed is None else int(seed)
        # Its state is a layer variable, not a weight: checkpoints do not hold it.
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        return detection_targets(
            proposals, gt_class_ids, gt_boxes, gt_masks, self.train_rois_per_image,
            self.roi_positive_ratio, self.bbox_std_dev, self.mask_shape, self.use_mini_mask,
            seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        rois = self.train_rois_per_image
        return [(batch, rois, 4), (batch, rois), (batch, rois, 4),
                (batch, rois, *self.mask_shape)]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape([tuple(x.shape) for x in inputs])
        dtypes = ["float32", "int32", "float32", "float32"]
        return [keras.KerasTensor(s, dtype=d) for s, d in zip(shapes, dtypes)]

    def get_config(self):
        config = super().get_config()
        config.update(train_rois_per_image=self.train_rois_per_image,
                      roi_positive_ratio=self.roi_positive_ratio,
                      bbox_std_dev=self.bbox_std_dev, mask_shape=self.mask_shape,
                      use_mini_mask=self.use_mini_mask, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class DetectionLayer(keras.layers.Layer):
    """Final detections (see ``ops.detection.refine_detections``).

    Args:
        bbox_std_dev: 4 floats multiplying the predicted deltas.
        min_confidence: drop detections scoring below this.
        max_instances: D.
        nms_threshold: per-class NMS IoU threshold.

    Inputs: [rois float [B, R, 4], mrcnn_class float [B, R, K] probabilities,
    mrcnn_bbox float [B, R, K, 4], image_meta float [B, 12 + K]]. The clip window is
    each image's meta window normalised by its molded image shape.
    Output: float32 [B, D, 6] rows (y1, x1, y2, x2, class_id, score), normalised,
    zero padded.
    """

    def __init__(self, bbox_std_dev, min_confidence, max_instances, nms_threshold, **kwargs):
        super().__init__(**_float32_default(kwargs))
        self.bbox_std_dev = _floats(bbox_std_dev, "DetectionLayer bbox_std_dev", 4)
        self.min_confidence = float(min_confidence)
        self.max_instances = int(max_instances)
        self.nms_threshold = float(nms_threshold)

    def call(self, inputs):
        rois, mrcnn_class, mrcnn_bbox, image_meta = inputs
        meta = parse_image_meta(image_meta)
        window = norm_boxes(meta["window"], meta["image_shape"][:, :2])
        return refine_detections(rois, mrcnn_class, mrcnn_bbox, window, self.bbox_std_dev,
                                 self.min_confidence, self.max_instances, self.nms_threshold)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.max_instances, 6)

    def get_config(self):
        config = super().get_config()
        config.update(bbox_std_dev=self.bbox_std_dev, min_confidence=self.min_confidence,
                      max_instances=self.max_instances, nms_threshold=self.nms_threshold)
        return config
