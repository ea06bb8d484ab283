"""mrcnn.utils box math and anchors: IoU, NMS, deltas, normalisation, anchors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn import utils
from mrcnn.config import Config


# ----------------------------------------------------------------- strategies
def _boxes(min_size=1, max_count=12, min_count=0, limit=64):
    """Integer pixel boxes [N, 4] with positive height and width."""
    box = st.tuples(st.integers(0, limit), st.integers(0, limit),
                    st.integers(min_size, limit), st.integers(min_size, limit)).map(
        lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))
    return st.lists(box, min_size=min_count, max_size=max_count).map(
        lambda b: np.array(b, dtype=np.float64).reshape(-1, 4))


def _iou_reference(a, b):
    """Pure-Python IoU of two boxes, the same arithmetic as compute_iou."""
    inter = max(min(a[3], b[3]) - max(a[1], b[1]), 0) * max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


# ----------------------------------------------------------------------- IoU
def test_compute_iou_hand_case():
    box = np.array([0, 0, 10, 10])
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [0, 5, 10, 15], [20, 20, 30, 30]])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    iou = utils.compute_iou(box, boxes, 100.0, areas)
    np.testing.assert_allclose(iou, [1.0, 25 / 175, 50 / 150, 0.0])


@given(_boxes(), _boxes())
def test_compute_overlaps_matches_loop_reference(boxes1, boxes2):
    overlaps = utils.compute_overlaps(boxes1, boxes2)
    assert overlaps.shape == (len(boxes1), len(boxes2))
    for i, a in enumerate(boxes1):
        for j, b in enumerate(boxes2):
            assert overlaps[i, j] == pytest.approx(_iou_reference(a, b), abs=1e-12)


@given(_boxes(min_count=1), _boxes(min_count=1))
def test_iou_is_symmetric_and_in_unit_interval(boxes1, boxes2):
    ab = utils.compute_overlaps(boxes1, boxes2)
    ba = utils.compute_overlaps(boxes2, boxes1)
    np.testing.assert_allclose(ab, ba.T, atol=1e-12)
    assert np.all(ab >= 0) and np.all(ab <= 1)
    np.testing.assert_allclose(np.diag(utils.compute_overlaps(boxes1, boxes1)), 1.0)


def test_degenerate_boxes_have_zero_iou_not_nan():
    empty = np.array([[3, 3, 3, 3]], dtype=np.float64)
    assert utils.compute_overlaps(empty, empty).tolist() == [[0.0]]
    assert utils.compute_overlaps(np.zeros((0, 4)), empty).shape == (0, 1)


def test_bad_box_shape_is_named():
    with pytest.raises(ValueError, match="compute_overlaps.*boxes1"):
        utils.compute_overlaps(np.zeros((3, 5)), np.zeros((1, 4)))


# ----------------------------------------------------------------------- NMS
def _nms_reference(boxes, scores, threshold):
    """Textbook greedy NMS in pure Python (stable order for equal scores)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if _iou_reference(boxes[best], boxes[i]) <= threshold]
    return keep


@given(_boxes(max_count=25, limit=40), st.data(), st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_non_max_suppression_equals_greedy_reference(boxes, data, threshold):
    scores = data.draw(st.lists(st.integers(0, 5), min_size=len(boxes), max_size=len(boxes)))
    scores = np.array(scores, dtype=np.float64) / 5.0  # ties on purpose
    keep = utils.non_max_suppression(boxes, scores, threshold)
    assert keep.dtype == np.int32
    assert keep.tolist() == _nms_reference(boxes.tolist(), scores.tolist(), threshold)


def test_non_max_suppression_hand_case():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = np.array([0.6, 0.9, 0.5, 0.8])
    # Box 1 (best) suppresses box 0 (IoU 81/119 = 0.68) but not box 3 (IoU 72/118 = 0.61).
    assert utils.non_max_suppression(boxes, scores, 0.65).tolist() == [1, 3, 2]
    assert utils.non_max_suppression(boxes, scores, 0.6).tolist() == [1, 2]
    assert utils.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


# --------------------------------------------------------------------- deltas
def test_box_refinement_hand_case():
    deltas = utils.box_refinement(np.array([[0, 0, 10, 10]]), np.array([[5, 5, 15, 25]]))
    assert deltas.dtype == np.float32
    np.testing.assert_allclose(deltas, [[0.5, 1.0, 0.0, math.log(2.0)]], rtol=1e-6)


@given(_boxes(min_count=1, limit=500), st.data())
def test_apply_box_deltas_inverts_box_refinement(boxes, data):
    gt = data.draw(_boxes(min_count=len(boxes), max_count=len(boxes), limit=500))
    deltas = utils.box_refinement(boxes, gt)
    restored = utils.apply_box_deltas(boxes, deltas)
    assert restored.dtype == np.float32
    np.testing.assert_allclose(restored, gt, rtol=1e-5, atol=1e-3)


@given(_boxes(min_count=1, limit=200),
       st.lists(st.floats(-2, 2), min_size=4, max_size=4))
def test_box_refinement_inverts_apply_box_deltas(boxes, delta):
    deltas = np.tile(np.array(delta, dtype=np.float32), (len(boxes), 1))
    moved = utils.apply_box_deltas(boxes, deltas)
    np.testing.assert_allclose(utils.box_refinement(boxes, moved), deltas, atol=1e-4)


# ---------------------------------------------------------- norm / denorm, trim
def test_norm_boxes_hand_case():
    norm = utils.norm_boxes(np.array([[0, 0, 10, 10], [2, 4, 6, 11]]), (11, 21))
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm, [[0, 0, 0.9, 0.45], [0.2, 0.2, 0.5, 0.5]], rtol=1e-6)


