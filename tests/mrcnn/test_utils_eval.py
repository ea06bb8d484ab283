"""mrcnn.utils evaluation: compute_matches, compute_ap, compute_ap_range, compute_recall."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn import utils

H = W = 20


def _masks_from_boxes(boxes):
    """bool [H, W, N] masks filling each pixel box (y1, x1, y2, x2)."""
    masks = np.zeros((H, W, len(boxes)), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return masks


def _instances(boxes, class_ids):
    boxes = np.array(boxes, dtype=np.int32).reshape(-1, 4)
    return boxes, np.array(class_ids, dtype=np.int32), _masks_from_boxes(boxes)


GT = _instances([[0, 0, 5, 5], [10, 10, 15, 15]], [1, 1])


def test_compute_ap_two_gt_three_predictions_by_hand():
    # Given in shuffled order; by score: TP (gt 0), FP, TP (gt 1).
    pred_boxes, pred_ids, pred_masks = _instances(
        [[10, 10, 15, 15], [0, 0, 5, 5], [0, 15, 5, 20]], [1, 1, 1])
    scores = np.array([0.7, 0.9, 0.8])
    ap, precisions, recalls, overlaps = utils.compute_ap(
        *GT, pred_boxes, pred_ids, scores, pred_masks)
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1:
    # AP = 0.5 * 1 + 0.5 * 2/3
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    np.testing.assert_allclose(recalls, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(precisions, [1, 1, 2 / 3, 2 / 3, 0])
    np.testing.assert_allclose(overlaps, [[1, 0], [0, 0], [0, 1]])


def test_compute_matches_order_class_and_duplicates():
    pred_boxes, pred_ids, pred_masks = _instances(
        [[0, 0, 5, 5], [0, 0, 5, 4], [10, 10, 15, 15], [0, 0, 5, 5]], [1, 1, 2, 1])
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    gt_match, pred_match, overlaps = utils.compute_matches(
        *GT, pred_boxes, pred_ids, scores, pred_masks)
    # Sorted by score: pred 1 (IoU 0.8 with gt 0), pred 2 (wrong class), pred 0
    # (duplicate of an already matched gt), pred 3 (duplicate).
    assert pred_match.tolist() == [0, -1, -1, -1]
    assert gt_match.tolist() == [0, -1]
    assert overlaps[:, 0] == pytest.approx([0.8, 0, 1, 1])


def test_compute_matches_prefers_same_class_over_higher_iou():
    gt = _instances([[0, 0, 10, 10], [0, 0, 10, 6]], [2, 1])
    pred = _instances([[0, 0, 10, 10]], [1])
    gt_match, pred_match, overlaps = utils.compute_matches(*gt, pred[0], pred[1], [0.9],
                                                           pred[2])
    assert pred_match.tolist() == [1] and gt_match.tolist() == [-1, 0]
    assert overlaps[0].tolist() == pytest.approx([1.0, 0.6])


def test_iou_threshold_decides_a_match():
    pred = _instances([[0, 0, 5, 2]], [1])  # IoU with gt 0: 10 / 25 = 0.4
    ap_strict = utils.compute_ap(*GT, pred[0], pred[1], [0.9], pred[2], iou_threshold=0.5)[0]
    ap_loose = utils.compute_ap(*GT, pred[0], pred[1], [0.9], pred[2], iou_threshold=0.3)[0]
    assert ap_strict == 0.0
    assert ap_loose == pytest.approx(0.5)  # precision 1 up to recall 1/2


def test_padding_rows_are_ignored():
    pred_boxes, pred_ids, pred_masks = _instances([[0, 0, 5, 5], [0, 0, 0, 0]], [1, 0])
    gt_boxes = np.concatenate([GT[0], np.zeros((2, 4), np.int32)])
    gt_ids = np.concatenate([GT[1], [0, 0]])
    gt_masks = np.concatenate([GT[2], np.zeros((H, W, 2), bool)], axis=-1)
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_boxes, gt_ids, gt_masks, pred_boxes, pred_ids, [0.9, 0.0], pred_masks)
    assert overlaps.shape == (1, 2)
    assert gt_match.tolist() == [0, -1] and pred_match.tolist() == [0]


def test_no_predictions_and_no_ground_truth():
    empty = (np.zeros((0, 4)), np.zeros(0, np.int32), np.zeros((H, W, 0), bool))
    ap, precisions, recalls, overlaps = utils.compute_ap(*GT, *empty[:2], np.zeros(0),
                                                         empty[2])
    assert ap == 0.0 and overlaps.shape == (0, 2)
    ap, *_ = utils.compute_ap(*empty, *GT[:2], [0.5, 0.4], GT[2])
    assert math.isnan(ap)  # AP is undefined without ground truth


def test_compute_ap_range(capsys):
    # A 4x4 mask inside the 5x5 gt 0: IoU 16/25 = 0.64, a hit at 0.5, 0.55, 0.6 only.
    pred = _instances([[0, 0, 5, 5], [10, 10, 15, 15]], [1, 1])
    pred[2][:, 4, 0] = False
    pred[2][4, :, 0] = False
    ap = utils.compute_ap_range(*GT, pred[0], pred[1], [0.9, 0.8], pred[2], verbose=1)
    # above 0.64 only gt 1 is found, by the second prediction: precision 1/2 at recall 1/2
    assert ap == pytest.approx((3 * 1.0 + 7 * 0.25) / 10)
    printed = capsys.readouterr().out
    assert "AP @0.50:\t 1.000" in printed and "AP @0.50-0.95:\t 0.475" in printed
    assert utils.compute_ap_range(*GT, *GT[:2], [0.9, 0.8], GT[2], verbose=0) == 1.0
    assert capsys.readouterr().out == ""


def test_compute_recall_hand_case():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]])
    pred = np.array([[0, 0, 10, 9], [1, 1, 10, 10], [20, 20, 26, 30], [60, 60, 70, 70]])
    recall, positive = utils.compute_recall(pred, gt, 0.7)
    # IoUs with their best gt: 0.9, 0.81, 0.6, 0 -> two predictions, one gt found
    assert positive.tolist() == [0, 1]
    assert recall == pytest.approx(1 / 3)
    recall, positive = utils.compute_recall(pred, gt, 0.5)
    assert positive.tolist() == [0, 1, 2] and recall == pytest.approx(2 / 3)


# ------------------------------------------------------ reference for matching
def _matches_reference(gt_ids, pred_ids, scores, overlaps_sorted, iou_threshold,
                       score_threshold):
    """Matterport's walk, written plainly: for each prediction by score, go down the
    ground truth by IoU, skip matched ones, stop below the IoU threshold, take the first
    of the same class."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    pred_ids = [pred_ids[i] for i in order]
    gt_match = [-1] * len(gt_ids)
    pred_match = [-1] * len(pred_ids)
    for i in range(len(pred_ids)):
        row = overlaps_sorted[i]
        ranked = sorted(range(len(gt_ids)), key=lambda j: (-row[j], j))
        for j in ranked:
            if row[j] < score_threshold:
                break
            if gt_match[j] > -1:
                continue
            if row[j] < iou_threshold:
                break
            if pred_ids[i] == gt_ids[j]:
                gt_match[j], pred_match[i] = i, j
                break
    return gt_match, pred_match


