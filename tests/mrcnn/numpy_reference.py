"""Slow pure-numpy / pure-Python references for the tensor ops, one image or box at a time.

Written for clarity, not speed: loops over boxes and pixels are deliberate, so the
vectorised ops are checked against a different formulation. Boxes (y1, x1, y2, x2).
"""

import math

import numpy as np


def iou(a, b):
    """IoU of two boxes, areas (y2 - y1) * (x2 - x1), 0 for an empty union."""
    inter_h = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    inter_w = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = inter_h * inter_w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def overlaps(boxes1, boxes2):
    return np.array([[iou(a, b) for b in boxes2] for a in boxes1], dtype=np.float64).reshape(
        len(boxes1), len(boxes2))


def apply_deltas(box, delta):
    h, w = box[2] - box[0], box[3] - box[1]
    cy, cx = box[0] + 0.5 * h + delta[0] * h, box[1] + 0.5 * w + delta[1] * w
    h, w = h * math.exp(delta[2]), w * math.exp(delta[3])
    return np.array([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w])


def encode(box, gt):
    h, w = box[2] - box[0], box[3] - box[1]
    gh, gw = gt[2] - gt[0], gt[3] - gt[1]
    return np.array([(gt[0] + 0.5 * gh - box[0] - 0.5 * h) / h,
                     (gt[1] + 0.5 * gw - box[1] - 0.5 * w) / w,
                     math.log(gh / h), math.log(gw / w)])


def clip(box, window):
    y1, x1, y2, x2 = window
    return np.array([min(max(box[0], y1), y2), min(max(box[1], x1), x2),
                     min(max(box[2], y1), y2), min(max(box[3], x1), x2)])


def greedy_nms(boxes, scores, threshold, max_output):
    """Indices kept by greedy NMS: by descending score, drop IoU > threshold with a kept box."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept = []
    for i in order:
        if len(kept) == max_output:
            break
        if all(iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return kept


def greedy_nms_per_class(boxes, scores, classes, valid, threshold, max_output):
    """Indices kept by greedy NMS run separately on each class's valid boxes, then the
    ``max_output`` best by descending score over all classes (invalid boxes never kept)."""
    kept = []
    for c in sorted({int(classes[i]) for i in range(len(scores)) if valid[i]}):
        members = [i for i in range(len(scores)) if valid[i] and int(classes[i]) == c]
        keep = greedy_nms([boxes[i] for i in members], [scores[i] for i in members],
                          threshold, max_output)
        kept += [members[k] for k in keep]
    return sorted(kept, key=lambda i: -scores[i])[:max_output]


def crop_and_resize(image, box, out_h, out_w):
    """Bilinear crop of ``image`` [H, W, C] by a normalised box; 0 outside the image.

    Box coordinate y maps to image row y * (H - 1), as in tf.image.crop_and_resize.
    """
    height, width = image.shape[:2]
    y1, x1, y2, x2 = box
    out = np.zeros((out_h, out_w, image.shape[2]))
    for i in range(out_h):
        if out_h > 1:
            in_y = y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (out_h - 1)
        else:
            in_y = 0.5 * (y1 + y2) * (height - 1)
        if in_y < 0 or in_y > height - 1:
            continue
        for j in range(out_w):
            if out_w > 1:
                in_x = x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (out_w - 1)
            else:
                in_x = 0.5 * (x1 + x2) * (width - 1)
            if in_x < 0 or in_x > width - 1:
                continue
            top, left = int(math.floor(in_y)), int(math.floor(in_x))
            bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
            fy, fx = in_y - top, in_x - left
            upper = image[top, left] * (1 - fx) + image[top, right] * fx
            lower = image[bottom, left] * (1 - fx) + image[bottom, right] * fx
            out[i, j] = upper * (1 - fy) + lower * fy
    return out


def roi_level(box, image_area):
    h, w = box[2] - box[0], box[3] - box[1]
    if h * w <= 0:
        return 2
    level = 4 + np.round(math.log2(math.sqrt(h * w) / (224.0 / math.sqrt(image_area))))
    return int(min(max(level, 2), 5))