@settings(max_examples=200)
@given(st.integers(2, 2048), st.integers(2, 2048), st.data())
def test_norm_denorm_round_trip(height, width, data):
    y = sorted(data.draw(st.lists(st.integers(0, height), min_size=2, max_size=2)))
    x = sorted(data.draw(st.lists(st.integers(0, width), min_size=2, max_size=2)))
    boxes = np.array([[y[0], x[0], y[1], x[1]]])
    back = utils.denorm_boxes(utils.norm_boxes(boxes, (height, width, 3)), (height, width))
    assert back.dtype == np.int32
    assert back.tolist() == boxes.tolist()


def test_trim_zeros():
    x = np.array([[0, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 1, 0]])
    assert utils.trim_zeros(x).tolist() == [[1, 2, 3, 4], [0, 0, 1, 0]]
    with pytest.raises(ValueError, match="2-D"):
        utils.trim_zeros(np.zeros(4))


# -------------------------------------------------------------------- anchors
def test_pyramid_anchor_count_for_default_config():
    class Default(Config):
        NAME = "default"

    config = Default()
    shapes = [[math.ceil(1024 / s)] * 2 for s in config.BACKBONE_STRIDES]
    anchors = utils.generate_pyramid_anchors(
        config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS, shapes, config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE)
    assert anchors.shape == (261888, 4)
    # Level boundaries: P2 has 256*256*3 anchors of scale 32, P6 ends with scale 512.
    np.testing.assert_allclose(anchors[0], [-16 * math.sqrt(2), -8 * math.sqrt(2),
                                            16 * math.sqrt(2), 8 * math.sqrt(2)])
    assert anchors[256 * 256 * 3 + 1].tolist() == [-32, -32, 32, 32]  # P3, ratio 1
    assert anchors[-2].tolist() == [15 * 64 - 256, 15 * 64 - 256, 15 * 64 + 256, 15 * 64 + 256]


def test_generate_anchors_small_case_by_hand():
    anchors = utils.generate_anchors(8, [0.5, 1, 2], (2, 3), 4, 1)
    assert anchors.shape == (2 * 3 * 3, 4)
    r = 4 * math.sqrt(2)  # half of 8 / sqrt(0.5)
    q = 2 * math.sqrt(2)  # half of 8 * sqrt(0.5)
    expected_first = [
        [-r, -q, r, q],          # cell (0, 0), ratio 0.5 (tall)
        [-4, -4, 4, 4],          # cell (0, 0), ratio 1
        [-q, -r, q, r],          # cell (0, 0), ratio 2 (wide)
        [-r, 4 - q, r, 4 + q],   # cell (0, 1): centre x = 4
    ]
    np.testing.assert_allclose(anchors[:4], expected_first, atol=1e-12)
    # Last anchor: cell (1, 2) -> centre (4, 8), ratio 2.
    np.testing.assert_allclose(anchors[-1], [4 - q, 8 - r, 4 + q, 8 + r], atol=1e-12)


def test_generate_anchors_scale_ratio_order_and_anchor_stride():
    anchors = utils.generate_anchors([8, 16], [1, 4], (4, 4), 2, 2)
    # anchor_stride 2 on a 4x4 map: centres (0, 0), (0, 4), (4, 0), (4, 4); 4 per cell
    assert anchors.shape == (4 * 4, 4)
    heights = anchors[:4, 2] - anchors[:4, 0]
    widths = anchors[:4, 3] - anchors[:4, 1]
    # ratio-major: (8, r1), (16, r1), (8, r4), (16, r4)
    np.testing.assert_allclose(heights, [8, 16, 4, 8])
    np.testing.assert_allclose(widths, [8, 16, 16, 32])
    centres = (anchors[::4, :2] + anchors[::4, 2:]) / 2
    assert centres.tolist() == [[0, 0], [0, 4], [4, 0], [4, 4]]


def test_utils_anchors_equal_graph_side_anchors():
    from mrcnn.ops import anchors as graph_anchors

    shapes = np.array([[16, 12], [8, 6], [4, 3]])
    args = ((16, 32, 64), [0.5, 1, 2], shapes, [4, 8, 16], 1)
    np.testing.assert_allclose(utils.generate_pyramid_anchors(*args),
                               graph_anchors.generate_pyramid_anchors(*args))


def test_generate_pyramid_anchors_rejects_mismatched_levels():
    with pytest.raises(ValueError, match="per level"):
        utils.generate_pyramid_anchors((32, 64), [1], [[4, 4]], [4, 8], 1)
