"""Numpy helpers of Mask R-CNN with Matterport's names and conventions, and ``Dataset``.

Shape shorthand: ``N``, ``N1``, ``N2`` boxes, ``A`` anchors over all pyramid levels,
``L`` pyramid levels, ``G`` ground-truth instances, ``P`` predictions, ``H, W`` image
height and width in pixels.

Coordinates: boxes are ``(y1, x1, y2, x2)``. *Pixel* boxes have exclusive y2/x2 (the
box ``(0, 0, 10, 10)`` covers pixels 0..9, height 10). *Normalised* boxes lie in
[0, 1] and map the pixel (y2, x2) inside: ``norm = (box - [0, 0, 1, 1]) /
[H-1, W-1, H-1, W-1]`` (:func:`norm_boxes`, :func:`denorm_boxes`).

Box functions here are plain numpy (for data loading, evaluation and tests); the
graph versions are in :mod:`mrcnn.ops`. Image/mask resizing lives in
:mod:`mrcnn._masks` and the dataset class in :mod:`mrcnn._dataset`; both are
re-exported here, so ``from mrcnn import utils`` gives the whole Matterport API.
"""

import numpy as np

from mrcnn._dataset import Dataset, ImageLoadError
from mrcnn._masks import (
    RESAMPLING_MODES, RESIZE_MODES, check_resampling, config_resampling, expand_mask,
    extract_bboxes, minimize_mask, resize_image, resize_mask, unmold_mask)

__all__ = [
    "Dataset", "ImageLoadError", "RESIZE_MODES", "RESAMPLING_MODES",
    "check_resampling", "config_resampling",
    "extract_bboxes", "compute_iou", "compute_overlaps", "compute_overlaps_masks",
    "non_max_suppression", "box_refinement", "apply_box_deltas",
    "resize_image", "resize_mask", "minimize_mask", "expand_mask", "unmold_mask",
    "generate_anchors", "generate_pyramid_anchors", "trim_zeros",
    "compute_matches", "compute_ap", "compute_ap_range", "compute_recall",
    "norm_boxes", "denorm_boxes",
]


def _boxes(name, boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim == 1 and boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: boxes must be [N, 4] (y1, x1, y2, x2), got shape "
                         f"{boxes.shape}")
    return boxes


def _areas(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _safe_ratio(numerator, denominator):
    """numerator / denominator with 0 where the denominator is 0 (degenerate boxes)."""
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


# ------------------------------------------------------------------------ IoU
def compute_iou(box, boxes, box_area, boxes_area):
    """IoU of one box with each of ``boxes``.

    Args:
        box: [4] (y1, x1, y2, x2). boxes: [N, 4], same coordinates.
        box_area: float, area of ``box``. boxes_area: [N] areas of ``boxes``.
            (Passed in so a caller comparing many pairs computes each area once.)
    Returns:
        float64 [N] IoU in [0, 1]; 0 where the union is empty.
    """
    box = np.asarray(box, dtype=np.float64)
    boxes = _boxes("compute_iou", boxes)
    y1 = np.maximum(box[0], boxes[:, 0])
    y2 = np.minimum(box[2], boxes[:, 2])
    x1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[3], boxes[:, 3])
    intersection = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area + np.asarray(boxes_area, dtype=np.float64) - intersection
    return _safe_ratio(intersection, union)


def compute_overlaps(boxes1, boxes2):
    """Pairwise IoU of two box sets (same coordinates).

    Args:
        boxes1: [N1, 4], boxes2: [N2, 4] (y1, x1, y2, x2).
    Returns:
        float64 [N1, N2] IoU; 0 for pairs whose union is empty.
    """
    boxes1 = _boxes("compute_overlaps (boxes1)", boxes1)
    boxes2 = _boxes("compute_overlaps (boxes2)", boxes2)
    # [N1, 1] against [1, N2]
    y1 = np.maximum(boxes1[:, None, 0], boxes2[None, :, 0])
    x1 = np.maximum(boxes1[:, None, 1], boxes2[None, :, 1])
    y2 = np.minimum(boxes1[:, None, 2], boxes2[None, :, 2])
    x2 = np.minimum(boxes1[:, None, 3], boxes2[None, :, 3])
    intersection = np.maximum(y2 - y1, 0) * np.maximum(x2 - x1, 0)
    union = _areas(boxes1)[:, None] + _areas(boxes2)[None, :] - intersection
    return _safe_ratio(intersection, union)


