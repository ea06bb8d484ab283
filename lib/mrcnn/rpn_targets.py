"""RPN training targets for one image (numpy).

Shape shorthand: ``A`` anchors over all pyramid levels, ``N`` ground-truth instances
of the image (crowds included), ``R`` = ``RPN_TRAIN_ANCHORS_PER_IMAGE``.

All boxes here are **pixel** boxes ``(y1, x1, y2, x2)`` in the molded image, y2/x2
exclusive. Public names are re-exported by :mod:`mrcnn.data`.
"""

import numpy as np

from mrcnn import utils

# Anchors are compared with ground truth in blocks of this many rows so that the
# temporaries of the IoU stay small (the [A, N] result itself is float32).
_IOU_BLOCK_ROWS = 16384

# IoU thresholds of the RPN matcher (Matterport / the paper).
NEGATIVE_IOU = 0.3
POSITIVE_IOU = 0.7
# An anchor whose IoU with any crowd box exceeds this is never a negative.
CROWD_IOU = 0.001


def pairwise_iou(boxes1, boxes2):
    """IoU of every pair, float32 [M1, M2].

    Args:
        boxes1: [M1, 4] pixel boxes (y1, x1, y2, x2).
        boxes2: [M2, 4] pixel boxes.

    Areas are (y2 - y1) * (x2 - x1), Matterport's ``compute_overlaps`` convention.
    Computed block-wise over ``boxes1`` in float32 so that 261,888 anchors against
    100 boxes need ~100 MB for the result and little more.
    """
    boxes1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    out = np.zeros((len(boxes1), len(boxes2)), dtype=np.float32)
    if len(boxes1) == 0 or len(boxes2) == 0:
        return out
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    for start in range(0, len(boxes1), _IOU_BLOCK_ROWS):
        b1 = boxes1[start:start + _IOU_BLOCK_ROWS]
        area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
        # [block, 1] against [1, M2]; in place, since this runs on every anchor.
        inter = np.minimum(b1[:, None, 2], boxes2[None, :, 2])
        inter -= np.maximum(b1[:, None, 0], boxes2[None, :, 0])
        np.maximum(inter, 0.0, out=inter)
        width = np.minimum(b1[:, None, 3], boxes2[None, :, 3])
        width -= np.maximum(b1[:, None, 1], boxes2[None, :, 1])
        np.maximum(width, 0.0, out=width)
        inter *= width
        union = np.add(area1[:, None], area2[None, :], out=width)
        union -= inter
        # union is 0 only when both boxes are empty, and then inter is 0 too.
        np.maximum(union, np.finfo(np.float32).tiny, out=union)
        np.divide(inter, union, out=out[start:start + len(b1)])
    return out


def build_rpn_targets(anchors, gt_class_ids, gt_boxes, config, rng=None):
    """Label anchors and encode the deltas the RPN must learn, for one image.

    Args:
        anchors: [A, 4] pixel anchors of the molded image.
        gt_class_ids: int [N]; a negative id marks a crowd region (never a target;
            anchors overlapping it are not used as negatives).
        gt_boxes: [N, 4] pixel ground-truth boxes.
        config: uses ``RPN_TRAIN_ANCHORS_PER_IMAGE`` (R) and ``RPN_BBOX_STD_DEV``.
        rng: ``np.random.Generator`` for subsampling (a fresh one if None).

    Returns:
        rpn_match: int32 [A]; 1 positive, -1 negative, 0 neutral (not trained on).
            An anchor is negative if its best IoU with the non-crowd ground truth is
            < 0.3 and its IoU with every crowd box is <= 0.001; positive if that IoU
            is >= 0.7 or it is (one of) the anchors of highest IoU for some GT box
            (ties all count; a GT overlapping no anchor at all gives none). Then
            positives are randomly cut to R // 2 and negatives to R - positives.
        rpn_bbox: float32 [R, 4]; row i holds the (dy, dx, log(dh), log(dw)) deltas,
            divided by RPN_BBOX_STD_DEV, from the i-th positive anchor (ascending
            anchor index) to its best-IoU GT box; remaining rows are zero.
    """
    rng = np.random.default_rng() if rng is None else rng
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 4)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    if len(gt_class_ids) != len(gt_boxes):
        raise ValueError(f"build_rpn_targets: {len(gt_class_ids)} gt_class_ids but "
                         f"{len(gt_boxes)} gt_boxes")
    per_image = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    num_anchors = len(anchors)
    rpn_match = np.zeros(num_anchors, dtype=np.int32)
    rpn_bbox = np.zeros((per_image, 4), dtype=np.float32)

    crowd = gt_class_ids < 0
    if crowd.any():
        crowd_iou = pairwise_iou(anchors, gt_boxes[crowd]).max(axis=1)
        may_be_negative = crowd_iou <= CROWD_IOU
    else:
        may_be_negative = np.ones(num_anchors, dtype=bool)
    gt_boxes = gt_boxes[~crowd]

    if len(gt_boxes) == 0:
        rpn_match[may_be_negative] = -1
    else:
        overlaps = pairwise_iou(anchors, gt_boxes)            # [A, N']
        best_gt = overlaps.argmax(axis=1)                      # [A]
        best_iou = overlaps[np.arange(num_anchors), best_gt]   # [A]
        # Order matters: the GT-best and >= 0.7 rules override the negative label.
        rpn_match[(best_iou < NEGATIVE_IOU) & may_be_negative] = -1
        column_max = overlaps.max(axis=0)                      # [N']
        # A GT that overlaps no anchor has column max 0; every anchor would "tie"
        # for it, so it contributes no forced positive.
        is_column_best = (overlaps == column_max[None, :]) & (column_max[None, :] > 0)
        rpn_match[is_column_best.any(axis=1)] = 1
        rpn_match[best_iou >= POSITIVE_IOU] = 1

    positives = np.flatnonzero(rpn_match == 1)
    excess = len(positives) - per_image // 2
    if excess > 0:
        rpn_match[rng.choice(positives, excess, replace=False)] = 0
        positives = np.flatnonzero(rpn_match == 1)
    negatives = np.flatnonzero(rpn_match == -1)
    excess = len(negatives) - (per_image - len(positives))
    if excess > 0:
        rpn_match[rng.choice(negatives, excess, replace=False)] = 0

    if len(positives):
        deltas = utils.box_refinement(anchors[positives], gt_boxes[best_gt[positives]])
        std = np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
        rpn_bbox[:len(positives)] = np.asarray(deltas, dtype=np.float32) / std
    return rpn_match, rpn_bbox
