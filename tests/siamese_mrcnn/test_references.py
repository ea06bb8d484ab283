"""The reference rule: crop, resize and pad; sampling with provenance and seeds."""

import numpy as np
import pytest

from mrcnn.utils import Dataset
from siamese_mrcnn.references import (
    crop_reference, ensure_category_index, resize_reference, sample_reference,
    sample_references)

from .conftest import CATEGORIES, CONTIGUOUS, HEIGHT, WIDTH

COLOUR = {CONTIGUOUS[c]: np.array(col) for c, (_, col) in CATEGORIES.items()}


def test_crop_upscales_short_side_and_pads_centred():
    image = np.zeros((64, 96, 3), np.uint8)
    image[12:42, 50:80] = (200, 10, 10)
    # 30x30 crop, dims (40, 64): scale 40/30 -> 40x40 content at offset (12, 12).
    ref = crop_reference(image, (12, 50, 42, 80), (40, 64))
    assert ref.shape == (64, 64, 3) and ref.dtype == np.uint8
    assert (ref[12:52, 12:52] == (200, 10, 10)).all()
    ref[12:52, 12:52] = 0
    assert not ref.any()  # everything else is zero padding


def test_crop_long_side_capped():
    image = np.full((50, 90, 3), 77, np.uint8)
    # 20x60 crop, dims (40, 64): scale 2 would give 120 columns > 64, so scale is
    # 64/60: round(20 * 64 / 60) = 21 rows, top padding (64 - 21) // 2 = 21.
    ref = crop_reference(image, (5, 10, 25, 70), (40, 64))
    rows = np.flatnonzero(ref.any(axis=(1, 2)))
    cols = np.flatnonzero(ref.any(axis=(0, 2)))
    assert (rows[0], rows[-1] + 1) == (21, 42)
    assert (cols[0], cols[-1] + 1) == (0, 64)
    assert (ref[21:42] == 77).all()


def test_crop_never_downscales_below_target_and_keeps_small_size():
    image = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    # 4x6 crop with dims (0, 32): no up-scaling rule, fits: copied as is, centred.
    ref = crop_reference(image, (2, 3, 6, 9), (0, 32))
    np.testing.assert_array_equal(ref[14:18, 13:19], image[2:6, 3:9])


def test_crop_box_is_clipped_and_empty_box_rejected():
    image = np.full((10, 10, 3), 5, np.uint8)
    ref = crop_reference(image, (-5, -5, 4, 4), (0, 32))
    assert (ref[14:18, 14:18] == 5).all() and ref.sum() == 16 * 3 * 5
    with pytest.raises(ValueError, match=r"box \(3, 3, 3, 8\) covers no pixel"):
        crop_reference(image, (3, 3, 3, 8), (0, 32))


def test_resize_reference_is_idempotent_and_uses_config(tiny_config):
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, size=(13, 21, 3)).astype(np.uint8)
    once = resize_reference(crop, tiny_config)
    assert once.shape == (32, 32, 3)
    np.testing.assert_array_equal(resize_reference(once, tiny_config), once)
    with pytest.raises(ValueError, match="reference dims"):
        resize_reference(crop, "big")


def test_reference_of_known_box_shows_the_object(tiny_dataset, tiny_coco, tiny_config):
    # Image 12's c2 instance is the filled box (12, 50, 40, 80).
    image = tiny_coco["images"][12]
    ref = crop_reference(image, (12, 50, 40, 80), tiny_config)
    # 28x30 crop, TARGET_MIN_DIM 24: scale 1 (no down-scaling), centred in 32x32.
    assert (ref[2:30, 1:31] == COLOUR[1]).all()
    assert not ref[:2].any() and not ref[30:].any() and not ref[:, :1].any()


