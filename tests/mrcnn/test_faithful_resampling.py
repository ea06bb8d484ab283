"""Faithful-mode resampling against scikit-image / SciPy called the original's way.

Each test builds the expected array with the library call the original Siamese Mask
R-CNN made (``skimage.transform.resize(order=1, mode="constant",
preserve_range=True, anti_aliasing=False)`` then ``astype`` truncation for images;
the same call thresholded for masks; ``scipy.ndimage.zoom(order=0)`` for instance
masks) and compares it with our public functions on the same arrays. The corrected
mode is checked to differ where the issue says it does (dark rims, thin masks).
"""

import numpy as np
import pytest
import scipy.ndimage
import skimage.transform

from mrcnn import utils
from mrcnn.config import Config, ConfigError
from mrcnn.data import load_image_gt


def original_resize(array, shape, preserve_range=True):
    return skimage.transform.resize(array, shape, order=1, mode="constant",
                                    preserve_range=preserve_range, anti_aliasing=False)


def original_resize_image(image, min_dim, max_dim):
    """The original's "square" resize_image, spelled out: scale, resize, pad, truncate."""
    h, w = image.shape[:2]
    scale = max(1, min_dim / min(h, w))
    if round(max(h, w) * scale) > max_dim:
        scale = max_dim / max(h, w)
    out = image
    if scale != 1:
        out = original_resize(image, (round(h * scale), round(w * scale)))
    top = (max_dim - out.shape[0]) // 2
    left = (max_dim - out.shape[1]) // 2
    out = np.pad(out, [(top, max_dim - out.shape[0] - top),
                       (left, max_dim - out.shape[1] - left), (0, 0)])
    return out.astype(image.dtype), scale


@pytest.mark.parametrize("shape, min_dim, max_dim", [
    ((37, 23, 3), 64, 128),     # up-scaled (the reference case)
    ((300, 170, 3), 100, 128),  # down-scaled by the max_dim cap
    ((48, 64, 3), 48, 64),      # scale 1: only padding
])
def test_resize_image_equals_the_original_call(shape, min_dim, max_dim):
    image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    expected, scale = original_resize_image(image, min_dim, max_dim)
    ours, window, our_scale, padding, _ = utils.resize_image(
        image, min_dim=min_dim, max_dim=max_dim, mode="square", resampling="faithful")
    assert our_scale == pytest.approx(scale)
    assert ours.dtype == np.uint8 and ours.shape == (max_dim, max_dim, 3)
    np.testing.assert_array_equal(ours, expected)
    # The geometry does not depend on the resampling.
    corrected = utils.resize_image(image, min_dim=min_dim, max_dim=max_dim, mode="square")
    assert corrected[1:4] == (window, our_scale, padding)


def test_faithful_upscale_darkens_the_rim_and_truncates():
    # Grey with one black pixel: scikit-image clips its output to the input's range,
    # so a crop without dark pixels keeps no rim; with one, the rim shows.
    flat = np.full((8, 8, 3), 200, np.uint8)
    flat[4, 4] = 0
    faithful = utils.resize_image(flat, min_dim=32, max_dim=32, resampling="faithful")[0]
    corrected = utils.resize_image(flat, min_dim=32, max_dim=32)[0]
    # x4: the first output pixel samples input coordinate -0.375, 37.5% zero.
    assert faithful[0, 0].tolist() == [78] * 3         # 200 * 0.625 * 0.625 = 78.1
    assert faithful[0, 8].tolist() == [125] * 3        # 200 * 0.625
    assert faithful[8, 8].tolist() == [200] * 3
    assert corrected[0, 0].tolist() == corrected[0, 8].tolist() == [200] * 3
    # Truncation: columns [0, 255] x4 give 95.625 at column 3 (row 3, inside): the
    # original truncates to 95, the corrected mode rounds to 96.
    ramp = np.array([[[0], [255]], [[0], [255]]], np.uint8)
    assert original_resize(ramp, (8, 8, 1))[3, 3, 0] == pytest.approx(95.625)
    assert utils.resize_image(ramp, max_dim=8, min_scale=4,
                              resampling="faithful")[0][3, 3, 0] == 95
    assert utils.resize_image(ramp, max_dim=8, min_scale=4)[0][3, 3, 0] == 96