def compute_overlaps_masks(masks1, masks2):
    """Pairwise IoU of two sets of instance masks.

    Args:
        masks1: bool [H, W, N1], masks2: bool [H, W, N2] (same H, W).
    Returns:
        float64 [N1, N2] mask IoU; 0 when either set is empty or both masks are empty.
    """
    masks1, masks2 = np.asarray(masks1), np.asarray(masks2)
    n1 = masks1.shape[-1] if masks1.ndim == 3 else 0
    n2 = masks2.shape[-1] if masks2.ndim == 3 else 0
    if n1 == 0 or n2 == 0:
        return np.zeros((n1, n2), dtype=np.float64)
    if masks1.shape[:2] != masks2.shape[:2]:
        raise ValueError(f"compute_overlaps_masks: masks differ in size: {masks1.shape} "
                         f"and {masks2.shape}")
    flat1 = masks1.reshape(-1, n1).astype(np.float32)
    flat2 = masks2.reshape(-1, n2).astype(np.float32)
    # Pixel counts stay exact in float32 up to 2**24 pixels per mask; use float64
    # sums beyond that.
    if flat1.shape[0] >= 2 ** 24:
        flat1, flat2 = flat1.astype(np.float64), flat2.astype(np.float64)
    area1 = flat1.sum(axis=0, dtype=np.float64)
    area2 = flat2.sum(axis=0, dtype=np.float64)
    intersection = (flat1.T @ flat2).astype(np.float64)
    union = area1[:, None] + area2[None, :] - intersection
    return _safe_ratio(intersection, union)


def non_max_suppression(boxes, scores, threshold):
    """Greedy non-maximum suppression.

    Repeatedly keeps the highest-scoring remaining box and drops every remaining box
    whose IoU with it is greater than ``threshold``. Equal scores keep input order.

    Args:
        boxes: [N, 4] (y1, x1, y2, x2), any consistent coordinates.
        scores: [N] box scores.
        threshold: IoU above which a lower-scoring box is suppressed.
    Returns:
        int32 [K] indices into ``boxes`` of the kept boxes, by descending score.
    """
    boxes = _boxes("non_max_suppression", boxes)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"non_max_suppression: {boxes.shape[0]} boxes but "
                         f"{scores.shape[0]} scores")
    areas = _areas(boxes)
    order = np.argsort(-scores, kind="stable")
    keep = []
    # Greedy NMS is sequential in the kept boxes; each step is vectorised over the rest.
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        iou = compute_iou(boxes[best], boxes[rest], areas[best], areas[rest])
        order = rest[iou <= threshold]
    return np.array(keep, dtype=np.int32)


# ------------------------------------------------------------------- box deltas
def box_refinement(box, gt_box):
    """Deltas that move ``box`` onto ``gt_box``.

    Args:
        box, gt_box: [N, 4] (y1, x1, y2, x2), same coordinates; heights y2 - y1 and
            widths x2 - x1 must be positive.
    Returns:
        float32 [N, 4] (dy, dx, log(dh), log(dw)): centre shifts relative to the box's
        height/width and log ratios of the sizes.
    """
    box = _boxes("box_refinement (box)", box)
    gt_box = _boxes("box_refinement (gt_box)", gt_box)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    dy = (gt_box[:, 0] + 0.5 * gt_height - (box[:, 0] + 0.5 * height)) / height
    dx = (gt_box[:, 1] + 0.5 * gt_width - (box[:, 1] + 0.5 * width)) / width
    dh = np.log(gt_height / height)
    dw = np.log(gt_width / width)
    return np.stack([dy, dx, dh, dw], axis=1).astype(np.float32)


def apply_box_deltas(boxes, deltas):
    """Apply (dy, dx, log(dh), log(dw)) deltas to boxes; inverse of :func:`box_refinement`.

    Args:
        boxes: [N, 4] (y1, x1, y2, x2). deltas: [N, 4].
    Returns:
        float32 [N, 4] refined boxes in the coordinates of ``boxes``.
    """
    boxes = _boxes("apply_box_deltas (boxes)", boxes)
    deltas = _boxes("apply_box_deltas (deltas)", deltas)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    center_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    center_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = center_y - 0.5 * height
    x1 = center_x - 0.5 * width
    return np.stack([y1, x1, y1 + height, x1 + width], axis=1).astype(np.float32)


