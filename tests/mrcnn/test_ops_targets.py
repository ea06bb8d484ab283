"""Detection targets (mrcnn.ops.targets): sampling rules, box and mask targets, and
the matching, sampling and encoding pieces alone."""

import numpy as np
import pytest

from mrcnn.ops.boxes import apply_box_deltas
from mrcnn.ops.targets import (box_targets, detection_targets, mask_targets, match_proposals,
                               sample_rois)
from tests.backend import as_numpy, const, tensorflow_only
from tests.mrcnn import numpy_reference as ref

STD = np.array([0.1, 0.1, 0.2, 0.2])


def jitter(rng, box, count, scale):
    h, w = box[2] - box[0], box[3] - box[1]
    noise = rng.uniform(-scale, scale, size=(count, 4)) * [h, w, h, w]
    return np.clip(np.asarray(box) + noise, 0.0, 1.0)


def scene(seed=0, num_proposals=40):
    """Batch of two different images: proposals [2, N, 4], GT [2, 3] (third slot padding)."""
    rng = np.random.default_rng(seed)
    gt_boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0, 0, 0, 0]],
                         [[0.2, 0.2, 0.6, 0.6], [0.6, 0.0, 1.0, 0.4], [0, 0, 0, 0]]],
                        np.float32)
    gt_class_ids = np.array([[1, 2, 0], [3, -1, 0]], np.int32)
    proposals = np.zeros((2, num_proposals, 4), np.float32)
    for b in range(2):
        near = [jitter(rng, gt_boxes[b, g], 6, 0.15) for g in range(2)]
        far = rng.uniform(0, 1, size=(num_proposals - 16, 2, 2))
        far = np.sort(far, axis=1).transpose(0, 2, 1).reshape(-1, 4)[:, [0, 2, 1, 3]]
        rows = np.concatenate(near + [far])
        rng.shuffle(rows)
        proposals[b, :len(rows)] = rows  # the last 4 rows stay zero padding
    return proposals, gt_class_ids, gt_boxes


def reference_sets(proposals, gt_class_ids, gt_boxes):
    """Per image: positive proposal indices -> best GT, negative proposal indices."""
    sets = []
    for b in range(proposals.shape[0]):
        valid_p = [i for i in range(proposals.shape[1]) if proposals[b, i].any()]
        inst = [g for g in range(gt_boxes.shape[1])
                if gt_boxes[b, g].any() and gt_class_ids[b, g] > 0]
        crowd = [g for g in range(gt_boxes.shape[1])
                 if gt_boxes[b, g].any() and gt_class_ids[b, g] < 0]
        positives, negatives = {}, set()
        for i in valid_p:
            ious = [ref.iou(proposals[b, i], gt_boxes[b, g]) for g in inst]
            best = max(ious) if ious else 0.0
            crowd_iou = max([ref.iou(proposals[b, i], gt_boxes[b, g]) for g in crowd] or [0.0])
            if best >= 0.5:
                positives[i] = inst[int(np.argmax(ious))]
            elif crowd_iou < 0.001:
                negatives.add(i)
        sets.append((positives, negatives))
    return sets


def find_row(proposals, roi, taken=()):
    """Index of a proposal equal to ``roi``, skipping ``taken`` (duplicates allowed)."""
    hits = [int(i) for i in np.where((proposals == roi).all(axis=-1))[0] if i not in taken]
    assert hits, f"roi {roi} is not an unused proposal"
    return hits[0]


