"""Tests of mrcnn.rpn_targets (build_rpn_targets, re-exported by mrcnn.data)."""

import math

import numpy as np
import pytest

from mrcnn import data, rpn_targets, utils
from mrcnn.config import Config


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 1 + 3
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32


# 64x64 image, strides 4..64: feature maps 16, 8, 4, 2, 1 -> 3 * 341 anchors
NUM_ANCHORS = 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)


def make_config(**overrides):
    return type("Cfg", (TinyConfig,), overrides)()


def tiny_anchors(config):
    shapes = [[math.ceil(64 / s)] * 2 for s in config.BACKBONE_STRIDES]
    return utils.generate_pyramid_anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                                          shapes, config.BACKBONE_STRIDES,
                                          config.RPN_ANCHOR_STRIDE)


def slow_rpn_labels(anchors, class_ids, boxes):
    """Reference labels and best-GT deltas with plain Python loops (no subsampling)."""
    def iou(a, b):
        h = min(a[2], b[2]) - max(a[0], b[0])
        w = min(a[3], b[3]) - max(a[1], b[1])
        inter = max(h, 0) * max(w, 0)
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    gts = [b for c, b in zip(class_ids, boxes) if c > 0]
    crowds = [b for c, b in zip(class_ids, boxes) if c < 0]
    labels, deltas = [], {}
    table = [[iou(a, g) for g in gts] for a in anchors]
    column_best = [max(table[i][j] for i in range(len(anchors))) for j in range(len(gts))]
    for i, a in enumerate(anchors):
        near_crowd = any(iou(a, c) > 0.001 for c in crowds)
        best = max(table[i]) if gts else 0.0
        label = -1 if best < 0.3 and not near_crowd else 0
        if any(table[i][j] == column_best[j] > 0 for j in range(len(gts))) or best >= 0.7:
            label = 1
            g = gts[int(np.argmax(table[i]))]
            ah, aw, gh, gw = a[2] - a[0], a[3] - a[1], g[2] - g[0], g[3] - g[1]
            deltas[i] = [((g[0] + gh / 2) - (a[0] + ah / 2)) / ah / 0.1,
                         ((g[1] + gw / 2) - (a[1] + aw / 2)) / aw / 0.1,
                         math.log(gh / ah) / 0.2, math.log(gw / aw) / 0.2]
        labels.append(label)
    return np.array(labels), deltas


def random_gt(rng, count, crowd=0):
    y1 = rng.integers(0, 50, count)
    x1 = rng.integers(0, 50, count)
    boxes = np.stack([y1, x1, y1 + rng.integers(4, 30, count),
                      x1 + rng.integers(4, 30, count)], axis=1)
    ids = rng.integers(1, 4, count)
    ids[:crowd] = -1
    return ids.astype(np.int32), boxes


def test_pairwise_iou_matches_utils_across_blocks(monkeypatch):
    monkeypatch.setattr(rpn_targets, "_IOU_BLOCK_ROWS", 7)
    rng = np.random.default_rng(0)
    _, boxes1 = random_gt(rng, 30)
    _, boxes2 = random_gt(rng, 9)
    boxes2[0] = [5, 5, 5, 9]   # empty box: IoU 0, not NaN
    iou = rpn_targets.pairwise_iou(boxes1, boxes2)
    assert iou.dtype == np.float32 and iou.shape == (30, 9)
    np.testing.assert_allclose(iou, utils.compute_overlaps(boxes1, boxes2), atol=1e-6)
    assert not iou[:, 0].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rpn_targets_match_slow_reference(seed):
    # Enough training anchors that nothing is subsampled: labels are deterministic.
    config = make_config(RPN_TRAIN_ANCHORS_PER_IMAGE=2 * NUM_ANCHORS)
    anchors = tiny_anchors(config)
    ids, boxes = random_gt(np.random.default_rng(seed), 4, crowd=1)
    match, bbox = data.build_rpn_targets(anchors, ids, boxes, config)
    labels, deltas = slow_rpn_labels(anchors.tolist(), ids.tolist(), boxes.tolist())
    np.testing.assert_array_equal(match, labels)
    positives = np.flatnonzero(labels == 1)
    assert len(positives) > 0
    expected = np.array([deltas[i] for i in positives])
    np.testing.assert_allclose(bbox[:len(positives)], expected, rtol=1e-4, atol=1e-4)
    assert not bbox[len(positives):].any()


