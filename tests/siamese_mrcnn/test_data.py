"""One-shot batches: one category per query, its references, seeds and splits."""

import numpy as np
import pytest

from mrcnn import utils
from mrcnn.data import unmold_image
from samples.shapes import ShapesConfig, ShapesDataset
from siamese_mrcnn.data import OneShotDataGenerator
from siamese_mrcnn.references import crop_reference
from tests.configs import TinySiameseConfig

from .conftest import CATEGORIES, CONTIGUOUS

COLOUR = {CONTIGUOUS[c]: np.array(col) for c, (_, col) in CATEGORIES.items()}
KEYS = ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox",
        "input_gt_class_ids", "input_gt_boxes", "input_gt_masks", "input_reference_images")


class DataConfig(TinySiameseConfig):
    """The shared tiny Siamese config with the data tests' own sampling sizes."""

    NAME = "one_shot_data_test"
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MINI_MASK_SHAPE = (16, 16)


class ThreeShotConfig(DataConfig):
    NUM_TARGETS = 3


class BlobDataset(utils.Dataset):
    """Non-COCO dataset: coloured rectangles on grey; class 1 red, 2 green, 3 blue.

    ``images`` is a list of lists of (class_id, (y1, x1, y2, x2)) pixel boxes.
    """

    COLOURS = {1: (220, 40, 40), 2: (40, 220, 40), 3: (40, 40, 220)}

    def __init__(self, images, size=64):
        super().__init__()
        for class_id, name in ((1, "red"), (2, "green"), (3, "blue")):
            self.add_class("blobs", class_id, name)
        for i, blobs in enumerate(images):
            self.add_image("blobs", image_id=i, path=None, height=size, width=size,
                           blobs=blobs)
        self.prepare()

    def load_image(self, image_id):
        info = self.image_info[image_id]
        image = np.full((info["height"], info["width"], 3), 128, np.uint8)
        for class_id, (y1, x1, y2, x2) in info["blobs"]:
            image[y1:y2, x1:x2] = self.COLOURS[class_id]
        return image

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        masks = np.zeros((info["height"], info["width"], len(info["blobs"])), bool)
        for i, (_, (y1, x1, y2, x2)) in enumerate(info["blobs"]):
            masks[y1:y2, x1:x2, i] = True
        return masks, np.array([c for c, _ in info["blobs"]], np.int32)


@pytest.fixture(scope="module")
def config():
    return DataConfig()


def resized_instances(dataset, config, image_id):
    """(image uint8 [64, 64, 3], class ids [N], pixel boxes [N, 4]) after the query
    resize, instances that vanish dropped: the slow reference for the ground truth."""
    image, _, scale, padding, crop = utils.resize_image(
        dataset.load_image(image_id), min_dim=config.IMAGE_MIN_DIM,
        max_dim=config.IMAGE_MAX_DIM, mode="square")
    masks, class_ids = dataset.load_mask(image_id)
    masks = utils.resize_mask(masks, scale, padding, crop)
    alive = masks.any(axis=(0, 1))
    return image, np.asarray(class_ids)[alive], utils.extract_bboxes(masks[:, :, alive])


def box_set(boxes):
    return sorted(tuple(int(v) for v in b) for b in boxes)


def gt_rows(sample):
    count = int((sample["input_gt_class_ids"] != 0).sum())
    return count, sample["input_gt_boxes"][:count]


def check_sample(dataset, config, sample, provenance):
    """Ground truth = exactly the drawn category's non-crowd instances, label 1; each
    reference is the rule's crop of an instance of that category, mean subtracted."""
    image_id, class_id = provenance.image_id, provenance.class_id
    _, class_ids, boxes = resized_instances(dataset, config, image_id)
    assert class_id in class_ids  # a non-crowd instance of it is present
    ids = sample["input_gt_class_ids"]
    count, gt_boxes = gt_rows(sample)
    np.testing.assert_array_equal(ids, [1] * count + [0] * (len(ids) - count))
    assert box_set(gt_boxes) == box_set(boxes[class_ids == class_id])
    assert not sample["input_gt_boxes"][count:].any()
    assert sample["input_gt_masks"][..., :count].any(axis=(0, 1)).all()
    assert not sample["input_gt_masks"][..., count:].any()
    np.testing.assert_array_equal(sample["input_image_meta"][12:], [1, 1])
    assert sample["input_image_meta"][0] == image_id

    assert len(provenance.references) == config.NUM_TARGETS
    for molded, source in zip(sample["input_reference_images"], provenance.references):
        masks, source_ids = dataset.load_mask(source.image_id)
        assert source_ids[source.instance] == class_id
        source_image, _, _ = resized_instances(dataset, config, source.image_id)
        expected = crop_reference(source_image, source.box, config)
        np.testing.assert_allclose(molded + np.array(config.MEAN_PIXEL, np.float32),
                                   expected, atol=1e-4)


