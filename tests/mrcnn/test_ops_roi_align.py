"""Pyramid level rule and pyramid ROI align (mrcnn.ops.roi_align) against numpy."""

import numpy as np
import pytest
from keras import ops

from mrcnn.ops.roi_align import pyramid_roi_align, roi_pyramid_level
from tests.backend import as_numpy, const, gradients, tensorflow_only
from tests.mrcnn import numpy_reference as ref


@pytest.mark.parametrize("side, level", [(224, 4), (112, 3), (448, 5), (56, 2), (28, 2),
                                         (1024, 5), (300, 4), (160, 4), (150, 3)])
def test_roi_level_hand_cases_on_1024_image(side, level):
    # sqrt(h*w) of a side-pixel square, normalised by the 1024 image side
    s = side / 1024.0
    box = const([[0.1, 0.1, 0.1 + s, 0.1 + s]])
    assert int(as_numpy(roi_pyramid_level(box, [1024, 1024]))[0]) == level


def test_roi_level_depends_on_image_area_and_handles_padding():
    # 224 pixels on a 512 image: normalised side 224 / 512, still P4
    s = 224 / 512.0
    boxes = const([[0.0, 0.0, s, s], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.4, 0.4]])
    levels = as_numpy(roi_pyramid_level(boxes, const([512, 512])))
    np.testing.assert_array_equal(levels, [4, 2, 2])


def make_inputs(seed=0, channels=3):
    rng = np.random.default_rng(seed)
    # P2..P5 of 16, 8, 4, 2 cells; the level rule is given a 448x448 image so that
    # normalised sides 0.1, 0.3, 0.6, 1.0 fall on P2, P3, P4, P5 (224 px = side 0.5)
    maps = [rng.normal(size=(2, 64 // s, 64 // s, channels)).astype(np.float32)
            for s in (4, 8, 16, 32)]
    sides = np.array([[0.1, 0.3, 0.6, 1.0, 0.0, 0.2], [0.9, 0.05, 0.45, 0.25, 0.7, 0.0]])
    starts = rng.uniform(0.0, 0.3, size=(2, 6, 2))
    boxes = np.concatenate([starts, starts + sides[..., None]], axis=-1).astype(np.float32)
    boxes[0, 4] = 0.0  # padding rows
    boxes[1, 5] = 0.0
    return maps, boxes


def test_pyramid_roi_align_matches_reference():
    maps, boxes = make_inputs()
    pooled = as_numpy(pyramid_roi_align(boxes, maps, (3, 4), [448, 448]))
    assert pooled.shape == (2, 6, 3, 4, 3)
    levels = set()
    for b in range(2):
        for r in range(6):
            level = ref.roi_level(boxes[b, r], 448 * 448)
            levels.add(level)
            expected = ref.crop_and_resize(maps[level - 2][b], boxes[b, r], 3, 4)
            np.testing.assert_allclose(pooled[b, r], expected, atol=1e-4,
                                       err_msg=f"image {b} roi {r} level {level}")
    assert levels == {2, 3, 4, 5}
    assert np.isfinite(pooled).all()


def test_pyramid_roi_align_gradient_reaches_feature_maps_without_nan():
    maps, boxes = make_inputs(seed=1, channels=2)
    grads = gradients(
        lambda *feature_maps: ops.sum(pyramid_roi_align(boxes, list(feature_maps), 2,
                                                        [448, 448])), maps)
    for g in grads:
        assert g is not None and np.isfinite(g).all()
    assert all(float(np.abs(g).sum()) > 0 for g in grads)


@tensorflow_only
def test_pyramid_roi_align_with_unknown_roi_count():
    import tensorflow as tf

    maps, boxes = make_inputs(seed=2, channels=2)
    fn = tf.function(lambda b: pyramid_roi_align(b, maps, 2, [64, 64]),
                     input_signature=[tf.TensorSpec([2, None, 4])])
    out = fn(boxes[:, :3]).numpy()
    np.testing.assert_allclose(out, pyramid_roi_align(boxes[:, :3], maps, 2, [64, 64]).numpy())


def test_pyramid_roi_align_rejects_wrong_level_count():
    maps, boxes = make_inputs()
    with pytest.raises(ValueError, match="P2..P5"):
        pyramid_roi_align(boxes, maps[:3], 2, [64, 64])
