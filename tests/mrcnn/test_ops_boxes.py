"""Box math (mrcnn.ops.boxes), meta parsing and anchors against hand cases and references."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.ops import anchors as anchor_ops
from mrcnn.ops.boxes import (apply_box_deltas, box_overlaps, clip_boxes, denorm_boxes,
                             encode_box_deltas, norm_boxes)
from mrcnn.ops.meta import parse_image_meta
from tests.backend import as_numpy, const
from tests.mrcnn import numpy_reference as ref


def random_boxes(rng, shape, low=0.0, high=1.0, min_size=0.02):
    y = np.sort(rng.uniform(low, high, size=shape + (2,)), axis=-1)
    x = np.sort(rng.uniform(low, high, size=shape + (2,)), axis=-1)
    y[..., 1] += min_size
    x[..., 1] += min_size
    return np.stack([y[..., 0], x[..., 0], y[..., 1], x[..., 1]], axis=-1).astype(np.float32)


def test_apply_box_deltas_hand_case():
    boxes = const([[0.0, 0.0, 10.0, 10.0]])
    deltas = const([[0.1, 0.2, math.log(2.0), 0.0]])
    # height 10 -> 20 about centre y 5 + 0.1 * 10 = 6; centre x 5 + 0.2 * 10 = 7
    np.testing.assert_allclose(as_numpy(apply_box_deltas(boxes, deltas)),
                               [[-4.0, 2.0, 16.0, 12.0]], atol=1e-5)


def test_encode_box_deltas_hand_case():
    boxes = const([[0.0, 0.0, 10.0, 20.0]])
    gt = const([[5.0, 0.0, 25.0, 10.0]])
    # centres (5, 10) -> (15, 5); sizes (10, 20) -> (20, 10)
    np.testing.assert_allclose(as_numpy(encode_box_deltas(boxes, gt)),
                               [[1.0, -0.25, math.log(2.0), math.log(0.5)]], atol=1e-6)


def test_apply_and_encode_match_reference_on_batch():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, (2, 5))
    gt = random_boxes(rng, (2, 5))
    deltas = rng.normal(scale=0.3, size=(2, 5, 4)).astype(np.float32)
    applied = as_numpy(apply_box_deltas(boxes, deltas))
    encoded = as_numpy(encode_box_deltas(boxes, gt))
    for b in range(2):
        for i in range(5):
            np.testing.assert_allclose(applied[b, i], ref.apply_deltas(boxes[b, i], deltas[b, i]),
                                       atol=1e-5)
            np.testing.assert_allclose(encoded[b, i], ref.encode(boxes[b, i], gt[b, i]),
                                       atol=1e-4)


box_coord = st.floats(-50.0, 50.0, allow_nan=False, width=32)
box_side = st.floats(0.5, 40.0, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.tuples(box_coord, box_coord, box_side, box_side),
       st.tuples(box_coord, box_coord, box_side, box_side))
def test_encode_then_apply_round_trip(a, b):
    src = np.array([a[0], a[1], a[0] + a[2], a[1] + a[3]], np.float32)
    dst = np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]], np.float32)
    decoded = as_numpy(apply_box_deltas(src, encode_box_deltas(src, dst)))
    np.testing.assert_allclose(decoded, dst, atol=1e-3 * (1 + np.abs(dst).max()))


def test_clip_boxes_hand_and_per_image_window():
    boxes = const([[[-0.5, 0.2, 0.5, 1.5], [1.2, 1.3, 1.5, 1.6]],
                   [[-0.5, 0.2, 0.5, 1.5], [0.1, 0.1, 0.2, 0.2]]])
    window = const([[[0.0, 0.0, 1.0, 1.0]], [[0.25, 0.25, 0.75, 0.75]]])
    clipped = as_numpy(clip_boxes(boxes, window))
    np.testing.assert_allclose(clipped[0], [[0.0, 0.2, 0.5, 1.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(clipped[1], [[0.25, 0.25, 0.5, 0.75],
                                            [0.25, 0.25, 0.25, 0.25]])


def test_box_overlaps_hand_cases():
    a = const([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    b = const([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0],
               [0.0, 0.0, 0.0, 0.0]])
    iou = as_numpy(box_overlaps(a, b))
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], atol=1e-6)
    assert not np.isnan(iou).any()


def test_box_overlaps_matches_reference_on_batch():
    rng = np.random.default_rng(1)
    boxes1 = random_boxes(rng, (2, 6))
    boxes2 = random_boxes(rng, (2, 4))
    iou = as_numpy(box_overlaps(boxes1, boxes2))
    assert iou.shape == (2, 6, 4)
    for b in range(2):
        np.testing.assert_allclose(iou[b], ref.overlaps(boxes1[b], boxes2[b]), atol=1e-6)
    assert not np.allclose(iou[0], iou[1])


def test_norm_boxes_hand_case_and_round_trip():
    pixel = np.array([[0, 0, 11, 21], [2, 3, 7, 9]], np.int32)
    normalised = as_numpy(norm_boxes(pixel, [11, 21]))
    np.testing.assert_allclose(normalised, [[0, 0, 1, 1], [0.2, 0.15, 0.6, 0.4]], atol=1e-6)
    np.testing.assert_array_equal(as_numpy(denorm_boxes(normalised, [11, 21])), pixel)


def test_norm_boxes_per_image_shape():
    pixel = np.array([[[0, 0, 11, 11]], [[0, 0, 21, 41]]], np.float32)
    shapes = np.array([[[11, 11]], [[21, 41]]], np.float32)
    np.testing.assert_allclose(as_numpy(norm_boxes(pixel, shapes)), [[[0, 0, 1, 1]]] * 2)


def test_parse_image_meta_layout():
    meta = np.array([[7, 480, 640, 3, 64, 64, 3, 8, 0, 56, 64, 0.1, 1, 1, 0],
                     [9, 100, 100, 3, 64, 64, 3, 0, 0, 64, 64, 0.64, 1, 0, 1]], np.float32)
    m = as_numpy(parse_image_meta(meta))
    np.testing.assert_array_equal(m["image_id"], [7, 9])
    np.testing.assert_array_equal(m["original_image_shape"][0], [480, 640, 3])
    np.testing.assert_array_equal(m["image_shape"][1], [64, 64, 3])
    np.testing.assert_array_equal(m["window"][0], [8, 0, 56, 64])
    np.testing.assert_allclose(m["scale"], [0.1, 0.64])
    np.testing.assert_array_equal(m["active_class_ids"], [[1, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="12 \\+ NUM_CLASSES"):
        parse_image_meta(np.zeros((1, 12), np.float32))


def test_level_anchors_hand_case():
    # 2x2 cells, stride 4, scale 4, ratios 1 and 4 (width 8, height 2)
    boxes = anchor_ops.generate_pyramid_anchors([4], [1, 4], [[2, 2]], [4], 1)
    expected = []
    for cy, cx in [(0, 0), (0, 4), (4, 0), (4, 4)]:
        expected.append([cy - 2, cx - 2, cy + 2, cx + 2])
        expected.append([cy - 1, cx - 4, cy + 1, cx + 4])
    np.testing.assert_allclose(boxes, expected)


def test_anchor_stride_and_count_for_1024():
    boxes = anchor_ops.generate_pyramid_anchors([8], [1], [[4, 4]], [4], 2)
    np.testing.assert_allclose(boxes[:, 0] + 4, [0, 0, 8, 8])
    shapes = anchor_ops.feature_shapes_for([1024, 1024, 3], [4, 8, 16, 32, 64])
    normalised = anchor_ops.pyramid_anchors_normalised(
        (32, 64, 128, 256, 512), [0.5, 1, 2], shapes, [4, 8, 16, 32, 64], 1, [1024, 1024])
    assert normalised.shape == (261888, 4) and normalised.dtype == np.float32
    # the first anchor: scale 32, ratio 0.5 at (0, 0): height 32 / sqrt(0.5)
    h = 32 / math.sqrt(0.5)
    w = 32 * math.sqrt(0.5)
    np.testing.assert_allclose(normalised[0], [-h / 2 / 1023, -w / 2 / 1023,
                                               (h / 2 - 1) / 1023, (w / 2 - 1) / 1023],
                               rtol=1e-6)


def test_normalised_anchors_equal_utils():
    utils = pytest.importorskip("mrcnn.utils")
    scales, ratios, strides = (8, 16, 32), [0.5, 1, 2], [4, 8, 16]
    image_shape = [64, 96]
    shapes = anchor_ops.feature_shapes_for(image_shape, strides)
    expected = utils.norm_boxes(
        utils.generate_pyramid_anchors(scales, ratios, shapes, strides, 1), image_shape)
    ours = anchor_ops.pyramid_anchors_normalised(scales, ratios, shapes, strides, 1, image_shape)
    np.testing.assert_array_equal(ours, expected)