# ====================================================================== batches
def test_batch_keys_shapes_and_dtypes(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, seed=0)
    batch = generator[0]
    anchors = len(generator.anchors((64, 64)))
    expected = {
        "input_image": ((2, 64, 64, 3), np.float32),
        "input_image_meta": ((2, 14), np.float32),
        "input_rpn_match": ((2, anchors, 1), np.int32),
        "input_rpn_bbox": ((2, 32, 4), np.float32),
        "input_gt_class_ids": ((2, 5), np.int32),
        "input_gt_boxes": ((2, 5, 4), np.float32),
        "input_gt_masks": ((2, 16, 16, 5), np.uint8),
        "input_reference_images": ((2, 1, 32, 32, 3), np.float32),
    }
    assert set(batch) == set(KEYS)
    for key, (shape, dtype) in expected.items():
        assert batch[key].shape == shape, key
        assert batch[key].dtype == dtype, key
    np.testing.assert_array_equal(batch["input_image_meta"][:, 12:], np.ones((2, 2)))
    np.testing.assert_array_equal(batch["input_image_meta"][:, 4:7], [[64, 64, 3]] * 2)
    assert set(np.unique(batch["input_gt_class_ids"])) <= {0, 1}
    assert (batch["input_gt_class_ids"][:, 0] == 1).all()
    assert (batch["input_rpn_match"] == 1).any(axis=(1, 2)).all()
    # References are molded: adding the mean gives back integer pixels, and the zero
    # padding becomes -MEAN_PIXEL.
    restored = batch["input_reference_images"] + np.array(config.MEAN_PIXEL, np.float32)
    np.testing.assert_allclose(restored, np.rint(restored), atol=1e-4)
    assert restored.min() >= -1e-4 and restored.max() <= 255 + 1e-4
    np.testing.assert_allclose(batch["input_reference_images"][:, 0, 0, 0],
                               -np.array([config.MEAN_PIXEL] * 2, np.float32), atol=1e-4)


def test_batches_are_draw_sample_with_the_sample_rng(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, shuffle=False, seed=11)
    batch = generator[1]
    for slot in range(2):
        position = 2 + slot
        sample, provenance = generator.draw_sample(
            int(generator.image_ids[position]), generator.sample_rng(0, 1, slot, position))
        for key in KEYS:
            np.testing.assert_array_equal(batch[key][slot], sample[key], err_msg=key)
        check_sample(tiny_dataset, config, sample, provenance)


def test_same_seed_same_batches_other_seed_differs(tiny_dataset, config):
    first = OneShotDataGenerator(tiny_dataset, config, seed=5)
    again = OneShotDataGenerator(tiny_dataset, config, seed=5)
    other = OneShotDataGenerator(tiny_dataset, config, seed=6)
    differs = False
    for index in range(len(first)):
        a, b, c = first[index], again[index], other[index]
        for key in KEYS:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        differs |= any(not np.array_equal(a[key], c[key]) for key in KEYS)
    assert differs


# ====================================================================== ground truth
def test_ground_truth_is_one_category_with_label_one(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, seed=1)
    drawn = {}
    for image_id in generator.image_ids:
        for trial in range(6):
            sample, provenance = generator.draw_sample(
                int(image_id), np.random.default_rng([int(image_id), trial]))
            check_sample(tiny_dataset, config, sample, provenance)
            drawn.setdefault(int(image_id), []).append(provenance.class_id)
    # COCO image 33 holds two c9 instances and one c11: both become ground truth
    # together when c9 (3) is drawn, never mixed with c11.
    image_33 = tiny_dataset.image_index_from_coco(33)
    assert set(drawn[image_33]) <= {3, 4}


