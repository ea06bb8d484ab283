"""The five losses (mrcnn.losses): hand-computed values, references, exact zeros."""

import math

import numpy as np
import pytest

from mrcnn import losses
from tests.backend import as_numpy, const, gradients


def assert_scalar(value, expected, atol=1e-6):
    value = as_numpy(value)
    assert value.dtype == np.float32 and value.shape == ()
    np.testing.assert_allclose(float(value), expected, atol=atol)


def test_smooth_l1_hand_values():
    y_true = const([0.0, 0.0, 3.0, -1.0, 2.0])
    y_pred = const([0.5, -2.0, 2.0, -1.0, 0.9999])
    # |x| = 0.5, 2, 1, 0, 1.0001 -> 0.125, 1.5, 0.5, 0, 0.5001
    np.testing.assert_allclose(as_numpy(losses.smooth_l1(y_true, y_pred)),
                               [0.125, 1.5, 0.5, 0.0, 0.5 * 1.0001 ** 2], atol=1e-5)


def test_rpn_class_loss_hand_value():
    # positive with p(fg) = 3/4, negative with p(bg) = 1/2, neutral ignored
    rpn_match = const([[[1], [-1], [0]], [[0], [0], [-1]]])
    logits = const([[[0.0, math.log(3.0)], [0.0, 0.0], [9.0, -9.0]],
                    [[5.0, 1.0], [1.0, 2.0], [math.log(4.0), 0.0]]])
    expected = (-math.log(0.75) - math.log(0.5) - math.log(0.8)) / 3
    assert_scalar(losses.rpn_class_loss(rpn_match, logits), expected)


def test_rpn_class_loss_zero_without_anchors_and_finite_gradient():
    logits = const(np.random.default_rng(0).normal(size=(2, 5, 2)))
    rpn_match = np.zeros((2, 5, 1), np.int32)
    assert float(as_numpy(losses.rpn_class_loss(rpn_match, logits))) == 0.0
    (grad,) = gradients(lambda x: losses.rpn_class_loss(rpn_match, x), [logits])
    assert grad is not None and not np.isnan(grad).any()


def test_rpn_bbox_loss_pairs_ith_positive_with_ith_row():
    rpn_match = np.array([[[0], [1], [-1], [1]], [[1], [0], [0], [0]]], np.int32)
    rpn_bbox = np.zeros((2, 4, 4), np.float32)
    rpn_bbox[0, 1] = [0.5, 0, 0, 0]  # first positive of image 0 -> target row 0
    rpn_bbox[0, 3] = [0, 3.0, 0, 0]  # second positive -> row 1
    rpn_bbox[1, 0] = [0, 0, 0, -1.0]
    rpn_bbox[0, 2] = [100, 100, 100, 100]  # negative: ignored
    target = np.zeros((2, 3, 4), np.float32)
    target[0, 1] = [0, 1.0, 0, 0]
    target[1, 0] = [0, 0, 0, 1.0]
    target[1, 2] = [50, 50, 50, 50]  # padding row beyond image 1's single positive
    # smooth L1 per element: 0.125; |2| -> 1.5; |2| -> 1.5; 12 elements over 3 positives
    assert_scalar(losses.rpn_bbox_loss(target, rpn_match, rpn_bbox), (0.125 + 1.5 + 1.5) / 12)


def test_rpn_bbox_loss_exact_zero_without_positives():
    rpn_bbox = const(np.random.default_rng(0).normal(size=(2, 6, 4)))
    target = np.ones((2, 3, 4), np.float32)
    negatives = -np.ones((2, 6, 1), np.int32)
    assert float(as_numpy(losses.rpn_bbox_loss(target, negatives, rpn_bbox))) == 0.0
    (grad,) = gradients(lambda x: losses.rpn_bbox_loss(target, negatives, x), [rpn_bbox])
    assert grad is None or not np.isnan(grad).any()
    no_rows = losses.rpn_bbox_loss(np.zeros((2, 0, 4), np.float32), np.ones((2, 6, 1), np.int32),
                                   rpn_bbox)
    assert float(as_numpy(no_rows)) == 0.0


def softmax_ce(logits, label):
    logits = np.asarray(logits, np.float64)
    return -(logits[label] - np.log(np.exp(logits).sum()))