def check_targets(proposals, gt_class_ids, gt_boxes, outputs, num_rois, ratio):
    rois, class_ids, deltas, masks = as_numpy(outputs)
    assert rois.shape == (2, num_rois, 4) and class_ids.dtype == np.int32
    counts = []
    for b, (positives, negatives) in enumerate(reference_sets(proposals, gt_class_ids,
                                                              gt_boxes)):
        n_pos = int((class_ids[b] > 0).sum())
        expected_pos = min(len(positives), int(num_rois * ratio))
        expected_neg = int(np.float32(1.0 / ratio) * np.float32(expected_pos)) - expected_pos
        expected_neg = min(expected_neg, len(negatives), num_rois - expected_pos)
        assert n_pos == expected_pos
        assert (class_ids[b, :n_pos] > 0).all(), "positives come first"
        seen = set()
        for t in range(n_pos):
            i = find_row(proposals[b], rois[b, t], seen)
            assert i in positives
            seen.add(i)
            g = positives[i]
            assert class_ids[b, t] == gt_class_ids[b, g]
            assert ref.iou(rois[b, t], gt_boxes[b, g]) >= 0.5
            decoded = ref.apply_deltas(rois[b, t], deltas[b, t] * STD)
            np.testing.assert_allclose(decoded, gt_boxes[b, g], atol=1e-5)
        n_neg = 0
        for t in range(n_pos, num_rois):
            if not rois[b, t].any():
                break
            i = find_row(proposals[b], rois[b, t], seen)
            assert i in negatives
            seen.add(i)
            n_neg += 1
        assert n_neg == expected_neg
        rest = slice(n_pos + n_neg, None)
        assert not rois[b, rest].any() and not class_ids[b, n_pos:].any()
        assert not deltas[b, n_pos:].any() and not masks[b, n_pos:].any()
        counts.append((n_pos, n_neg))
    return counts


def run(proposals, gt_class_ids, gt_boxes, gt_masks=None, num_rois=12, ratio=0.33,
        mask_shape=(6, 6), use_mini_mask=True, seed=7):
    if gt_masks is None:
        gt_masks = np.ones((2, 8, 8, gt_boxes.shape[1]), bool)
    return detection_targets(proposals, gt_class_ids, gt_boxes, gt_masks, num_rois, ratio,
                             STD, mask_shape, use_mini_mask, seed=seed)


@pytest.mark.parametrize("num_rois, ratio", [(12, 0.33), (30, 0.5), (6, 1.0)])
def test_sampling_obeys_rules_and_counts(num_rois, ratio):
    proposals, gt_class_ids, gt_boxes = scene(seed=num_rois)
    out = run(proposals, gt_class_ids, gt_boxes, num_rois=num_rois, ratio=ratio)
    counts = check_targets(proposals, gt_class_ids, gt_boxes, out, num_rois, ratio)
    assert all(p > 0 for p, _ in counts)
    assert any(n > 0 for _, n in counts) or ratio == 1.0


def test_counts_hand_case_ratio_rule():
    # T = 10, ratio 0.33: at most int(3.3) = 3 positives, then int(3.0303 * P) - P negatives
    gt_boxes = np.array([[[0.0, 0.0, 0.5, 0.5]], [[0.0, 0.0, 0.5, 0.5]]], np.float32)
    gt_class_ids = np.array([[1], [1]], np.int32)
    pos = np.array([[0.0, 0.0, 0.5, 0.5]] * 5)
    neg = np.array([[0.6, 0.6, 0.6 + 0.01 * k, 0.7] for k in range(1, 21)])
    image0 = np.concatenate([pos, neg])           # 5 positives, 20 negatives
    image1 = np.concatenate([pos[:1], neg, np.zeros((4, 4))])  # 1 positive
    proposals = np.stack([image0, image1]).astype(np.float32)
    counts = check_targets(proposals, gt_class_ids, gt_boxes,
                           run(proposals, gt_class_ids, gt_boxes, num_rois=10), 10, 0.33)
    assert counts == [(3, 6), (1, 2)]