def test_crowds_and_other_categories_are_background(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, seed=1)
    image_12 = tiny_dataset.image_index_from_coco(12)  # c2 + c2 crowd + c5
    _, class_ids = tiny_dataset.load_mask(image_12)
    assert sorted(class_ids.tolist()) == [-1, 1, 2]
    counts = {}
    for trial in range(40):
        sample, provenance = generator.draw_sample(image_12, np.random.default_rng(trial))
        counts[provenance.class_id] = counts.get(provenance.class_id, 0) + 1
        assert (sample["input_gt_class_ids"] >= 0).all()
        # One instance per category here: the c2 crowd is not passed on.
        assert gt_rows(sample)[0] == 1
    # Drawn uniformly among the two present categories (binomial(40, 0.5)).
    assert set(counts) == {1, 2} and 10 <= counts[1] <= 30


def test_more_instances_than_slots_are_subsampled(config):
    squares = [(1, (8 * i, 4, 8 * i + 6, 10)) for i in range(8)]
    dataset = BlobDataset([squares + [(2, (20, 40, 40, 60))]])
    generator = OneShotDataGenerator(dataset, config, seed=0, active_class_ids=[1])
    all_boxes = box_set(b for _, b in squares)
    seen = set()
    for trial in range(8):
        sample, provenance = generator.draw_sample(0, np.random.default_rng(trial))
        assert provenance.class_id == 1
        np.testing.assert_array_equal(sample["input_gt_class_ids"], [1] * 5)
        boxes = box_set(sample["input_gt_boxes"])
        assert len(set(boxes)) == 5 and set(boxes) <= set(all_boxes)
        seen.update(boxes)
    assert len(seen) > 5  # different draws keep different subsets


# ====================================================================== references
def test_reference_crop_shows_the_drawn_category(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, seed=2)
    for image_id in generator.image_ids:
        for trial in range(3):
            sample, provenance = generator.draw_sample(
                int(image_id), np.random.default_rng([int(image_id), trial, 2]))
            reference = unmold_image(sample["input_reference_images"][0], config)
            pixels = reference.reshape(-1, 3).astype(int)
            near = {c: (np.abs(pixels - col).max(axis=1) <= 12).mean()
                    for c, col in COLOUR.items()}
            assert near[provenance.class_id] > 0.15
            assert all(v < 0.02 for c, v in near.items() if c != provenance.class_id)


def test_three_shots_give_three_independent_references(tiny_dataset):
    config = ThreeShotConfig()
    generator = OneShotDataGenerator(tiny_dataset, config, seed=4)
    assert generator[0]["input_reference_images"].shape == (2, 3, 32, 32, 3)
    sources = set()
    for trial in range(5):
        image_id = int(generator.image_ids[trial])
        sample, provenance = generator.draw_sample(image_id, np.random.default_rng(trial))
        check_sample(tiny_dataset, config, sample, provenance)
        sources.update((s.image_id, s.instance) for s in provenance.references)
        if len({(s.image_id, s.instance) for s in provenance.references}) > 1:
            refs = sample["input_reference_images"]
            assert not (np.array_equal(refs[0], refs[1]) and np.array_equal(refs[1], refs[2]))
    assert len(sources) > 3


# ====================================================================== active classes
def test_active_classes_restrict_queries_and_references(tiny_dataset, config):
    active = [CONTIGUOUS[2], CONTIGUOUS[5]]  # c2, c5; c9 and c11 held out
    generator = OneShotDataGenerator(tiny_dataset, config, seed=3, active_class_ids=active)
    held_out_only = {tiny_dataset.image_index_from_coco(i) for i in (21, 28, 33)}
    assert not held_out_only & set(generator.image_ids.tolist())
    for image_id in generator.image_ids:
        for trial in range(4):
            sample, provenance = generator.draw_sample(
                int(image_id), np.random.default_rng([7, int(image_id), trial]))
            assert provenance.class_id in active
            check_sample(tiny_dataset, config, sample, provenance)
    # COCO image 7 holds c5 and c11: only c5 may be the query category.
    image_7 = tiny_dataset.image_index_from_coco(7)
    _, class_ids, boxes = resized_instances(tiny_dataset, config, image_7)
    for trial in range(6):
        sample, _ = generator.draw_sample(image_7, np.random.default_rng(trial))
        assert box_set(gt_rows(sample)[1]) == box_set(boxes[class_ids == CONTIGUOUS[5]])
    seen = set()
    for epoch in range(3):
        generator.set_epoch(epoch)
        for index in range(len(generator)):
            seen.update(generator[index]["input_image_meta"][:, 0].astype(int).tolist())
    assert seen and not seen & held_out_only


