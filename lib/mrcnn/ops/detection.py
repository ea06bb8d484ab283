"""Final detections from classifier outputs (keras.ops, inference).

Shape shorthand: ``B`` batch, ``R`` ROIs per image, ``K`` classes including
background, ``D`` detections per image. Boxes are normalised (y1, x1, y2, x2).
"""

from keras import ops

from mrcnn.ops import native
from mrcnn.ops.boxes import apply_box_deltas, clip_boxes


def _argmax_last(x):
    """int32 index of the first maximum along the last (static) axis, like
    ``ops.argmax``. Written with comparisons because on TensorFlow ``ops.argmax``
    tests the sign bit of zeros with Bitcast and BitwiseAnd, which tf2onnx cannot
    convert, and this op is part of the exported serving graph
    (:mod:`siamese_mrcnn.export`)."""
    size = x.shape[-1]
    best = ops.max(x, axis=-1, keepdims=True)
    index = ops.arange(size, dtype="int32")
    return ops.min(ops.where(x == best, index, size), axis=-1)


def refine_detections(rois, probs, deltas, window, bbox_std_dev, min_confidence,
                      max_instances, nms_threshold):
    """Refine, filter and suppress classified ROIs into at most D detections per image.

    Per ROI: the argmax class and its probability; that class's deltas times
    ``bbox_std_dev`` applied to the ROI; the box clipped to ``window``. ROIs of class 0
    (background), with score < ``min_confidence`` or all-zero (padding) are dropped.
    Then NMS per class (IoU strictly above ``nms_threshold`` suppresses) and the top
    ``max_instances`` by score over all classes.

    Args:
        rois: float [B, R, 4] normalised, zero padded.
        probs: float [B, R, K] class probabilities (rows summing to 1).
        deltas: float [B, R, K, 4] class-specific (dy, dx, log dh, log dw) / std dev.
        window: float [B, 4] (or [4]) normalised window of the real image.
        bbox_std_dev: 4 floats.
        min_confidence: float.
        max_instances: int D.
        nms_threshold: float.

    Returns:
        float32 [B, D, 6] rows (y1, x1, y2, x2, class_id, score) by descending score,
        normalised, zero padded.
    """
    rois = ops.cast(rois, "float32")
    probs = ops.cast(probs, "float32")
    deltas = ops.cast(deltas, "float32")
    window = ops.cast(window, "float32")
    max_instances = int(max_instances)
    num_classes = probs.shape[-1]
    if num_classes is not None and num_classes < 2:
        # Only background: nothing can be detected.
        return ops.zeros((ops.shape(rois)[0], max_instances, 6), dtype="float32")

    class_ids = _argmax_last(probs)  # [B, R]
    scores = ops.take_along_axis(probs, class_ids[..., None], axis=-1)[..., 0]
    class_deltas = ops.take_along_axis(deltas, class_ids[..., None, None], axis=2)[:, :, 0]
    boxes = apply_box_deltas(rois, class_deltas * ops.convert_to_tensor(bbox_std_dev,
                                                                        dtype="float32"))
    if len(window.shape) == 1:
        window = window[None]
    boxes = clip_boxes(boxes, window[:, None, :])

    # All-zero rows are padding, not ROIs; they never become detections.
    is_roi = ops.any(ops.not_equal(rois, 0.0), axis=-1)
    keep = is_roi & (class_ids > 0) & (scores >= min_confidence)
    # NMS per class among the kept ROIs (classes 1..K-1 are NMS classes 0..K-2).
    out_boxes, out_scores, out_classes, count = native.batched_nms(
        boxes, scores, max_instances, nms_threshold, valid=keep,
        classes=ops.maximum(class_ids - 1, 0), num_classes=num_classes - 1)
    valid = ops.arange(max_instances, dtype="int32")[None, :] < count[:, None]
    detections = ops.concatenate([out_boxes,
                                  ops.cast(out_classes + 1, "float32")[..., None],
                                  out_scores[..., None]], axis=-1)
    return ops.where(valid[..., None], detections, 0.0)