def test_reference_resize_equals_the_original_call():
    from siamese_mrcnn.references import crop_reference, resize_reference
    crop = np.random.default_rng(5).integers(0, 256, (21, 30, 3), dtype=np.uint8)
    expected, _ = original_resize_image(crop, 48, 64)
    np.testing.assert_array_equal(resize_reference(crop, (48, 64), resampling="faithful"),
                                  expected)

    class RefConfig(Config):
        NAME = "ref"
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 64
        TARGET_MIN_DIM = 48
        TARGET_MAX_DIM = 64
        RESAMPLING = "faithful"

    image = np.zeros((64, 64, 3), np.uint8)
    image[10:31, 20:50] = crop
    # The config carries the choice down; the rim of the up-scaled crop is dark.
    ours = crop_reference(image, (10, 20, 31, 50), RefConfig())
    np.testing.assert_array_equal(ours, expected)
    corrected = crop_reference(image, (10, 20, 31, 50), RefConfig(), resampling="corrected")
    window = slice(11, 53)  # 21 x 64/30 = 44.8 -> 45 rows, centred
    assert corrected[window].mean() - ours[window].mean() > 1.0
    assert np.abs(ours[12, :].astype(int) - corrected[12, :].astype(int)).max() > 20


def test_resize_mask_equals_scipy_zoom_and_can_drop_an_instance():
    rng = np.random.default_rng(7)
    masks = rng.random((45, 61, 3)) > 0.6
    padding = [(2, 3), (0, 1), (0, 0)]
    for scale in (0.37, 1.6):
        expected = np.pad(scipy.ndimage.zoom(masks, [scale, scale, 1], order=0), padding)
        ours = utils.resize_mask(masks, scale, padding, resampling="faithful")
        np.testing.assert_array_equal(ours, expected)
    # A one-pixel instance at (1, 1): the corner-aligned zoom by 1/3 samples rows and
    # columns 0, 3, 6, ... and loses it; the pixel-centre rule samples 1, 4, 7, ...
    dot = np.zeros((30, 30, 1), bool)
    dot[1, 1, 0] = True
    no_pad = [(0, 0), (0, 0), (0, 0)]
    assert not utils.resize_mask(dot, 1 / 3, no_pad, resampling="faithful").any()
    assert utils.resize_mask(dot, 1 / 3, no_pad).sum() == 1


def test_mini_masks_equal_the_original_call():
    rng = np.random.default_rng(11)
    masks = np.zeros((40, 50, 3), bool)
    masks[3:20, 5:30, 0] = rng.random((17, 25)) > 0.3
    # A 3x3 blob missing one corner, up-scaled to 14x14: zeros blend into its rim
    # (scikit-image clips to the crop's range, so a solid crop would keep no rim).
    masks[30:33, 20:23, 1] = True
    masks[32, 22, 1] = False
    masks[5:35, 35:48, 2] = rng.random((30, 13)) > 0.5
    boxes = utils.extract_bboxes(masks)
    ours = utils.minimize_mask(boxes, masks, (14, 14), resampling="faithful")
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        crop = masks[y1:y2, x1:x2, i].astype(np.float64)
        expected = np.around(original_resize(crop, (14, 14), False)).astype(bool)
        np.testing.assert_array_equal(ours[:, :, i], expected)
    corrected = utils.minimize_mask(boxes, masks, (14, 14))
    assert corrected[0, 0, 1] and not ours[0, 0, 1]   # 0.61 * 0.61 of a 1: rounded away
    assert corrected[:, :, 1].sum() > ours[:, :, 1].sum()
    # ... and back into the boxes, the same call with np.around.
    full = utils.expand_mask(boxes, ours, (40, 50), resampling="faithful")
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        expected = np.around(original_resize(ours[:, :, i].astype(np.float64),
                                             (y2 - y1, x2 - x1), False)).astype(bool)
        np.testing.assert_array_equal(full[y1:y2, x1:x2, i], expected)
        assert full[:, :, i].sum() == expected.sum()  # nothing outside the box


def test_unmold_mask_equals_the_original_call_and_thins_at_the_edges():
    probs = np.random.default_rng(13).random((28, 28)).astype(np.float32)
    box = (5, 7, 60, 41)
    ours = utils.unmold_mask(probs, box, (80, 50, 3), resampling="faithful")
    expected = original_resize(probs, (55, 34), False) >= 0.5
    np.testing.assert_array_equal(ours[5:60, 7:41], expected)
    assert ours.sum() == expected.sum()
    # A mask of 0.6 (one 0 in the middle, so the clip to the input's range keeps
    # the blend): faithful loses the box's outermost rows and columns (0.6 * 0.75
    # < 0.5 there), corrected keeps them.
    probe = np.full((28, 28), 0.6, np.float32)
    probe[14, 14] = 0.0
    faithful = utils.unmold_mask(probe, (0, 0, 56, 56), (56, 56), resampling="faithful")
    corrected = utils.unmold_mask(probe, (0, 0, 56, 56), (56, 56))
    for edge in (faithful[0], faithful[-1], faithful[:, 0], faithful[:, -1]):
        assert not edge.any()
    assert faithful[1:20, 1:20].all()
    for edge in (corrected[0], corrected[-1], corrected[:, 0], corrected[:, -1]):
        assert edge.all()
    # A box sticking out of the image is cut at the border, as the original's
    # resize-then-paste would be inside it.
    clipped = utils.unmold_mask(probs, (-4, 30, 20, 58), (16, 50), resampling="faithful")
    whole = original_resize(probs, (24, 28), False) >= 0.5
    np.testing.assert_array_equal(clipped[0:16, 30:50], whole[4:20, 0:20])