# ------------------------------------------------------------------------ anchors
def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride):
    """Pixel anchors of one feature map.

    Args:
        scales: anchor side length(s) in pixels (scalar or 1-D), e.g. 32.
        ratios: width / height ratios, e.g. [0.5, 1, 2]; an anchor has height
            scale / sqrt(ratio) and width scale * sqrt(ratio).
        shape: (height, width) of the feature map.
        feature_stride: pixels per feature cell.
        anchor_stride: place anchors at every ``anchor_stride``-th cell.
    Returns:
        float64 [cells * len(ratios) * len(scales), 4] pixel (y1, x1, y2, x2),
        centred at ``arange(0, shape, anchor_stride) * feature_stride`` (no half-cell
        offset). Order: cells row by row; within a cell ratio-major, then scale.
    """
    scales, ratios = np.meshgrid(np.array(scales, dtype=np.float64),
                                 np.array(ratios, dtype=np.float64))
    scales, ratios = scales.reshape(-1), ratios.reshape(-1)
    heights = scales / np.sqrt(ratios)
    widths = scales * np.sqrt(ratios)
    centers_y = np.arange(0, shape[0], anchor_stride) * feature_stride
    centers_x = np.arange(0, shape[1], anchor_stride) * feature_stride
    # [cells] centres, row-major (y outer, x inner)
    cy = np.repeat(centers_y, len(centers_x)).astype(np.float64)
    cx = np.tile(centers_x, len(centers_y)).astype(np.float64)
    # [cells, anchors per cell]
    cy, h = cy[:, None], heights[None, :]
    cx, w = cx[:, None], widths[None, :]
    boxes = np.stack(np.broadcast_arrays(cy - 0.5 * h, cx - 0.5 * w,
                                         cy + 0.5 * h, cx + 0.5 * w), axis=-1)
    return boxes.reshape(-1, 4)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Pixel anchors of all pyramid levels, concatenated in level order (P2 first).

    Args:
        scales: [L] one anchor size per level, e.g. (32, 64, 128, 256, 512).
        ratios: width / height ratios shared by all levels.
        feature_shapes: [L, 2] feature map (height, width) per level.
        feature_strides: [L] pixels per feature cell per level.
        anchor_stride: as in :func:`generate_anchors`.
    Returns:
        float64 [A, 4] pixel (y1, x1, y2, x2). For a 1024x1024 image with the default
        Config, A = 3 * (256^2 + 128^2 + 64^2 + 32^2 + 16^2) = 261,888.
    """
    if not len(scales) == len(feature_shapes) == len(feature_strides):
        raise ValueError(f"generate_pyramid_anchors: need one scale, feature shape and "
                         f"stride per level; got {len(scales)}, {len(feature_shapes)} "
                         f"and {len(feature_strides)}")
    return np.concatenate([
        generate_anchors(scale, ratios, shape, stride, anchor_stride)
        for scale, shape, stride in zip(scales, feature_shapes, feature_strides)], axis=0)


# ------------------------------------------------------------------------ helpers
def trim_zeros(x):
    """Drop all-zero rows (the zero padding) of a 2-D array [N, C]."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"trim_zeros: expected a 2-D array, got shape {x.shape}")
    return x[~np.all(x == 0, axis=1)]


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalised boxes.

    Args:
        boxes: [..., 4] pixel (y1, x1, y2, x2), y2/x2 exclusive.
        shape: (H, W[, C]) of the image the boxes are in.
    Returns:
        float32 [..., 4] normalised: (box - [0, 0, 1, 1]) / [H-1, W-1, H-1, W-1].
    """
    h, w = int(shape[0]), int(shape[1])
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return ((np.asarray(boxes, dtype=np.float64) - shift) / scale).astype(np.float32)


def denorm_boxes(boxes, shape):
    """Normalised boxes -> pixel boxes (inverse of :func:`norm_boxes`).

    Args:
        boxes: [..., 4] normalised (y1, x1, y2, x2).
        shape: (H, W[, C]) of the target image.
    Returns:
        int32 [..., 4] pixel boxes, y2/x2 exclusive, rounded to the nearest pixel.
    """
    h, w = int(shape[0]), int(shape[1])
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return np.around(np.asarray(boxes, dtype=np.float64) * scale + shift).astype(np.int32)


# ------------------------------------------------------------------ evaluation
def compute_matches(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids,
                    pred_scores, pred_masks, iou_threshold=0.5, score_threshold=0.0):
    """Match predictions to ground truth by mask IoU (greedy, by descending score).

    Zero-padding rows of ``gt_boxes`` / ``pred_boxes`` (and the masks past them) are
    dropped. Each prediction, highest score first, takes the unmatched ground truth of
    its class with the highest mask IoU, provided the IoU is >= ``iou_threshold``.
    As in Matterport, ``score_threshold`` applies to overlaps: ground truth with IoU
    below it is not considered for a prediction.

    Args:
        gt_boxes [G, 4], pred_boxes [P, 4]: pixel boxes (only their padding is used).
        gt_class_ids [G], pred_class_ids [P], pred_scores [P].
        gt_masks bool [H, W, G], pred_masks bool [H, W, P].
    Returns:
        gt_match: int [G] index (into the score-sorted predictions) of the prediction
            matched to each ground truth, -1 if none.
        pred_match: int [P] index of the ground truth matched to each prediction in
            descending-score order (ties keep input order), -1 if none.
        overlaps: float64 [P, G] mask IoU, predictions in descending-score order.
    """
    gt_boxes = trim_zeros(_boxes("compute_matches (gt_boxes)", gt_boxes))
    pred_boxes = trim_zeros(_boxes("compute_matches (pred_boxes)", pred_boxes))
    n_gt, n_pred = len(gt_boxes), len(pred_boxes)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)[:n_gt]
    gt_masks = np.asarray(gt_masks)[..., :n_gt]
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)[:n_pred]
    order = np.argsort(-pred_scores, kind="stable")
    pred_class_ids = np.asarray(pred_class_ids).reshape(-1)[:n_pred][order]
    pred_masks = np.asarray(pred_masks)[..., :n_pred][..., order]

    overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    gt_match = -np.ones(n_gt, dtype=np.int64)
    pred_match = -np.ones(n_pred, dtype=np.int64)
    if n_gt == 0 or n_pred == 0:
        return gt_match, pred_match, overlaps
    # Candidates per prediction: same class, IoU >= both thresholds. Taking the best
    # still-unmatched candidate is the same as Matterport's walk down the IoU-sorted
    # ground truth (it skips matched or other-class ones and stops below threshold).
    candidates = ((pred_class_ids[:, None] == gt_class_ids[None, :])
                  & (overlaps >= iou_threshold) & (overlaps >= score_threshold))
    # The assignment is sequential (a match removes a ground truth for later
    # predictions), so this loops over predictions; each step is vectorised.
    for i in np.where(candidates.any(axis=1))[0]:
        free = candidates[i] & (gt_match < 0)
        if free.any():
            j = int(np.argmax(np.where(free, overlaps[i], -1.0)))
            gt_match[j] = i
            pred_match[i] = j
    return gt_match, pred_match, overlaps


def compute_ap(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
               pred_masks, iou_threshold=0.5):
    """Average precision at one mask-IoU threshold (VOC all-point interpolation).

    Args: as :func:`compute_matches`.
    Returns:
        mAP: float; nan when there is no ground truth (AP is undefined; average over
            images with ``np.nanmean``).
        precisions: [P + 2] interpolated (monotone non-increasing) precision, padded
            with a leading and trailing 0 before interpolation.
        recalls: [P + 2] recall after each prediction, padded with 0 and 1.
        overlaps: [P, G] mask IoU (predictions by descending score).
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
        pred_masks, iou_threshold)
    true_positives = np.cumsum(pred_match > -1).astype(np.float64)
    precisions = true_positives / (np.arange(len(pred_match)) + 1)
    n_gt = len(gt_match)
    recalls = true_positives / n_gt if n_gt else np.zeros_like(true_positives)
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    # Precision envelope: the best precision at any recall at least as high.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.where(recalls[1:] != recalls[:-1])[0] + 1
    m_ap = float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))
    if n_gt == 0:
        m_ap = float("nan")
    return m_ap, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
                     pred_mask, iou_thresholds=None, verbose=1):
    """Mean of :func:`compute_ap` over IoU thresholds (default 0.5:0.95:0.05, COCO style).

    Args: as :func:`compute_ap`; ``verbose`` prints the AP at each threshold.
    Returns:
        float mean AP over the thresholds (nan without ground truth).
    """
    if iou_thresholds is None:
        iou_thresholds = np.linspace(0.5, 0.95, 10)
    iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if iou_thresholds.size == 0:
        raise ValueError("compute_ap_range: iou_thresholds is empty")
    aps = []
    for threshold in iou_thresholds:
        ap = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score,
                        pred_mask, iou_threshold=threshold)[0]
        if verbose:
            print(f"AP @{threshold:.2f}:\t {ap:.3f}")
        aps.append(ap)
    mean_ap = float(np.mean(aps))
    if verbose:
        print(f"AP @{iou_thresholds[0]:.2f}-{iou_thresholds[-1]:.2f}:\t {mean_ap:.3f}")
    return mean_ap


def compute_recall(pred_boxes, gt_boxes, iou):
    """Fraction of ground-truth boxes that some prediction overlaps with IoU >= ``iou``.

    Each prediction counts for its best-overlapping ground truth only.

    Args:
        pred_boxes: [P, 4], gt_boxes: [G, 4] (y1, x1, y2, x2), same coordinates.
        iou: IoU threshold.
    Returns:
        recall: float in [0, 1] (nan without ground truth).
        positive_ids: int [K] indices of predictions with best IoU >= ``iou``.
    """
    pred_boxes = _boxes("compute_recall (pred_boxes)", pred_boxes)
    gt_boxes = _boxes("compute_recall (gt_boxes)", gt_boxes)
    if len(gt_boxes) == 0:
        return float("nan"), np.zeros(0, dtype=np.int64)
    if len(pred_boxes) == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    best_iou = overlaps.max(axis=1)
    best_gt = overlaps.argmax(axis=1)
    positive_ids = np.where(best_iou >= iou)[0]
    recall = len(np.unique(best_gt[positive_ids])) / len(gt_boxes)
    return recall, positive_ids
