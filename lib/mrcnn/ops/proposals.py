"""RPN proposals: best-scoring anchors, refined, clipped and suppressed (keras.ops).

Shape shorthand: ``B`` batch, ``A`` anchors over all pyramid levels, ``N`` proposals
per image (``proposal_count``). All boxes are normalised (y1, x1, y2, x2).
"""

from keras import ops

from mrcnn.ops import native
from mrcnn.ops.boxes import apply_box_deltas, clip_boxes


def batched_nms(boxes, scores, max_output_size, iou_threshold):
    """Greedy non-max suppression, independently per image, zero padded.

    Matches a per-image greedy NMS that visits boxes by descending score and drops a
    box whose IoU (``ops.boxes.box_overlaps`` convention, no +1) with a kept box is
    strictly greater than ``iou_threshold``; no score threshold. One implementation
    per backend: :func:`mrcnn.ops.native.batched_nms`.

    Args:
        boxes: float [B, M, 4].
        scores: float [B, M].
        max_output_size: int, boxes kept per image at most.
        iou_threshold: float.

    Returns:
        (boxes float32 [B, max_output_size, 4], scores float32 [B, max_output_size],
        valid int32 [B]): kept boxes by descending score, zero rows after ``valid``.
    """
    out_boxes, out_scores, _, valid = native.batched_nms(boxes, scores, max_output_size,
                                                         iou_threshold)
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
    rpn_probs = ops.cast(rpn_probs, "float32")
    rpn_deltas = ops.cast(rpn_deltas, "float32")
    anchors = ops.cast(anchors, "float32")
    if len(anchors.shape) == 2:
        anchors = ops.broadcast_to(anchors[None], ops.shape(rpn_deltas))
    elif len(anchors.shape) != 3:
        raise ValueError(f"generate_proposals: anchors must be [A, 4] or [B, A, 4], "
                         f"got shape {anchors.shape}")
    std = ops.reshape(ops.convert_to_tensor(rpn_bbox_std_dev, dtype="float32"), (1, 1, 4))

    scores = rpn_probs[:, :, 1]
    num_anchors = scores.shape[1]
    if num_anchors is None:
        # A symbolic anchor count (TensorFlow graph of a dynamic image size): a tensor
        # k. Backends that trace with concrete shapes need a Python int.
        k = ops.minimum(int(pre_nms_limit), ops.shape(scores)[1])
    else:
        k = min(int(pre_nms_limit), int(num_anchors))
    top_scores, top_ix = ops.top_k(scores, k=k, sorted=True)
    deltas = ops.take_along_axis(rpn_deltas, top_ix[..., None], axis=1) * std
    top_anchors = ops.take_along_axis(anchors, top_ix[..., None], axis=1)

    boxes = apply_box_deltas(top_anchors, deltas)
    boxes = clip_boxes(boxes, ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], dtype="float32"))
    proposals, _, _ = batched_nms(boxes, top_scores, int(proposal_count), float(nms_threshold))
    return proposals