def test_few_negatives_and_no_positive():
    gt_boxes = np.array([[[0.0, 0.0, 0.5, 0.5]], [[0, 0, 0, 0]]], np.float32)
    gt_class_ids = np.array([[1], [0]], np.int32)
    image0 = np.array([[0.0, 0.0, 0.5, 0.5], [0.01, 0.0, 0.5, 0.5], [0.7, 0.7, 0.9, 0.9]])
    image1 = np.array([[0.0, 0.0, 0.5, 0.5], [0.7, 0.7, 0.9, 0.9], [0.1, 0.1, 0.2, 0.2]])
    proposals = np.stack([image0, image1]).astype(np.float32)
    counts = check_targets(proposals, gt_class_ids, gt_boxes,
                           run(proposals, gt_class_ids, gt_boxes, num_rois=8), 8, 0.33)
    # image 0: 2 positives, int(6.06) - 2 = 4 wanted but 1 negative exists;
    # image 1: no GT, so no positive and (Matterport's rule) no negative either
    assert counts == [(2, 1), (0, 0)]


def test_no_ground_truth_gives_only_padding():
    proposals, _, _ = scene(seed=3)
    out = detection_targets(proposals, np.zeros((2, 0), np.int32), np.zeros((2, 0, 4)),
                            np.zeros((2, 8, 8, 0), bool), 10, 0.33, STD, (6, 6), True, seed=1)
    rois, class_ids, deltas, masks = as_numpy(out)
    assert rois.shape == (2, 10, 4) and masks.shape == (2, 10, 6, 6)
    assert not rois.any() and not class_ids.any() and not deltas.any() and not masks.any()
    assert np.isfinite(deltas).all()


def test_crowd_boxes_are_not_targets_and_block_negatives():
    gt_boxes = np.array([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]] * 2, np.float32)
    gt_class_ids = np.array([[1, -1], [1, -1]], np.int32)
    proposals = np.array([[0.0, 0.0, 0.5, 0.5],     # positive
                          [0.5, 0.5, 1.0, 1.0],     # exactly the crowd box: neither
                          [0.45, 0.45, 0.55, 0.55],  # touches the crowd box: not negative
                          [0.0, 0.6, 0.3, 0.9]],    # free negative
                         np.float32)
    proposals = np.stack([proposals, proposals[[3, 2, 1, 0]]])
    rois, class_ids, _, _ = as_numpy(run(proposals, gt_class_ids, gt_boxes, num_rois=6,
                                         ratio=0.5))
    for b in range(2):
        np.testing.assert_allclose(rois[b, 0], [0.0, 0.0, 0.5, 0.5])
        np.testing.assert_allclose(rois[b, 1], [0.0, 0.6, 0.3, 0.9])
        assert class_ids[b].tolist() == [1, 0, 0, 0, 0, 0]
        assert not rois[b, 2:].any()


def test_mini_mask_targets_match_reference():
    proposals, gt_class_ids, gt_boxes = scene(seed=5)
    rng = np.random.default_rng(5)
    gt_masks = rng.uniform(size=(2, 10, 10, 3)) > 0.5
    out = run(proposals, gt_class_ids, gt_boxes, gt_masks=gt_masks, num_rois=16,
              mask_shape=(7, 5))
    rois, class_ids, _, masks = as_numpy(out)
    sets = reference_sets(proposals, gt_class_ids, gt_boxes)
    checked = 0
    for b in range(2):
        for t in np.where(class_ids[b] > 0)[0]:
            g = sets[b][0][find_row(proposals[b], rois[b, t])]
            gy1, gx1, gy2, gx2 = gt_boxes[b, g]
            y1, x1, y2, x2 = rois[b, t]
            h, w = gy2 - gy1, gx2 - gx1
            box = [(y1 - gy1) / h, (x1 - gx1) / w, (y2 - gy1) / h, (x2 - gx1) / w]
            soft = ref.crop_and_resize(gt_masks[b, :, :, g:g + 1].astype(float), box, 7, 5)[..., 0]
            decided = np.abs(soft - 0.5) > 1e-4  # exact halves may round either way
            np.testing.assert_array_equal(masks[b, t][decided], np.round(soft)[decided])
            checked += 1
    assert checked >= 4
    assert set(np.unique(masks)) <= {0.0, 1.0}