def test_sample_reference_follows_the_rule(tiny_dataset, tiny_coco, tiny_config):
    seen_images = set()
    for seed in range(30):
        ref, src = sample_reference(tiny_dataset, 3, np.random.default_rng(seed), tiny_config)
        assert ref.shape == (32, 32, 3) and ref.dtype == np.uint8
        assert src.image_id in tiny_dataset.category_image_index[3]
        masks, class_ids = tiny_dataset.load_mask(src.image_id)
        assert class_ids[src.instance] == 3
        # Query resize of a 64x96 image with min 64, max 128: scale 1, padding (32, 16).
        y1, x1, y2, x2 = src.box
        rows = np.flatnonzero(masks[:, :, src.instance].any(axis=1))
        cols = np.flatnonzero(masks[:, :, src.instance].any(axis=0))
        assert (y1, x1, y2, x2) == (rows[0] + 32, cols[0] + 16, rows[-1] + 33, cols[-1] + 17)
        coco_id = tiny_dataset.coco_image_id(src.image_id)
        truth = [t for t in tiny_coco["instances"][coco_id] if not t["crowd"]]
        assert src.annotation_id in [t["annotation_id"] for t in truth]
        assert (ref[16, 16] == COLOUR[3]).all()  # centre of the crop is the object
        seen_images.add(src.image_id)
    assert len(seen_images) == 3  # every image holding class 3 gets drawn


def test_sampling_is_reproducible_and_k_shot_extends_one_shot(tiny_dataset, tiny_config):
    a = sample_reference(tiny_dataset, 2, np.random.default_rng(7), tiny_config)
    b = sample_reference(tiny_dataset, 2, np.random.default_rng(7), tiny_config)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    refs, sources = sample_references(tiny_dataset, 2, np.random.default_rng(7), tiny_config, 3)
    assert len(refs) == len(sources) == 3
    np.testing.assert_array_equal(refs[0], a[0])
    assert sources[0] == a[1]
    assert sources[0].to_dict()["box"] == list(a[1].box)


def test_exclude_image(tiny_dataset, tiny_config):
    query = tiny_dataset.image_index_from_coco(33)
    for seed in range(20):
        _, src = sample_reference(tiny_dataset, 4, np.random.default_rng(seed), tiny_config,
                                  exclude_image=query)
        assert src.image_id != query
    # Class 3 (c9) is in images 28, 33, 40; excluding one leaves the other two.
    only = tiny_dataset.category_image_index[3]
    picked = {sample_reference(tiny_dataset, 3, np.random.default_rng(s), tiny_config,
                               exclude_image=only[0])[1].image_id for s in range(20)}
    assert picked == set(only[1:].tolist())


def test_errors_name_the_class(tiny_dataset, tiny_config):
    with pytest.raises(ValueError, match=r"class 9 is not in the dataset's category index"):
        sample_reference(tiny_dataset, 9, np.random.default_rng(0), tiny_config)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        sample_references(tiny_dataset, 1, np.random.default_rng(0), tiny_config, 0)


class _OneImageDataset(Dataset):
    """A dataset without indices: one image with one tiny instance of class 1."""

    def __init__(self, box):
        super().__init__()
        self.box = box
        self.add_class("toy", 1, "dot")
        self.add_image("toy", 0, path=None)
        self.prepare()

    def load_image(self, image_id):
        return np.full((HEIGHT, WIDTH, 3), 9, np.uint8)

    def load_mask(self, image_id):
        mask = np.zeros((HEIGHT, WIDTH, 1), bool)
        y1, x1, y2, x2 = self.box
        mask[y1:y2, x1:x2, 0] = True
        return mask, np.array([1], np.int32)


def test_index_is_built_for_plain_datasets_and_exclusion_can_empty_it(tiny_config):
    dataset = _OneImageDataset((3, 4, 9, 12))
    assert ensure_category_index(dataset)[1].tolist() == [0]
    ref, src = sample_reference(dataset, 1, np.random.default_rng(0), tiny_config)
    assert src.annotation_id == -1 and src.box == (35, 20, 41, 28)
    with pytest.raises(ValueError, match=r"no image other than image 0 contains .*'dot'"):
        sample_reference(dataset, 1, np.random.default_rng(0), tiny_config, exclude_image=0)


def test_instance_lost_by_resize_is_skipped(tiny_config):
    class Shrink(type(tiny_config)):
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 64
        IMAGE_MAX_DIM = 128
    # A random 64x64 crop of the 64x96 image misses an instance in the last columns
    # in some draws; those draws find no usable instance and must raise, not crash.
    config = Shrink()
    dataset = _OneImageDataset((10, 90, 20, 96))
    outcomes = set()
    for seed in range(12):
        try:
            sample_reference(dataset, 1, np.random.default_rng(seed), config)
            outcomes.add("ok")
        except ValueError as e:
            assert "usable non-crowd instance" in str(e)
            outcomes.add("lost")
    assert outcomes == {"ok", "lost"}