class FaithfulShapes(Config):
    NAME = "faithful_shapes"
    NUM_CLASSES = 4
    IMAGE_MIN_DIM = 100
    IMAGE_MAX_DIM = 128
    MINI_MASK_SHAPE = (14, 14)
    RESAMPLING = "faithful"


def test_config_carries_faithful_resampling_into_training_ground_truth():
    from samples.shapes.shapes import ShapesDataset
    dataset = ShapesDataset()
    dataset.load_shapes(2, 72, 90, seed=4)
    dataset.prepare()
    config = FaithfulShapes()
    image, meta, class_ids, boxes, mini = load_image_gt(dataset, config, 0)
    original = dataset.load_image(0)
    expected, scale = original_resize_image(original, 100, 128)
    np.testing.assert_array_equal(image, expected)
    masks, _ = dataset.load_mask(0)
    padding = utils.resize_image(original, min_dim=100, max_dim=128)[3]  # same geometry
    zoomed = np.pad(scipy.ndimage.zoom(masks.astype(bool), [scale, scale, 1], order=0),
                    padding)
    keep = zoomed.any(axis=(0, 1))
    np.testing.assert_array_equal(boxes, utils.extract_bboxes(zoomed[:, :, keep]))
    np.testing.assert_array_equal(
        mini, utils.minimize_mask(boxes, zoomed[:, :, keep], (14, 14), resampling="faithful"))
    with pytest.raises(ConfigError, match="RESAMPLING"):
        type("Bad", (FaithfulShapes,), {"RESAMPLING": "skimage"})()
    with pytest.raises(ValueError, match="resampling must be one of"):
        utils.resize_image(original, max_dim=128, resampling="fast")


def test_model_molds_references_and_unmolds_masks_by_its_config(tmp_path):
    from siamese_mrcnn.model import SiameseMaskRCNN
    from tests.configs import TinySiameseConfig

    config = type("FaithfulTiny", (TinySiameseConfig,), {"RESAMPLING": "faithful"})()
    model = SiameseMaskRCNN("inference", config, str(tmp_path))
    rng = np.random.default_rng(17)
    query = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    molded, metas, windows = model.mold_inputs([query])
    expected, _ = original_resize_image(query, 64, 64)
    np.testing.assert_allclose(molded[0] + np.float32(config.MEAN_PIXEL), expected, atol=1e-4)

    crop = rng.integers(0, 256, (13, 9, 3), dtype=np.uint8)
    reference = model.mold_references([crop], subtract_mean=False)[0]
    np.testing.assert_array_equal(reference, original_resize_image(crop, 24, 32)[0])

    # One detection covering rows 8..40, columns 4..44 of the query (pixels of the
    # original image), its 28x28 probabilities pasted the original's way.
    probs = rng.random((28, 28)).astype(np.float32)
    box = np.array([8, 4, 40, 44])
    window = windows[0]
    scale = (window[2] - window[0]) / 40.0
    molded_box = box * scale + np.array([window[0], window[1]] * 2)
    normalised = utils.norm_boxes(molded_box[None], (64, 64))[0]
    detections = np.zeros((config.DETECTION_MAX_INSTANCES, 6), np.float32)
    detections[0] = list(normalised) + [1, 0.9]
    masks = np.zeros((config.DETECTION_MAX_INSTANCES, 28, 28, 2), np.float32)
    masks[0, :, :, 1] = probs
    rois, _, _, full = model.unmold_detections(detections, masks, query.shape, (64, 64, 3),
                                               window)
    y1, x1, y2, x2 = rois[0]
    np.testing.assert_array_equal(rois[0], box)
    np.testing.assert_array_equal(full[y1:y2, x1:x2, 0],
                                  original_resize(probs, (y2 - y1, x2 - x1), False) >= 0.5)
