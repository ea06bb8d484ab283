"""RPN proposals: best-scoring anchors, refined, clipped and suppressed (TensorFlow).

Shape shorthand: ``B`` batch, ``A`` anchors over all pyramid levels, ``N`` proposals
per image (``proposal_count``). All boxes are normalised (y1, x1, y2, x2).
"""

import tensorflow as tf

from mrcnn.ops.boxes import apply_box_deltas, clip_boxes


def batched_nms(boxes, scores, max_output_size, iou_threshold):
    """Greedy non-max suppression, independently per image, zero padded.

    Matches a per-image greedy NMS that visits boxes by descending score and drops a
    box whose IoU (``ops.boxes.box_overlaps`` convention, no +1) with a kept box is
    strictly greater than ``iou_threshold``; no score threshold.

    Args:
        boxes: float [B, M, 4].
        scores: float [B, M].
        max_output_size: int, boxes kept per image at most.
        iou_threshold: float.

    Returns:
        (boxes float32 [B, max_output_size, 4], scores float32 [B, max_output_size],
        valid int32 [B]): kept boxes by descending score, zero rows after ``valid``.
    """
    boxes = tf.cast(boxes, tf.float32)
    scores = tf.cast(scores, tf.float32)
    # One class and one box per candidate (q = 1) turns the multi-class op into
    # plain batched NMS; clip_boxes=False keeps the coordinates untouched.
    result = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores[:, :, None],
        max_output_size_per_class=max_output_size, max_total_size=max_output_size,
        iou_threshold=iou_threshold, score_threshold=float("-inf"),
        pad_per_class=False, clip_boxes=False)
    valid = tf.cast(result.valid_detections, tf.int32)
    keep = tf.range(max_output_size)[None, :] < valid[:, None]
    out_boxes = tf.where(keep[..., None], result.nmsed_boxes, 0.0)
    out_scores = tf.where(keep, result.nmsed_scores, 0.0)
    return out_boxes, out_scores, valid


def generate_proposals(rpn_probs, rpn_deltas, anchors, proposal_count, nms_threshold,
                       pre_nms_limit, rpn_bbox_std_dev):
    """Turn RPN outputs into proposals.

    Per image: keep the ``pre_nms_limit`` anchors with the highest foreground score,
    apply their deltas (times ``rpn_bbox_std_dev``) to the normalised anchors, clip to
    [0, 1], run NMS at ``nms_threshold`` and zero-pad to ``proposal_count``.

    Args:
        rpn_probs: float [B, A, 2] (background, foreground) probabilities.
        rpn_deltas: float [B, A, 4] (dy, dx, log dh, log dw), divided by the std dev.
        anchors: float [A, 4] or [B, A, 4] normalised anchors.
        proposal_count: int N, proposals per image after NMS.
        nms_threshold: float IoU threshold of the NMS.
        pre_nms_limit: int, anchors kept before NMS.
        rpn_bbox_std_dev: 4 floats.

    Returns:
        float32 [B, N, 4] normalised proposals by descending score, zero padded.
    """
    rpn_probs = tf.cast(rpn_probs, tf.float32)
    rpn_deltas = tf.cast(rpn_deltas, tf.float32)
    anchors = tf.cast(anchors, tf.float32)
    if anchors.shape.rank == 2:
        anchors = tf.broadcast_to(anchors[None], tf.shape(rpn_deltas))
    elif anchors.shape.rank != 3:
        raise ValueError(f"generate_proposals: anchors must be [A, 4] or [B, A, 4], "
                         f"got shape {anchors.shape}")
    std = tf.reshape(tf.constant(rpn_bbox_std_dev, tf.float32), [1, 1, 4])

    scores = rpn_probs[:, :, 1]
    k = tf.minimum(int(pre_nms_limit), tf.shape(scores)[1])
    top_scores, top_ix = tf.math.top_k(scores, k=k, sorted=True)
    deltas = tf.gather(rpn_deltas, top_ix, batch_dims=1) * std
    top_anchors = tf.gather(anchors, top_ix, batch_dims=1)

    boxes = apply_box_deltas(top_anchors, deltas)
    boxes = clip_boxes(boxes, tf.constant([0.0, 0.0, 1.0, 1.0]))
    proposals, _, _ = batched_nms(boxes, top_scores, int(proposal_count), float(nms_threshold))
    return proposals