def test_image_with_only_inactive_objects_is_passed_over(tiny_dataset, config):
    generator = OneShotDataGenerator(tiny_dataset, config, seed=0,
                                     active_class_ids=[CONTIGUOUS[9]])
    image_7 = tiny_dataset.image_index_from_coco(7)  # c5 and c11 only
    assert generator.load_sample(image_7, np.random.default_rng(0)) is None
    assert generator.draw_sample(image_7, np.random.default_rng(0)) == (None, None)


def test_image_whose_active_instances_vanish_in_the_resize_is_skipped():
    config = DataConfig()
    # 256 -> 64 keeps only rows/columns 2, 6, 10, ...: a 2x2 blob at (100, 100) is
    # lost; the big blob of image 1 survives.
    dataset = BlobDataset([[(1, (100, 100, 102, 102))], [(1, (40, 40, 160, 200))]],
                          size=256)
    generator = OneShotDataGenerator(dataset, config, shuffle=False, seed=0)
    assert generator.image_ids.tolist() == [0, 1]  # the index cannot know beforehand
    assert generator.load_sample(0, np.random.default_rng(0)) is None
    for index in range(len(generator)):
        batch = generator[index]
        np.testing.assert_array_equal(batch["input_image_meta"][:, 0], [1, 1])
        _, boxes = gt_rows({k: v[0] for k, v in batch.items()})
        np.testing.assert_array_equal(boxes, [[10, 10, 40, 50]])


def test_bad_arguments_are_rejected(tiny_dataset, config):
    with pytest.raises(ValueError, match=r"active_class_ids \[7\] are not classes"):
        OneShotDataGenerator(tiny_dataset, config, active_class_ids=[1, 7])
    with pytest.raises(ValueError, match="active_class_ids is empty"):
        OneShotDataGenerator(tiny_dataset, config, active_class_ids=[])
    with pytest.raises(ValueError, match="no TARGET|NUM_TARGETS"):
        OneShotDataGenerator(tiny_dataset, ShapesConfig())
    blobs = BlobDataset([[(1, (5, 5, 20, 20))]])
    with pytest.raises(ValueError, match=r"no image .* active classes \[3\]"):
        OneShotDataGenerator(blobs, config, active_class_ids=[3])


# ====================================================================== non-COCO
def test_works_with_a_non_coco_dataset(config):
    dataset = ShapesDataset()
    dataset.load_shapes(8, 64, 64, seed=2)
    dataset.prepare()
    assert getattr(dataset, "category_image_index", None) is None
    generator = OneShotDataGenerator(dataset, config, seed=9)
    # The category index was built once from the masks and kept on the dataset.
    for class_id, images in dataset.category_image_index.items():
        expected = [i for i in dataset.image_ids if class_id in dataset.load_mask(i)[1]]
        assert list(images) == expected
    batch = generator[0]
    assert batch["input_reference_images"].shape == (2, 1, 32, 32, 3)
    for image_id in generator.image_ids:
        sample, provenance = generator.draw_sample(int(image_id),
                                                   np.random.default_rng(int(image_id)))
        check_sample(dataset, config, sample, provenance)
        # The crop shows the source instance's own colour (shapes have random colours).
        source = provenance.references[0]
        masks, _ = dataset.load_mask(source.image_id)
        colour = dataset.load_image(source.image_id)[masks[:, :, source.instance]][0]
        reference = unmold_image(sample["input_reference_images"][0], config)
        assert (reference.reshape(-1, 3) == colour).all(axis=1).mean() > 0.15
