"""The five Mask R-CNN losses as free functions (keras.ops, any backend).

Shape shorthand: ``B`` batch, ``A`` anchors, ``M`` RPN box-target rows per image,
``T`` training ROIs per image, ``K`` classes including background, ``h, w`` mask size.

Every loss returns a float32 scalar, computed in float32 whatever the input dtype, and
is exactly 0 (not NaN) when nothing contributes to it (no anchors, no positives).
Means are taken over the contributing elements of the whole batch, as Matterport does.
"""

from keras import ops

# Probabilities are clipped by this before the log of the mask cross-entropy.
EPSILON = 1e-7


def smooth_l1(y_true, y_pred):
    """Elementwise smooth L1: 0.5 x^2 if |x| < 1 else |x| - 0.5, with x = y_true - y_pred."""
    diff = ops.abs(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32"))
    return ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5)


def _masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is true; 0 where nothing is."""
    mask = ops.cast(mask, "float32")
    total = ops.sum(ops.where(mask > 0, values, 0.0))
    return ops.divide_no_nan(total, ops.sum(mask))


def _sparse_softmax_cross_entropy(labels, logits):
    """-log softmax(logits)[label] per row; labels int [...], logits float [..., K]."""
    log_probs = ops.log_softmax(logits, axis=-1)
    return -ops.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def rpn_class_loss(rpn_match, rpn_class_logits):
    """RPN foreground/background loss.

    Args:
        rpn_match: int [B, A, 1]: 1 positive, -1 negative, 0 neutral anchor.
        rpn_class_logits: float [B, A, 2] (background, foreground) logits.

    Returns:
        Mean sparse softmax cross-entropy over non-neutral anchors; 0 if there are none.
    """
    rpn_match = ops.squeeze(ops.cast(rpn_match, "int32"), axis=-1)
    logits = ops.cast(rpn_class_logits, "float32")
    labels = ops.cast(ops.equal(rpn_match, 1), "int32")
    loss = _sparse_softmax_cross_entropy(labels, logits)
    return _masked_mean(loss, ops.not_equal(rpn_match, 0))


def rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox):
    """RPN box regression loss.

    The i-th positive anchor of an image (in anchor order) pairs with row i of that
    image's ``target_bbox``; positives beyond M rows are ignored.

    Args:
        target_bbox: float [B, M, 4] deltas / RPN std dev of the positive anchors, zero
            padded.
        rpn_match: int [B, A, 1].
        rpn_bbox: float [B, A, 4] predicted deltas.

    Returns:
        Mean smooth L1 over the 4 coordinates of all positive anchors (Matterport's
        mean over elements); 0 with no positive anchor.
    """
    target_bbox = ops.cast(target_bbox, "float32")
    rpn_bbox = ops.cast(rpn_bbox, "float32")
    positive = ops.equal(ops.squeeze(ops.cast(rpn_match, "int32"), axis=-1), 1)  # [B, A]
    # Rank of each positive anchor among its image's positives = its target row.
    counts = ops.cast(positive, "int32")
    rank = ops.cumsum(counts, axis=1) - counts
    rows = ops.shape(target_bbox)[1]
    positive = positive & (rank < rows)
    # One extra zero row keeps the gather in range for anchors past the last row (and
    # for M = 0); those anchors are masked out.
    padded = ops.pad(target_bbox, [[0, 0], [0, 1], [0, 0]])
    target = ops.take_along_axis(padded, ops.minimum(rank, rows)[..., None], axis=1)
    loss = smooth_l1(target, rpn_bbox)  # [B, A, 4]
    return _masked_mean(loss, ops.broadcast_to(positive[..., None], ops.shape(loss)))


def mrcnn_class_loss(target_class_ids, pred_class_logits, active_class_ids=None):
    """Classifier loss.

    Args:
        target_class_ids: int [B, T], 0 for negatives and padding.
        pred_class_logits: float [B, T, K].
        active_class_ids: float/int [B, K], 1 for the classes of each image's dataset,
            or None. With it (Matterport), ROIs whose *predicted* class is not active
            in their image are left out. Without it (Siamese Mask R-CNN), a plain mean
            over all B * T ROIs, padding included.

    Returns:
        Mean softmax cross-entropy over the counted ROIs; 0 if none are counted.
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    logits = ops.cast(pred_class_logits, "float32")
    loss = _sparse_softmax_cross_entropy(target_class_ids, logits)
    if active_class_ids is None:
        return _masked_mean(loss, ops.ones_like(loss))
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    active = ops.take_along_axis(ops.cast(active_class_ids, "float32"), predicted, axis=1)
    return _masked_mean(loss, active > 0)


def mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox):
    """Box head loss on the true class's deltas of positive ROIs.

    Args:
        target_bbox: float [B, T, 4] deltas / std dev (0 for non-positives).
        target_class_ids: int [B, T]; > 0 marks positives.
        pred_bbox: float [B, T, K, 4].

    Returns:
        Mean smooth L1 over the 4 coordinates of all positive ROIs; 0 with none.
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    positive = target_class_ids > 0
    class_index = ops.maximum(target_class_ids, 0)
    pred = ops.take_along_axis(ops.cast(pred_bbox, "float32"), class_index[..., None, None],
                               axis=2)[:, :, 0]  # [B, T, 4]
    loss = smooth_l1(target_bbox, pred)
    return _masked_mean(loss, ops.broadcast_to(positive[..., None], ops.shape(loss)))


def mrcnn_mask_loss(target_masks, target_class_ids, pred_masks):
    """Mask head loss: binary cross-entropy on the true class's channel of positives.

    Args:
        target_masks: float [B, T, h, w] 0/1.
        target_class_ids: int [B, T]; > 0 marks positives.
        pred_masks: float [B, T, h, w, K] sigmoid probabilities (clipped to
            [1e-7, 1 - 1e-7] before the log).

    Returns:
        Mean binary cross-entropy over all pixels of positive ROIs; 0 with none.
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    target_masks = ops.cast(target_masks, "float32")
    positive = target_class_ids > 0
    class_index = ops.maximum(target_class_ids, 0)
    # The true class's channel: [B, T, h, w, K] -> [B, T, h, w]
    pred = ops.take_along_axis(ops.cast(pred_masks, "float32"),
                               class_index[:, :, None, None, None], axis=4)[..., 0]
    pred = ops.clip(pred, EPSILON, 1.0 - EPSILON)
    loss = -(target_masks * ops.log(pred) + (1.0 - target_masks) * ops.log(1.0 - pred))
    return _masked_mean(loss, ops.broadcast_to(positive[:, :, None, None], ops.shape(loss)))
