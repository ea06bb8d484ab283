"""mrcnn.ops.native on the running backend against the slow numpy references.

Each backend has its own implementation (TensorFlow kernels, torchvision.ops, static
keras.ops for JAX); all must follow one set of conventions (the module docstring of
``mrcnn.ops.native``), which ``tests/mrcnn/numpy_reference.py`` spells out loop by loop.
"""

import numpy as np
import pytest
from keras import ops

from mrcnn.ops import native
from tests.backend import BACKEND, as_numpy, const, gradients
from tests.mrcnn import numpy_reference as ref

jax_only = pytest.mark.skipif(BACKEND != "jax", reason="jax.jit of the static-shape code")

IMAGE_2X2 = const([[[[1.0], [2.0]], [[3.0], [4.0]]]])  # [1, 2, 2, 1]


def crop(images, boxes, box_indices, crop_size):
    return as_numpy(native.crop_and_resize(const(images), const(boxes),
                                           const(box_indices, "int32"), crop_size))


def reference_crops(images, boxes, box_indices, crop_h, crop_w):
    return np.stack([ref.crop_and_resize(images[n], box, crop_h, crop_w)
                     for box, n in zip(boxes, box_indices)])


def random_crop_boxes(rng, count, low=-0.3, high=1.3):
    """Boxes reaching past the image on every side, about half of them flipped
    (y1 > y2 or x1 > x2), none thinner than 0.05."""
    y = rng.uniform(low, high, size=(count, 2))
    x = rng.uniform(low, high, size=(count, 2))
    y[:, 1] = np.where(np.abs(y[:, 1] - y[:, 0]) < 0.05, y[:, 0] + 0.3, y[:, 1])
    x[:, 1] = np.where(np.abs(x[:, 1] - x[:, 0]) < 0.05, x[:, 0] - 0.3, x[:, 1])
    return const(np.stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]], axis=-1))


# ------------------------------------------------------------------ crop_and_resize
@pytest.mark.parametrize("box, crop_size, expected", [
    # first and last samples on the box edges: rows and columns 0, 0.5, 1
    ([0.0, 0.0, 1.0, 1.0], 3, [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]),
    # one sample: the box centre
    ([0.0, 0.0, 1.0, 1.0], 1, [[2.5]]),
    # one row at the centre, three columns edge to edge
    ([0.0, 0.0, 1.0, 1.0], (1, 3), [[2.0, 2.5, 3.0]]),
    # a flipped box samples in reverse
    ([1.0, 1.0, 0.0, 0.0], 2, [[4.0, 3.0], [2.0, 1.0]]),
    # samples at 1.5 lie outside the image: 0, not the edge value
    ([0.5, 0.5, 1.5, 1.5], 2, [[2.5, 0.0], [0.0, 0.0]]),
    ([-1.0, 0.0, 0.0, 1.0], 2, [[0.0, 0.0], [1.0, 2.0]]),
    ([0.25, 0.0, 0.25, 1.0], (2, 2), [[1.5, 2.5], [1.5, 2.5]]),
])
def test_crop_and_resize_hand_cases_on_a_2x2_image(box, crop_size, expected):
    out = crop(IMAGE_2X2, [box], [0], crop_size)
    expected = np.asarray(expected, np.float32)[None, :, :, None]
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # the reference agrees with the hand numbers, so the tests below can trust it
    np.testing.assert_allclose(reference_crops(IMAGE_2X2, [box], [0], *expected.shape[1:3]),
                               expected, atol=1e-12)


@pytest.mark.parametrize("crop_size", [1, (3, 5), (6, 4)])
def test_crop_and_resize_matches_reference_on_a_batch(crop_size):
    rng = np.random.default_rng(sum(np.atleast_1d(crop_size)))
    images = const(rng.normal(size=(3, 7, 9, 2)))
    boxes = random_crop_boxes(rng, 12)
    box_indices = np.array([0, 1, 2] * 4, np.int32)
    ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    out = crop(images, boxes, box_indices, crop_size)
    expected = reference_crops(images, boxes, box_indices, ch, cw)
    assert out.shape == (12, ch, cw, 2)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    if ch * cw > 1:
        # the boxes exercised both sides of the image border
        assert (expected == 0).any() and (expected != 0).any()


