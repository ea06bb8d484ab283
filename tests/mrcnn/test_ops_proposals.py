"""RPN proposals (mrcnn.ops.proposals) against a per-image greedy numpy reference."""

import numpy as np

from mrcnn.ops.anchors import feature_shapes_for, pyramid_anchors_normalised
from mrcnn.ops.boxes import box_overlaps
from mrcnn.ops.proposals import batched_nms, generate_proposals
from tests.backend import as_numpy, const, tensorflow_only
from tests.mrcnn import numpy_reference as ref

STD = [0.1, 0.1, 0.2, 0.2]


def reference_proposals(probs, deltas, anchors, proposal_count, nms_threshold, pre_nms_limit):
    out = np.zeros((probs.shape[0], proposal_count, 4))
    for b in range(probs.shape[0]):
        scores = probs[b, :, 1]
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[:pre_nms_limit]
        boxes = [ref.clip(ref.apply_deltas(anchors[i], deltas[b, i] * STD), [0, 0, 1, 1])
                 for i in top]
        kept = ref.greedy_nms(boxes, [scores[i] for i in top], nms_threshold, proposal_count)
        for row, k in enumerate(kept):
            out[b, row] = boxes[k]
    return out


def tiny_anchors():
    image_shape = [64, 64]
    strides = [8, 16, 32]
    return pyramid_anchors_normalised([12, 24, 48], [0.5, 1, 2],
                                      feature_shapes_for(image_shape, strides), strides, 1,
                                      image_shape)


def test_nms_iou_convention_matches_box_overlaps():
    # IoU exactly 0.5 under the no +1 convention: kept at threshold 0.5, dropped below.
    boxes = const([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5]]])
    assert abs(float(as_numpy(box_overlaps(boxes[0], boxes[0]))[0, 1]) - 0.5) < 1e-7
    scores = const([[0.9, 0.8]])
    _, _, kept_at = as_numpy(batched_nms(boxes, scores, 5, 0.5))
    _, _, kept_below = as_numpy(batched_nms(boxes, scores, 5, 0.49))
    assert int(kept_at[0]) == 2 and int(kept_below[0]) == 1


def test_batched_nms_matches_greedy_reference():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0.2, 0.8, size=(2, 40, 2))
    sizes = rng.uniform(0.05, 0.3, size=(2, 40, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1).astype(np.float32)
    scores = rng.uniform(size=(2, 40)).astype(np.float32)
    out_boxes, out_scores, valid = as_numpy(batched_nms(boxes, scores, 30, 0.3))
    for b in range(2):
        kept = ref.greedy_nms(boxes[b], scores[b], 0.3, 30)
        assert 0 < len(kept) < 30  # suppression happened and was not capped
        assert int(valid[b]) == len(kept)
        np.testing.assert_allclose(out_boxes[b, :len(kept)], boxes[b, kept])
        np.testing.assert_allclose(out_scores[b, :len(kept)], scores[b, kept])
        assert not out_boxes[b, len(kept):].any()


def test_generate_proposals_matches_reference():
    anchors = tiny_anchors()  # 64 + 16 + 4 cells x 3 ratios = 252 anchors
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, len(anchors), 2))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(size=(2, len(anchors), 4)).astype(np.float32)
    proposals = as_numpy(generate_proposals(probs, deltas, anchors, proposal_count=40,
                                            nms_threshold=0.7, pre_nms_limit=100,
                                            rpn_bbox_std_dev=STD))
    expected = reference_proposals(probs, deltas, anchors, 40, 0.7, 100)
    assert proposals.shape == (2, 40, 4)
    np.testing.assert_allclose(proposals, expected, atol=1e-5)
    assert not np.allclose(proposals[0], proposals[1])
    assert proposals.min() >= 0 and proposals.max() <= 1


def test_generate_proposals_pads_with_zeros_and_accepts_batched_anchors():
    anchors = tiny_anchors()
    rng = np.random.default_rng(5)
    probs = rng.uniform(size=(2, len(anchors), 2)).astype(np.float32)
    deltas = np.zeros((2, len(anchors), 4), np.float32)
    # pre_nms_limit 6 leaves at most 6 boxes; the rest of the 20 rows are zero
    batched = np.broadcast_to(anchors, (2,) + anchors.shape)
    proposals = as_numpy(generate_proposals(probs, deltas, batched, 20, 0.5, 6, STD))
    expected = reference_proposals(probs, deltas, anchors, 20, 0.5, 6)
    np.testing.assert_allclose(proposals, expected, atol=1e-6)
    assert not proposals[:, 6:].any()
    assert (np.abs(proposals[:, 0]).sum(-1) > 0).all()


@tensorflow_only
def test_generate_proposals_in_tf_function_with_unknown_batch():
    import tensorflow as tf

    anchors = tiny_anchors()
    fn = tf.function(lambda p, d: generate_proposals(p, d, anchors, 10, 0.7, 50, STD),
                     input_signature=[tf.TensorSpec([None, len(anchors), 2]),
                                      tf.TensorSpec([None, len(anchors), 4])])
    rng = np.random.default_rng(6)
    probs = rng.uniform(size=(3, len(anchors), 2)).astype(np.float32)
    deltas = rng.normal(size=(3, len(anchors), 4)).astype(np.float32)
    out = fn(probs, deltas).numpy()
    np.testing.assert_allclose(out, reference_proposals(probs, deltas, anchors, 10, 0.7, 50),
                               atol=1e-5)