@pytest.mark.parametrize("seed", range(8))
def test_rpn_subsampling_respects_limits(seed):
    config = make_config()   # 32 anchors per image
    anchors = tiny_anchors(config)
    rng = np.random.default_rng(seed)
    ids, boxes = random_gt(rng, int(rng.integers(1, 12)), crowd=int(rng.integers(0, 2)))
    match, bbox = data.build_rpn_targets(anchors, ids, boxes, config, rng=rng)
    full, _ = data.build_rpn_targets(anchors, ids, boxes,
                                     make_config(RPN_TRAIN_ANCHORS_PER_IMAGE=2 * NUM_ANCHORS))
    num_pos, num_neg = int((match == 1).sum()), int((match == -1).sum())
    assert num_pos <= 16
    assert num_pos + num_neg == 32
    # Subsampling only turns labels neutral.
    assert np.all(full[match == 1] == 1) and np.all(full[match == -1] == -1)
    assert num_pos == min(16, int((full == 1).sum()))
    assert match.dtype == np.int32 and bbox.shape == (32, 4) and bbox.dtype == np.float32
    assert not bbox[num_pos:].any()


def test_rpn_gt_equal_to_anchor_gives_zero_delta():
    config = make_config()
    anchors = tiny_anchors(config)
    k = 3 * (16 * 8 + 8) + 1          # a square 8-pixel anchor inside the image
    match, bbox = data.build_rpn_targets(anchors, [2], anchors[k:k + 1], config)
    assert np.flatnonzero(match == 1).tolist() == [k]
    np.testing.assert_allclose(bbox[0], 0, atol=1e-6)
    assert (match == -1).sum() == 31


def test_rpn_ties_make_every_best_anchor_positive():
    config = make_config()
    anchors = np.array([[0, 0, 10, 10], [0, 10, 10, 20], [30, 30, 40, 40]], np.float64)
    match, bbox = data.build_rpn_targets(anchors, [1], [[0, 5, 10, 15]], config)
    assert match.tolist() == [1, 1, -1]
    # (centre shift of half an anchor) / 0.1 in x, same size
    np.testing.assert_allclose(bbox[:2], [[0, 5, 0, 0], [0, -5, 0, 0]], atol=1e-5)


def test_rpn_high_iou_anchor_is_positive_without_being_best():
    config = make_config()
    anchors = np.array([[0, 0, 10, 10], [0, 1, 10, 11], [0, 6, 10, 16]], np.float64)
    match, bbox = data.build_rpn_targets(anchors, [1], [[0, 0, 10, 10]], config)
    # IoUs 1, 90/110 = 0.82 (>= 0.7: positive), 40/160 (< 0.3: negative)
    assert match.tolist() == [1, 1, -1]
    np.testing.assert_allclose(bbox[:2], [[0, 0, 0, 0], [0, -1, 0, 0]], atol=1e-5)


def test_rpn_positives_capped_at_half():
    config = make_config()   # 32 anchors per image -> at most 16 positives
    on_gt = np.tile([[0, 0, 10, 10]], (40, 1))
    far = np.array([[50, 50 + i, 60, 60 + i] for i in range(30)])
    anchors = np.concatenate([on_gt, far]).astype(np.float64)
    match, bbox = data.build_rpn_targets(anchors, [1], [[0, 0, 10, 10]], config,
                                         rng=np.random.default_rng(0))
    assert (match[:40] == 1).sum() == 16 and (match[:40] == 0).sum() == 24
    assert (match[40:] == -1).sum() == 16 and (match[40:] == 0).sum() == 14
    np.testing.assert_allclose(bbox, 0, atol=1e-6)


def test_rpn_without_ground_truth():
    config = make_config()
    anchors = tiny_anchors(config)
    match, bbox = data.build_rpn_targets(anchors, np.zeros(0, np.int32),
                                         np.zeros((0, 4)), config)
    assert (match == 1).sum() == 0 and (match == -1).sum() == 32
    assert not bbox.any()


def test_rpn_crowd_boxes_are_not_targets_and_block_negatives():
    config = make_config(RPN_TRAIN_ANCHORS_PER_IMAGE=2 * NUM_ANCHORS)
    anchors = tiny_anchors(config)
    k = 3 * (16 * 8 + 8) + 1
    crowd = anchors[k:k + 1]
    match, bbox = data.build_rpn_targets(anchors, [-1], crowd, config)
    near = utils.compute_overlaps(anchors, crowd)[:, 0] > 0.001
    assert (match == 1).sum() == 0 and not bbox.any()
    assert np.all(match[near] == 0) and np.all(match[~near] == -1)
    assert near.sum() > 1


def test_rpn_gt_overlapping_no_anchor_forces_no_positive():
    config = make_config()
    anchors = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    match, _ = data.build_rpn_targets(anchors, [1, 1], [[0, 0, 10, 10], [50, 50, 60, 60]],
                                      config)
    assert match.tolist() == [1, -1]