def test_crop_and_resize_without_boxes():
    images = const(np.ones((2, 4, 4, 3)))
    out = crop(images, np.zeros((0, 4)), np.zeros((0,)), (3, 2))
    assert out.shape == (0, 3, 2, 3)


def test_crop_and_resize_gradient_on_a_2x2_image():
    # A 3x3 crop of the whole image samples each axis at 0, 0.5, 1: every pixel gets
    # weight 1 + 0.5 = 1.5 per axis, 2.25 in all.
    (grad,) = gradients(
        lambda image: ops.sum(native.crop_and_resize(image, const([[0.0, 0.0, 1.0, 1.0]]),
                                                     const([0]), 3)), [IMAGE_2X2])
    np.testing.assert_allclose(grad, np.full((1, 2, 2, 1), 2.25), atol=1e-6)


def test_crop_and_resize_gradient_is_the_transposed_sampling():
    """d sum(w * crops) / d images is exact: the bilinear weights, summed per pixel."""
    rng = np.random.default_rng(7)
    images = const(rng.normal(size=(2, 4, 5, 1)))
    boxes = random_crop_boxes(rng, 5)
    box_indices = np.array([0, 1, 1, 0, 1], np.int32)
    weights = const(rng.normal(size=(5, 3, 4, 1)))

    def weighted_sum(image):
        crops = native.crop_and_resize(image, const(boxes), const(box_indices), (3, 4))
        return ops.sum(ops.multiply(crops, weights))

    (grad,) = gradients(weighted_sum, [images])
    expected = np.zeros(images.shape)
    for index in np.ndindex(*images.shape):
        basis = np.zeros(images.shape)
        basis[index] = 1.0
        expected[index] = (reference_crops(basis, boxes, box_indices, 3, 4) * weights).sum()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    assert (expected[0] != 0).any() and (expected[1] != 0).any()
    np.testing.assert_allclose(grad, expected, atol=1e-5)


def pyramid_inputs(seed):
    rng = np.random.default_rng(seed)
    maps = [const(rng.normal(size=(2, side, side, 3))) for side in (9, 5, 3, 2)]
    boxes = np.stack([random_crop_boxes(rng, 7, -0.1, 1.1) for _ in range(2)])
    # levels 0..2 only: level 3 holds no box, which every implementation must allow
    levels = np.array([[0, 1, 2, 0, 1, 2, 0], [2, 2, 1, 0, 0, 1, 2]], np.int32)
    return maps, boxes, levels


def test_pyramid_crop_and_resize_matches_reference():
    maps, boxes, levels = pyramid_inputs(0)
    out = as_numpy(native.pyramid_crop_and_resize(maps, boxes, levels, (3, 2)))
    assert out.shape == (2, 7, 3, 2, 3)
    for b in range(2):
        for r in range(7):
            expected = ref.crop_and_resize(maps[levels[b, r]][b], boxes[b, r], 3, 2)
            np.testing.assert_allclose(out[b, r], expected, atol=1e-5,
                                       err_msg=f"image {b} box {r} level {levels[b, r]}")


def test_pyramid_crop_and_resize_gradient_reaches_the_used_levels_only():
    maps, boxes, levels = pyramid_inputs(1)
    grads = gradients(
        lambda *feature_maps: ops.sum(native.pyramid_crop_and_resize(
            list(feature_maps), boxes, levels, 2)), maps)
    for grad in grads[:3]:
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    # no box on level 3: its gradient is zero (or absent, where nothing flows)
    assert grads[3] is None or not np.asarray(grads[3]).any()


# ------------------------------------------------------------------ batched_nms
def nms(boxes, scores, max_output_size, iou_threshold, **kwargs):
    return as_numpy(native.batched_nms(const(boxes), const(scores), max_output_size,
                                       iou_threshold, **kwargs))