_box = st.tuples(st.integers(0, 14), st.integers(0, 14), st.integers(2, 6),
                 st.integers(2, 6)).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_box, st.integers(1, 2)), max_size=5),
       st.lists(st.tuples(_box, st.integers(1, 2), st.integers(0, 9)), max_size=7),
       st.sampled_from([0.3, 0.5, 0.7]), st.sampled_from([0.0, 0.2]))
def test_compute_matches_equals_matterport_walk(gt, pred, iou_threshold, score_threshold):
    gt_boxes, gt_ids, gt_masks = _instances([g[0] for g in gt], [g[1] for g in gt])
    pred_boxes, pred_ids, pred_masks = _instances([p[0] for p in pred], [p[1] for p in pred])
    scores = [p[2] / 10 for p in pred]
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_boxes, gt_ids, gt_masks, pred_boxes, pred_ids, scores, pred_masks,
        iou_threshold, score_threshold)
    ref_gt, ref_pred = _matches_reference(gt_ids.tolist(), pred_ids.tolist(), scores,
                                          overlaps.tolist(), iou_threshold, score_threshold)
    assert gt_match.tolist() == ref_gt
    assert pred_match.tolist() == ref_pred
    # And the AP built on it is a valid area under a monotone envelope.
    if gt:
        ap, precisions, recalls, _ = utils.compute_ap(
            gt_boxes, gt_ids, gt_masks, pred_boxes, pred_ids, scores, pred_masks,
            iou_threshold)
        assert 0.0 <= ap <= 1.0
        assert np.all(np.diff(precisions) <= 0) and np.all(np.diff(recalls) >= 0)