def test_full_mask_target_hand_case():
    # 11x11 image; GT pixel box (2, 3, 7, 9) -> normalised (0.2, 0.3, 0.6, 0.8)
    full = np.zeros((11, 11), bool)
    full[2:7, 3:9] = np.random.default_rng(0).uniform(size=(5, 6)) > 0.4
    gt_masks = np.stack([full[..., None]] * 2)
    gt_boxes = np.array([[[0.2, 0.3, 0.6, 0.8]]] * 2, np.float32)
    gt_class_ids = np.array([[1], [2]], np.int32)
    proposals = gt_boxes.copy()
    out = run(proposals, gt_class_ids, gt_boxes, gt_masks=gt_masks, num_rois=4,
              mask_shape=(5, 6), use_mini_mask=False)
    _, class_ids, deltas, masks = as_numpy(out)
    assert class_ids[:, 0].tolist() == [1, 2]
    np.testing.assert_allclose(deltas[:, 0], 0.0, atol=1e-6)
    np.testing.assert_array_equal(masks[0, 0], full[2:7, 3:9].astype(np.float32))
    np.testing.assert_array_equal(masks[1, 0], full[2:7, 3:9].astype(np.float32))


def test_mini_mask_roi_equal_to_gt_returns_the_mini_mask():
    mini = np.random.default_rng(1).uniform(size=(2, 8, 8, 1)) > 0.5
    gt_boxes = np.array([[[0.1, 0.2, 0.7, 0.6]], [[0.3, 0.3, 0.9, 0.5]]], np.float32)
    out = run(gt_boxes.copy(), np.array([[1], [1]], np.int32), gt_boxes, gt_masks=mini,
              num_rois=3, ratio=0.5, mask_shape=(8, 8))
    class_ids, masks = as_numpy(out[1]), as_numpy(out[3])
    assert class_ids[:, 0].tolist() == [1, 1]
    np.testing.assert_array_equal(masks[:, 0], mini[..., 0].astype(np.float32))


def test_seed_reproducible_and_sampling_random():
    proposals, gt_class_ids, gt_boxes = scene(seed=9)
    first = as_numpy(run(proposals, gt_class_ids, gt_boxes, seed=11))
    again = as_numpy(run(proposals, gt_class_ids, gt_boxes, seed=11))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    # with 6+ eligible positives per image and 3 positive slots, different seeds
    # eventually pick every positive proposal
    picked = set()
    for seed in range(25):
        rois = as_numpy(run(proposals, gt_class_ids, gt_boxes, seed=seed)[0])
        picked |= {find_row(proposals[0], r) for r in rois[0, :3]}
    assert picked == set(reference_sets(proposals, gt_class_ids, gt_boxes)[0][0])


@tensorflow_only
def test_stateful_sampling_and_dynamic_shapes_in_tf_function():
    import tensorflow as tf

    proposals, gt_class_ids, gt_boxes = scene(seed=4)
    gt_masks = np.ones((2, 8, 8, 3), bool)
    fn = tf.function(
        lambda p, c, b, m: detection_targets(p, c, b, m, 12, 0.33, STD, (6, 6), True),
        input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32),
                         tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, 8, 8, None],
                                                                       tf.bool)])
    out = fn(proposals, gt_class_ids, gt_boxes, gt_masks)
    assert out[0].shape == (2, 12, 4)
    check_targets(proposals, gt_class_ids, gt_boxes, out, 12, 0.33)


def test_more_rois_than_proposals():
    proposals, gt_class_ids, gt_boxes = scene(seed=2, num_proposals=20)
    out = run(proposals, gt_class_ids, gt_boxes, num_rois=50, ratio=0.5)
    check_targets(proposals, gt_class_ids, gt_boxes, out, 50, 0.5)