def check_against_reference(result, boxes, scores, kept_per_image, classes=None):
    out_boxes, out_scores, out_classes, count = result
    size = out_scores.shape[1]
    assert out_boxes.shape == (len(boxes), size, 4)
    assert out_classes.dtype == np.int32 and count.dtype == np.int32
    for b, kept in enumerate(kept_per_image):
        n = len(kept)
        assert count[b] == n, f"image {b}"
        np.testing.assert_array_equal(out_boxes[b, :n], boxes[b][kept])
        np.testing.assert_array_equal(out_scores[b, :n], scores[b][kept])
        expected_classes = np.zeros(n, np.int32) if classes is None else classes[b][kept]
        np.testing.assert_array_equal(out_classes[b, :n], expected_classes)
        assert not out_boxes[b, n:].any() and not out_scores[b, n:].any()
        assert not out_classes[b, n:].any()


def test_nms_iou_has_no_plus_one_and_the_threshold_is_strict():
    # IoU 0.5 exactly (it would be (2 * 1.5) / (2 * 2) = 0.75 with +1 areas)
    boxes = const([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.5]]])
    scores = const([[0.9, 0.8]])
    assert ref.iou(boxes[0, 0], boxes[0, 1]) == 0.5
    _, _, _, count_at = nms(boxes, scores, 4, 0.5)
    _, _, _, count_below = nms(boxes, scores, 4, 0.49)
    assert count_at.tolist() == [2] and count_below.tolist() == [1]


def test_nms_hand_case_classes_valid_and_padding():
    boxes = const([[[0.0, 0.0, 1.0, 1.0],    # 0: class 0, kept first
                    [0.0, 0.0, 1.0, 1.0],    # 1: same box, class 1: kept
                    [0.0, 0.0, 1.0, 0.9],    # 2: class 0, IoU 0.9 with 0: suppressed
                    [0.1, 0.0, 1.0, 1.0],    # 3: invalid; would suppress 1 (IoU 0.9)
                    [5.0, 5.0, 6.0, 6.0],    # 4: score 0 is no reason to drop it
                    [5.0, 5.0, 6.0, 6.0]]])  # 5: invalid, higher score than 4
    scores = const([[0.9, 0.8, 0.7, 0.95, 0.0, 0.6]])
    classes = const([[0, 1, 0, 1, 0, 0]])
    valid = np.array([[True, True, True, False, True, False]])
    result = nms(boxes, scores, 6, 0.5, valid=valid, classes=classes, num_classes=2)
    check_against_reference(result, boxes, scores, [[0, 1, 4]], classes)
    assert result[0].shape == (1, 6, 4)
    # a cap of 2 keeps the best two
    result = nms(boxes, scores, 2, 0.5, valid=valid, classes=classes, num_classes=2)
    check_against_reference(result, boxes, scores, [[0, 1]], classes)


def test_nms_zero_boxes_suppress_nothing():
    # padding rows have an empty union: IoU 0 (not NaN), so identical zero boxes stay
    boxes = const(np.zeros((1, 3, 4)))
    scores = const([[0.3, 0.2, 0.1]])
    check_against_reference(nms(boxes, scores, 3, 0.1), boxes, scores, [[0, 1, 2]])


def clustered_candidates(rng, batch, count, num_classes):
    """Boxes in a few clusters (so NMS has work), distinct scores, random classes."""
    centres = rng.uniform(0.2, 0.8, size=(batch, 4, 2))[:, rng.integers(0, 4, count)]
    centres = centres + rng.normal(scale=0.04, size=(batch, count, 2))
    sizes = rng.uniform(0.1, 0.3, size=(batch, count, 2))
    boxes = const(np.concatenate([centres - sizes / 2, centres + sizes / 2], -1))
    scores = const(np.stack([rng.permutation(count) for _ in range(batch)]) / count + 0.01)
    classes = const(rng.integers(0, num_classes, size=(batch, count)))
    return boxes, scores, classes


