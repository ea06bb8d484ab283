"""Final detections from classifier outputs (TensorFlow, inference).

Shape shorthand: ``B`` batch, ``R`` ROIs per image, ``K`` classes including
background, ``D`` detections per image. Boxes are normalised (y1, x1, y2, x2).
"""

import tensorflow as tf

from mrcnn.ops.boxes import apply_box_deltas, clip_boxes


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
    rois = tf.cast(rois, tf.float32)
    probs = tf.cast(probs, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    window = tf.cast(window, tf.float32)
    max_instances = int(max_instances)
    num_classes = probs.shape[-1]
    batch = tf.shape(rois)[0]
    if num_classes is not None and num_classes < 2:
        # Only background: nothing can be detected.
        return tf.zeros(tf.stack([batch, max_instances, 6]), tf.float32)

    class_ids = tf.argmax(probs, axis=-1, output_type=tf.int32)  # [B, R]
    scores = tf.gather(probs, class_ids, batch_dims=2)
    class_deltas = tf.gather(deltas, class_ids, batch_dims=2)  # [B, R, 4]
    boxes = apply_box_deltas(rois, class_deltas * tf.constant(bbox_std_dev, tf.float32))
    if window.shape.rank == 1:
        window = window[None]
    boxes = clip_boxes(boxes, window[:, None, :])

    # All-zero rows are padding, not ROIs; they never become detections.
    is_roi = tf.reduce_any(tf.not_equal(rois, 0.0), axis=-1)
    keep = is_roi & (class_ids > 0) & (scores >= min_confidence)
    # Score of each ROI under its own class only (columns = classes 1..K-1); -1 hides
    # dropped ROIs and other classes from the NMS. Kept scores are >= 1/K > 0, so a
    # strict threshold of 0 removes exactly the hidden entries.
    foreground = tf.one_hot(class_ids - 1, tf.shape(probs)[-1] - 1, on_value=True,
                            off_value=False)  # class 0 -> all False
    class_scores = tf.where(foreground & keep[..., None], scores[..., None], -1.0)
    result = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], class_scores,
        max_output_size_per_class=max_instances, max_total_size=max_instances,
        iou_threshold=nms_threshold, score_threshold=0.0,
        pad_per_class=False, clip_boxes=False)
    valid = tf.range(max_instances)[None, :] < tf.cast(result.valid_detections, tf.int32)[:, None]
    detections = tf.concat([result.nmsed_boxes,
                            (result.nmsed_classes + 1.0)[..., None],
                            result.nmsed_scores[..., None]], axis=-1)
    detections = tf.where(valid[..., None], detections, 0.0)
    detections.set_shape([rois.shape[0], max_instances, 6])
    return detections