def test_bad_shapes_are_named():
    proposals, gt_class_ids, gt_boxes = scene()
    with pytest.raises(ValueError, match="gt_masks"):
        detection_targets(proposals, gt_class_ids, gt_boxes, np.ones((2, 8, 8, 5), bool),
                          10, 0.33, STD, (6, 6), True)
    with pytest.raises(ValueError, match="roi_positive_ratio"):
        detection_targets(proposals, gt_class_ids, gt_boxes, np.ones((2, 8, 8, 3), bool),
                          10, 0.0, STD, (6, 6), True)


# ---------------------------------------------------------------- the three pieces
def test_match_proposals_by_hand():
    # One image: GT 0 an instance, GT 1 a crowd region, GT 2 padding.
    gt_class_ids = const([[3, -1, 0]])
    gt_boxes = const([[[0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
    proposals = const([[[0.0, 0.0, 0.5, 0.5],      # IoU 1 with the instance: positive
                        [0.0, 0.0, 0.5, 0.25],     # IoU 0.5: positive (>= 0.5)
                        [0.0, 0.0, 0.5, 0.2],      # IoU 0.4: negative
                        [0.7, 0.7, 0.9, 0.9],      # inside the crowd: neither
                        [0.0, 0.0, 0.0, 0.0]]])    # padding: neither
    positive, negative, matched = as_numpy(match_proposals(proposals, gt_class_ids, gt_boxes))
    np.testing.assert_array_equal(positive[0], [True, True, False, False, False])
    np.testing.assert_array_equal(negative[0], [False, False, True, False, False])
    np.testing.assert_array_equal(matched[0, :2], [0, 0])


def test_sample_rois_counts_follow_matterports_rule():
    positive = np.zeros((2, 30), bool)
    negative = np.zeros((2, 30), bool)
    positive[0, :3], negative[0, 3:] = True, True      # 3 positives, 27 negatives
    negative[1, :] = True                              # no positive at all
    index, is_positive, is_selected = as_numpy(sample_rois(positive, negative, 12, 0.33,
                                                           seed=5))
    # Image 0: int(12 * 0.33) = 3 positive slots, then int(3 / 0.33) - 3 = 6 negatives.
    np.testing.assert_array_equal(is_positive[0], [True] * 3 + [False] * 9)
    np.testing.assert_array_equal(is_selected[0], [True] * 9 + [False] * 3)
    assert sorted(index[0, :3]) == [0, 1, 2]
    assert len(set(index[0, 3:9])) == 6 and min(index[0, 3:9]) >= 3
    # Image 1: no positive means no negative (Matterport's rule).
    assert not is_selected[1].any()


def test_box_targets_invert_onto_the_ground_truth():
    rois = const([[[0.1, 0.1, 0.4, 0.3], [0.2, 0.2, 0.6, 0.7]]])
    gt = const([[[0.15, 0.05, 0.5, 0.35], [0.0, 0.0, 0.1, 0.1]]])
    deltas = as_numpy(box_targets(rois, gt, np.array([[True, False]]), STD))
    np.testing.assert_allclose(as_numpy(apply_box_deltas(rois[0, :1], deltas[0, :1] * STD)),
                               gt[0, :1], atol=1e-6)
    assert not deltas[0, 1].any()  # not a positive: no target


def test_mask_targets_crop_the_mini_mask_to_the_roi():
    # A 4x4 mini mask whose left half is on, for a GT box (0.2, 0.2, 0.6, 0.6); the
    # ROI is the GT box's left half, so its whole crop is on; a second slot is not a
    # positive.
    mini = np.zeros((1, 4, 4, 1), np.float32)
    mini[0, :, :2, 0] = 1.0
    gt_box = const([[[0.2, 0.2, 0.6, 0.6], [0.2, 0.2, 0.6, 0.6]]])
    rois = const([[[0.2, 0.2, 0.6, 0.3], [0.2, 0.2, 0.6, 0.3]]])
    masks = as_numpy(mask_targets(rois, gt_box, np.zeros((1, 2), np.int32), mini,
                                  np.array([[True, False]]), (3, 3), True))
    np.testing.assert_array_equal(masks[0, 0], np.ones((3, 3)))
    assert not masks[0, 1].any()