@pytest.mark.parametrize("max_output_size, iou_threshold", [(6, 0.3), (50, 0.3), (50, 0.7)])
def test_nms_per_class_with_valid_mask_matches_reference(max_output_size, iou_threshold):
    rng = np.random.default_rng(max_output_size + int(10 * iou_threshold))
    boxes, scores, classes = clustered_candidates(rng, 4, 40, 3)
    valid = rng.uniform(size=(4, 40)) < 0.8
    valid[3] = False  # an image without candidates
    result = nms(boxes, scores, max_output_size, iou_threshold, valid=valid, classes=classes,
                 num_classes=3)
    kept = [ref.greedy_nms_per_class(boxes[b], scores[b], classes[b], valid[b], iou_threshold,
                                     max_output_size) for b in range(4)]
    check_against_reference(result, boxes, scores, kept, classes)
    assert kept[3] == []
    blind_differs = False
    for b in range(3):
        if max_output_size == 6:
            assert len(kept[b]) == 6  # the cap bites
        else:
            assert len(kept[b]) < valid[b].sum()  # suppression happened
        members = np.flatnonzero(valid[b])
        blind = ref.greedy_nms(boxes[b, members], scores[b, members], iou_threshold,
                               max_output_size)
        blind_differs |= [int(members[k]) for k in blind] != kept[b]
    assert blind_differs, "per-class suppression was not exercised"


def test_nms_without_classes_is_class_blind_greedy():
    rng = np.random.default_rng(11)
    boxes, scores, _ = clustered_candidates(rng, 2, 30, 1)
    result = nms(boxes, scores, 20, 0.4)
    kept = [ref.greedy_nms(boxes[b], scores[b], 0.4, 20) for b in range(2)]
    assert all(0 < len(k) < 20 for k in kept)
    check_against_reference(result, boxes, scores, kept)


def test_nms_without_candidate_rows():
    out_boxes, out_scores, out_classes, count = nms(np.zeros((2, 0, 4)), np.zeros((2, 0)), 3,
                                                    0.5)
    assert out_boxes.shape == (2, 3, 4) and out_scores.shape == (2, 3)
    assert out_classes.shape == (2, 3) and count.tolist() == [0, 0]
    assert not out_boxes.any() and not out_scores.any() and not out_classes.any()


# ------------------------------------------------------------------ JAX: compiled
@jax_only
def test_native_ops_under_jax_jit_equal_eager():
    import jax

    rng = np.random.default_rng(5)
    images = const(rng.normal(size=(3, 7, 9, 2)))
    boxes = random_crop_boxes(rng, 12)
    box_indices = const(rng.integers(0, 3, size=12))
    crop_fn = jax.jit(lambda i, b, n: native.crop_and_resize(i, b, n, (3, 5)))
    # XLA fuses the bilinear blend into multiply-adds: measured 1.3e-6 (3e-6 relative)
    # from eager on one sample of 0.40
    np.testing.assert_allclose(np.asarray(crop_fn(images, boxes, box_indices)),
                               crop(images, boxes, box_indices, (3, 5)), rtol=1e-5, atol=1e-6)

    maps, pyramid_boxes, levels = pyramid_inputs(2)
    pyramid_fn = jax.jit(lambda m, b, lv: native.pyramid_crop_and_resize(m, b, lv, (3, 2)))
    np.testing.assert_allclose(
        np.asarray(pyramid_fn(maps, pyramid_boxes, levels)),
        as_numpy(native.pyramid_crop_and_resize(maps, pyramid_boxes, levels, (3, 2))),
        rtol=1e-5, atol=1e-6)

    nms_boxes, scores, classes = clustered_candidates(rng, 3, 40, 3)
    valid = rng.uniform(size=(3, 40)) < 0.8
    nms_fn = jax.jit(lambda b, s, v, c: native.batched_nms(b, s, 10, 0.3, valid=v, classes=c,
                                                           num_classes=3))
    compiled = [np.asarray(t) for t in nms_fn(nms_boxes, scores, valid, classes)]
    eager = nms(nms_boxes, scores, 10, 0.3, valid=valid, classes=classes, num_classes=3)
    for got, want in zip(compiled, eager):
        np.testing.assert_array_equal(got, want)
    assert compiled[3].min() > 0
