"""mrcnn.utils image/mask geometry: extract_bboxes, resize_image/resize_mask,
minimize_mask/expand_mask and unmold_mask."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from mrcnn import utils


# -------------------------------------------------------------- extract_bboxes
def test_extract_bboxes_hand_cases():
    mask = np.zeros((6, 7, 4), bool)
    mask[1:4, 2:6, 0] = True          # a rectangle
    mask[5, 6, 1] = True              # one pixel in the bottom-right corner
    mask[0, 0, 3] = mask[4, 3, 3] = True  # two blobs: the box spans both
    boxes = utils.extract_bboxes(mask)
    assert boxes.dtype == np.int32
    assert boxes.tolist() == [[1, 2, 4, 6], [5, 6, 6, 7], [0, 0, 0, 0], [0, 0, 5, 4]]


@settings(max_examples=60)
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9)))
def test_extract_bboxes_matches_loop_reference(mask):
    boxes = utils.extract_bboxes(mask)
    for i in range(mask.shape[-1]):
        ys, xs = np.where(mask[:, :, i])
        expected = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1] if ys.size else [0] * 4
        assert boxes[i].tolist() == expected


# ------------------------------------------------------- resize_image / resize_mask
def _content_image(height, width, seed=0):
    """uint8 image whose every pixel is non-zero, so zero marks padding."""
    return np.random.default_rng(seed).integers(1, 256, (height, width, 3), dtype=np.uint8)


CASES = [
    # mode, (h, w), kwargs
    ("none", (37, 50), {}),
    ("square", (60, 90), dict(min_dim=100, max_dim=128)),    # capped by max_dim
    ("square", (100, 50), dict(min_dim=64, max_dim=128)),    # scale 1.28 by min_dim
    ("square", (40, 50), dict(min_dim=20, max_dim=64)),      # scale 1: pad only
    ("pad64", (70, 100), dict(min_dim=64, max_dim=128)),
    ("pad64", (30, 41), dict(min_dim=64, min_scale=3)),
    ("crop", (50, 80), dict(min_dim=64)),
]


@pytest.mark.parametrize("mode,size,kwargs", CASES)
def test_resize_image_window_marks_content(mode, size, kwargs):
    image = _content_image(*size)
    out, window, scale, padding, crop = utils.resize_image(
        image, mode=mode, rng=np.random.default_rng(1), **kwargs)
    assert out.dtype == np.uint8
    y1, x1, y2, x2 = window
    content = np.zeros(out.shape[:2], bool)
    content[y1:y2, x1:x2] = True
    assert np.all(out[content] > 0) and np.all(out[~content] == 0)
    if mode == "crop":
        assert out.shape[:2] == (64, 64) and window == (0, 0, 64, 64)
        y, x, h, w = crop
        assert (h, w) == (64, 64)
        assert 0 <= y <= round(size[0] * scale) - 64 and 0 <= x <= round(size[1] * scale) - 64
    else:
        assert crop is None
        assert (y2 - y1, x2 - x1) == (round(size[0] * scale), round(size[1] * scale))
        assert [p[0] for p in padding[:2]] == [y1, x1]
        assert out.shape[:2] == tuple(s + p[0] + p[1] for s, p in zip(
            (y2 - y1, x2 - x1), padding[:2]))
    if mode == "square":
        assert out.shape[:2] == (kwargs["max_dim"],) * 2
        assert max(y2 - y1, x2 - x1) <= kwargs["max_dim"]
    if mode == "pad64":
        assert out.shape[0] % 64 == 0 and out.shape[1] % 64 == 0
        assert out.shape[0] - (y2 - y1) < 64 and out.shape[1] - (x2 - x1) < 64
    # A full-image mask resized with the same outputs covers exactly the content.
    full = utils.resize_mask(np.ones(size + (1,), bool), scale, padding, crop)
    assert full.dtype == bool and full.shape == out.shape[:2] + (1,)
    assert np.array_equal(full[..., 0], content)


@pytest.mark.parametrize("mode,size,kwargs", CASES)
def test_resize_mask_lies_on_the_image_content_it_marks(mode, size, kwargs):
    mask = np.zeros(size + (2,), bool)
    mask[5:25, 8:30, 0] = True
    mask[size[0] // 2:, size[1] // 3:, 1] = True
    # The image shows instance 0 as bright (250) on grey (60): its resized bright
    # pixels are where the resized mask should be.
    image = np.full(size + (3,), 60, np.uint8)
    image[mask[..., 0]] = 250
    out, window, scale, padding, crop = utils.resize_image(
        image, mode=mode, rng=np.random.default_rng(3), **kwargs)
    resized = utils.resize_mask(mask, scale, padding, crop)
    assert resized.shape == out.shape[:2] + (2,)
    bright = out[..., 0] > 155
    disagree = bright != resized[..., 0]
    if scale == 1:
        assert not disagree.any()
    else:
        # Bilinear vs nearest may differ only on the mask's one-pixel boundary band.
        edges = np.zeros_like(bright)
        inner = resized[..., 0]
        edges[1:-1, 1:-1] = (inner[1:-1, 1:-1] != inner[:-2, 1:-1]) | \
            (inner[1:-1, 1:-1] != inner[2:, 1:-1]) | (inner[1:-1, 1:-1] != inner[1:-1, :-2]) | \
            (inner[1:-1, 1:-1] != inner[1:-1, 2:])
        assert not (disagree & ~edges).any()
        assert disagree.sum() <= 0.5 * edges.sum()


def test_resize_image_scale_rules():
    tall = np.ones((100, 400, 3), np.uint8)
    # min_dim asks for 2x, max_dim caps the long side at 512
    _, _, scale, _, _ = utils.resize_image(tall, min_dim=200, max_dim=512, mode="square")
    assert scale == pytest.approx(512 / 400)
    # Large images are not shrunk by min_dim, and min_scale raises the scale.
    _, _, scale, _, _ = utils.resize_image(tall, min_dim=64, mode="pad64")
    assert scale == 1.0
    _, _, scale, _, _ = utils.resize_image(tall, min_dim=64, min_scale=1.5, mode="pad64")
    assert scale == 1.5


def test_resize_image_keeps_dtype_and_value_range():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 15:] = 255
    out, *_ = utils.resize_image(image, min_dim=40, max_dim=64, mode="square")
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    floats = image.astype(np.float32) / 255
    out, *_ = utils.resize_image(floats, min_dim=40, max_dim=64, mode="square")
    assert out.dtype == np.float32 and out.max() == pytest.approx(1.0)
    # Bilinear up-sampling of a step: one intermediate column, rounded, on each row.
    out, window, *_ = utils.resize_image(image[:1, :, :1], min_scale=2, mode="pad64")
    row = out[window[0], window[1]:window[3], 0]
    # Output column j samples input x = j / 2 - 0.25: the step at 15 gives 63.75, 191.25.
    assert row[28:32].tolist() == [0, 64, 191, 255]


def test_resize_image_crop_is_reproducible_with_rng():
    image = _content_image(80, 90)
    a = utils.resize_image(image, min_dim=64, mode="crop", rng=np.random.default_rng(5))
    b = utils.resize_image(image, min_dim=64, mode="crop", rng=np.random.default_rng(5))
    assert a[4] == b[4] and np.array_equal(a[0], b[0])
    y, x, _, _ = a[4]
    assert np.array_equal(a[0], image[y:y + 64, x:x + 64])  # scale 1: a plain crop
    # A legacy RandomState and the global np.random state work too.
    c = utils.resize_image(image, min_dim=64, mode="crop", rng=np.random.RandomState(7))
    assert c[4] == utils.resize_image(image, min_dim=64, mode="crop",
                                      rng=np.random.RandomState(7))[4]
    np.random.seed(11)
    d = utils.resize_image(image, min_dim=64, mode="crop")[4]
    np.random.seed(11)
    assert utils.resize_image(image, min_dim=64, mode="crop")[4] == d
    crops = {utils.resize_image(image, min_dim=64, mode="crop")[4] for _ in range(20)}
    assert len(crops) > 1  # the offset really is random


def test_resize_image_bad_arguments_are_named():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="mode must be one of"):
        utils.resize_image(image, mode="stretch")
    with pytest.raises(ValueError, match="max_dim"):
        utils.resize_image(image, min_dim=10, mode="square")
    with pytest.raises(ValueError, match="divisible by 64"):
        utils.resize_image(image, min_dim=100, mode="pad64")


# ------------------------------------------------------ minimize / expand masks
def test_minimize_expand_round_trip_is_exact_on_a_blocky_mask():
    rng = np.random.default_rng(0)
    blocks = rng.random((10, 12)) > 0.5
    mask = np.zeros((64, 80, 1), bool)
    # 4x4-pixel blocks inside a 40x48 box at an even offset; mini 20x24 halves it.
    mask[10:50, 20:68, 0] = np.kron(blocks, np.ones((4, 4), bool))
    bbox = np.array([[10, 20, 50, 68]])
    mini = utils.minimize_mask(bbox, mask, (20, 24))
    assert mini.shape == (20, 24, 1) and mini.dtype == bool
    assert np.array_equal(mini[..., 0], np.kron(blocks, np.ones((2, 2), bool)))
    assert np.array_equal(utils.expand_mask(bbox, mini, (64, 80, 3)), mask)


def test_minimize_expand_round_trip_on_a_disk():
    yy, xx = np.mgrid[:90, :70]
    mask = np.stack([(yy - 40) ** 2 + (xx - 30) ** 2 < 23 ** 2,
                     (yy > 60) & (xx > 50)], axis=-1)
    bbox = utils.extract_bboxes(mask)
    restored = utils.expand_mask(bbox, utils.minimize_mask(bbox, mask, (28, 28)), mask.shape)
    for i in range(2):
        iou = (restored[..., i] & mask[..., i]).sum() / (restored[..., i] | mask[..., i]).sum()
        assert iou > 0.95
    y1, x1, y2, x2 = bbox[0]
    outside = np.ones(mask.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert not restored[outside, 0].any()


def test_minimize_mask_rejects_an_empty_box():
    with pytest.raises(ValueError, match="instance 1"):
        utils.minimize_mask(np.array([[0, 0, 4, 4], [3, 3, 3, 6]]),
                            np.ones((8, 8, 2), bool), (4, 4))


# ----------------------------------------------------------------- unmold_mask
def test_unmold_mask_hand_case():
    small = np.array([[0.9, 0.1], [0.2, 0.3]], np.float32)
    full = utils.unmold_mask(small, np.array([2, 4, 6, 8]), (10, 12, 3))
    assert full.dtype == bool and full.shape == (10, 12)
    expected = np.zeros((10, 12), bool)
    expected[2:4, 4:6] = True  # the top-left quadrant of the 4x4 box
    assert np.array_equal(full, expected)


def test_unmold_mask_clips_to_the_image_and_handles_empty_boxes():
    ones = np.ones((4, 4), np.float32)
    full = utils.unmold_mask(ones, [-2, -3, 2, 3], (5, 5))
    expected = np.zeros((5, 5), bool)
    expected[:2, :3] = True
    assert np.array_equal(full, expected)
    assert not utils.unmold_mask(ones, [2, 2, 2, 4], (5, 5)).any()
    assert not utils.unmold_mask(ones, [6, 6, 9, 9], (5, 5)).any()