def test_mrcnn_class_loss_plain_mean_and_active_masking():
    targets = np.array([[1, 0, 2], [0, 0, 1]], np.int32)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 3)).astype(np.float32)
    logits[0, 0] = [0, 0, 5]  # predicted class 2
    logits[1, 2] = [0, 5, 0]  # predicted class 1
    ce = np.array([[softmax_ce(logits[b, t], targets[b, t]) for t in range(3)]
                   for b in range(2)])
    assert_scalar(losses.mrcnn_class_loss(targets, logits), ce.mean(), atol=1e-5)
    # image 0 lacks class 2, image 1 lacks class 1: drop ROIs predicted as those
    active = np.array([[1, 1, 0], [1, 0, 1]], np.float32)
    predicted = logits.argmax(-1)
    counted = active[np.arange(2)[:, None], predicted] > 0
    assert not counted[0, 0] and not counted[1, 2]
    assert_scalar(losses.mrcnn_class_loss(targets, logits, active), ce[counted].mean(),
                  atol=1e-5)
    none_active = np.zeros((2, 3), np.float32)
    assert float(as_numpy(losses.mrcnn_class_loss(targets, logits, none_active))) == 0.0


def test_mrcnn_bbox_loss_uses_true_class_of_positives():
    target_bbox = np.zeros((2, 2, 4), np.float32)
    target_bbox[0, 0] = [1.0, 0, 0, 0]
    target_bbox[1, 1] = [0, 0, 3.0, 0]
    class_ids = np.array([[2, 0], [0, 1]], np.int32)
    pred = np.full((2, 2, 3, 4), 7.0, np.float32)  # wrong classes and negatives: ignored
    pred[0, 0, 2] = [0.0, 0, 0, 0]
    pred[1, 1, 1] = [0, 0, 0.5, 0]
    # elements: 0.5 (|1|) and 2.0 (|2.5|), the other 6 zero; 8 elements
    assert_scalar(losses.mrcnn_bbox_loss(target_bbox, class_ids, pred), 2.5 / 8)


def test_mrcnn_mask_loss_hand_value():
    target = np.zeros((1, 2, 2, 2), np.float32)
    target[0, 0] = [[1, 0], [1, 1]]
    class_ids = np.array([[1, 0]], np.int32)
    pred = np.full((1, 2, 2, 2, 2), 0.5, np.float32)
    pred[0, 0, :, :, 1] = [[0.8, 0.1], [0.5, 1.0]]
    expected = -(math.log(0.8) + math.log(0.9) + math.log(0.5) + math.log(1 - 1e-7)) / 4
    assert_scalar(losses.mrcnn_mask_loss(target, class_ids, pred), expected, atol=1e-5)


@pytest.mark.parametrize("loss_name", ["mrcnn_bbox_loss", "mrcnn_mask_loss"])
def test_head_losses_exact_zero_without_positives(loss_name):
    class_ids = np.zeros((2, 4), np.int32)
    rng = np.random.default_rng(0)
    if loss_name == "mrcnn_bbox_loss":
        pred = const(rng.normal(size=(2, 4, 3, 4)))
        target = np.ones((2, 4, 4), np.float32)
    else:
        pred = const(rng.uniform(size=(2, 4, 5, 5, 3)))
        target = np.ones((2, 4, 5, 5), np.float32)
    fn = lambda x: getattr(losses, loss_name)(target, class_ids, x)  # noqa: E731
    loss = as_numpy(fn(pred))
    assert loss.dtype == np.float32 and float(loss) == 0.0
    (grad,) = gradients(fn, [pred])
    assert grad is None or not np.isnan(grad).any()


def test_losses_are_float32_for_float16_inputs():
    logits = const([[[1.0, 2.0]]], np.float16)
    assert as_numpy(losses.rpn_class_loss(const([[[1]]]), logits)).dtype == np.float32
    pred = np.full((1, 1, 2, 2, 2), 0.5, np.float16)
    value = as_numpy(losses.mrcnn_mask_loss(np.ones((1, 1, 2, 2), np.float32), const([[1]]),
                                            pred))
    assert value.dtype == np.float32
    np.testing.assert_allclose(float(value), math.log(2.0), atol=1e-5)
