"""Final detections (mrcnn.ops.detection) against a per-image, per-class numpy reference."""

import numpy as np

from mrcnn.ops.detection import refine_detections
from tests.backend import as_numpy, tensorflow_only
from tests.mrcnn import numpy_reference as ref

STD = np.array([0.1, 0.1, 0.2, 0.2])


def reference_detections(rois, probs, deltas, window, min_confidence, max_instances,
                         nms_threshold):
    out = np.zeros((rois.shape[0], max_instances, 6))
    for b in range(rois.shape[0]):
        candidates = []  # (score, class, box)
        for r in range(rois.shape[1]):
            if not rois[b, r].any():
                continue
            c = int(np.argmax(probs[b, r]))
            score = float(probs[b, r, c])
            if c == 0 or score < min_confidence:
                continue
            box = ref.clip(ref.apply_deltas(rois[b, r], deltas[b, r, c] * STD), window[b])
            candidates.append((score, c, box))
        kept = []
        for c in sorted({cand[1] for cand in candidates}):
            members = [cand for cand in candidates if cand[1] == c]
            keep = ref.greedy_nms([m[2] for m in members], [m[0] for m in members],
                                  nms_threshold, max_instances)
            kept += [members[k] for k in keep]
        kept.sort(key=lambda cand: -cand[0])
        for row, (score, c, box) in enumerate(kept[:max_instances]):
            out[b, row] = [*box, c, score]
    return out


def random_inputs(seed, rois_per_image=30, num_classes=4):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(2, rois_per_image, 2))
    sizes = rng.uniform(0.1, 0.4, size=(2, rois_per_image, 2))
    rois = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    rois[:, -3:] = 0.0  # padding
    logits = 3.0 * rng.normal(size=(2, rois_per_image, num_classes))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(size=(2, rois_per_image, num_classes, 4)).astype(np.float32)
    window = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 0.9, 1.0]], np.float32)
    return rois, probs, deltas, window


def test_refine_detections_matches_reference():
    rois, probs, deltas, window = random_inputs(0)
    out = as_numpy(refine_detections(rois, probs, deltas, window, STD, 0.5, 8, 0.3))
    expected = reference_detections(rois, probs, deltas, window, 0.5, 8, 0.3)
    assert out.shape == (2, 8, 6)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert (out[:, :, 4] > 0).sum() >= 6
    assert not np.allclose(out[0], out[1])


def test_refine_detections_matches_reference_with_room_to_spare():
    rois, probs, deltas, window = random_inputs(1, rois_per_image=40, num_classes=3)
    out = as_numpy(refine_detections(rois, probs, deltas, window, STD, 0.4, 50, 0.5))
    expected = reference_detections(rois, probs, deltas, window, 0.4, 50, 0.5)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not out[:, -5:].any()


def test_hand_case_nms_per_class_background_and_confidence():
    rois = np.array([[[0.1, 0.1, 0.5, 0.5],     # class 1, 0.9
                      [0.1, 0.1, 0.5, 0.52],    # class 1, 0.8: overlaps the first, dropped
                      [0.1, 0.1, 0.5, 0.5],     # class 2, 0.7: other class, kept
                      [0.6, 0.6, 0.9, 0.9],     # background
                      [0.6, 0.6, 0.9, 0.9],     # class 1 but 0.4 < 0.5
                      [0.5, 0.7, 0.8, 1.2]]],   # class 2, 0.6, clipped to the window
                    np.float32)
    probs = np.array([[[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7],
                       [0.8, 0.1, 0.1], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6]]], np.float32)
    deltas = np.zeros((1, 6, 3, 4), np.float32)
    window = np.array([[0.0, 0.0, 1.0, 1.0]], np.float32)
    out = as_numpy(refine_detections(rois, probs, deltas, window, STD, 0.5, 5, 0.3))[0]
    np.testing.assert_allclose(out, [[0.1, 0.1, 0.5, 0.5, 1, 0.9],
                                     [0.1, 0.1, 0.5, 0.5, 2, 0.7],
                                     [0.5, 0.7, 0.8, 1.0, 2, 0.6],
                                     [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], atol=1e-6)


def test_deltas_of_the_predicted_class_are_used():
    rois = np.array([[[0.2, 0.2, 0.4, 0.4]]], np.float32)
    probs = np.array([[[0.1, 0.2, 0.7]]], np.float32)
    deltas = np.zeros((1, 1, 3, 4), np.float32)
    deltas[0, 0, 2] = [1.0, 0.0, 0.0, 0.0]  # / std dy 0.1: shift by 0.1 * height 0.2
    deltas[0, 0, 1] = [0.0, 5.0, 0.0, 0.0]
    out = refine_detections(rois, probs, deltas, [0.0, 0.0, 1.0, 1.0], STD, 0.5, 2, 0.3)
    np.testing.assert_allclose(as_numpy(out)[0, 0], [0.22, 0.2, 0.42, 0.4, 2, 0.7], atol=1e-6)


def test_only_background_classes_gives_zeros():
    rois, probs, deltas, window = random_inputs(2)
    out = refine_detections(rois, probs[..., :1], deltas[..., :1, :], window, STD, 0.5, 4, 0.3)
    assert tuple(out.shape) == (2, 4, 6) and not as_numpy(out).any()


@tensorflow_only
def test_refine_detections_in_tf_function_with_unknown_shapes():
    import tensorflow as tf

    rois, probs, deltas, window = random_inputs(2)
    fn = tf.function(lambda r, p, d, w: refine_detections(r, p, d, w, STD, 0.5, 8, 0.3),
                     input_signature=[tf.TensorSpec([None, None, 4]),
                                      tf.TensorSpec([None, None, 4]),
                                      tf.TensorSpec([None, None, 4, 4]),
                                      tf.TensorSpec([None, 4])])
    np.testing.assert_allclose(fn(rois, probs, deltas, window).numpy(),
                               reference_detections(rois, probs, deltas, window, 0.5, 8, 0.3),
                               atol=1e-5)
