"""Tests of mrcnn.data: image meta, molding, ground truth, augmentation, DataGenerator.

RPN targets are tested in test_rpn_targets.py.
"""

import concurrent.futures
import logging
import os

import numpy as np
import pytest
import skimage.io

from mrcnn import data, utils
from tests import configs
from samples.shapes.shapes import ShapesDataset


class DataConfig(configs.TinyConfig):
    """The shared tiny config with the data tests' own sampling sizes."""

    NAME = "tiny"
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    MINI_MASK_SHAPE = (16, 16)


# 64x64 image, strides 4..64: feature maps 16, 8, 4, 2, 1 -> 3 * 341 anchors
NUM_ANCHORS = 3 * (16 * 16 + 8 * 8 + 4 * 4 + 2 * 2 + 1)


def make_config(**overrides):
    return type("Cfg", (DataConfig,), overrides)()


def shapes_dataset(count=6, height=48, width=80, seed=1):
    ds = ShapesDataset()
    ds.load_shapes(count, height, width, seed=seed)
    ds.prepare()
    return ds


# ====================================================================== meta, molding
def test_image_meta_round_trip():
    meta = data.compose_image_meta(7, (480, 640, 3), (1024, 1024, 3), (128, 0, 896, 1024),
                                   1.6, [1, 0, 1, 1])
    assert meta.dtype == np.float32 and meta.shape == (16,)
    parsed = data.parse_image_meta(np.stack([meta, meta * 0]))
    assert parsed["image_id"].tolist() == [7, 0]
    assert parsed["original_image_shape"][0].tolist() == [480, 640, 3]
    assert parsed["image_shape"][0].tolist() == [1024, 1024, 3]
    assert parsed["window"][0].tolist() == [128, 0, 896, 1024]
    assert parsed["scale"][0] == pytest.approx(1.6)
    assert parsed["active_class_ids"][0].tolist() == [1, 0, 1, 1]
    assert parsed["window"].dtype == np.int32 and parsed["scale"].dtype == np.float32


def test_image_meta_rejects_bad_window():
    with pytest.raises(ValueError, match="window"):
        data.compose_image_meta(1, (4, 4, 3), (4, 4, 3), (0, 0, 4), 1.0, [1])
    with pytest.raises(ValueError, match="13"):
        data.parse_image_meta(np.zeros((2, 12)))


def test_mold_unmold_round_trip():
    config = make_config()
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    molded = data.mold_image(image, config)
    assert molded.dtype == np.float32
    np.testing.assert_allclose(molded[0, 0], image[0, 0] - np.array(config.MEAN_PIXEL),
                               rtol=0, atol=1e-4)
    restored = data.unmold_image(molded, config)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, image)


# ====================================================================== load_image_gt
def test_load_image_gt_shapes_consistent():
    config = make_config()
    ds = shapes_dataset()
    for image_id in ds.image_ids:
        image, meta, class_ids, bbox, mask = data.load_image_gt(ds, config, image_id)
        assert image.shape == tuple(config.IMAGE_SHAPE) and image.dtype == np.uint8
        assert class_ids.dtype == np.int32 and bbox.dtype == np.int32
        assert mask.dtype == bool and mask.shape == (16, 16, len(class_ids))
        _, true_ids = ds.load_mask(image_id)
        np.testing.assert_array_equal(class_ids, true_ids)
        # 48x80 -> scale 0.8 -> 38x64 (38.4 rounded), padded 13 rows on top
        expected = utils.resize_image(ds.load_image(image_id), 64, 64, 0, "square")
        np.testing.assert_array_equal(image, expected[0])
        parsed = data.parse_image_meta(meta[None])
        assert parsed["window"][0].tolist() == list(expected[1]) == [13, 0, 51, 64]
        assert parsed["scale"][0] == pytest.approx(0.8)
        assert parsed["original_image_shape"][0].tolist() == [48, 80, 3]
        assert parsed["active_class_ids"][0].tolist() == [1, 1, 1, 1]
        full = utils.expand_mask(bbox, mask, image.shape)
        assert np.all(np.abs(utils.extract_bboxes(full) - bbox) <= 2)
        # Boxes lie inside the window of real pixels.
        assert np.all(bbox[:, 0] >= 13) and np.all(bbox[:, 2] <= 51)


def test_load_image_gt_full_masks_give_exact_boxes():
    config = make_config(USE_MINI_MASK=False)
    ds = shapes_dataset(count=2)
    image, _, class_ids, bbox, mask = data.load_image_gt(ds, config, 1)
    assert mask.shape == (64, 64, len(class_ids))
    np.testing.assert_array_equal(utils.extract_bboxes(mask), bbox)


def test_load_image_gt_crop_mode_uses_rng():
    config = make_config(IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=128,
                         IMAGE_MIN_SCALE=2.0)
    ds = shapes_dataset(count=1, height=64, width=64)
    a = data.load_image_gt(ds, config, 0, rng=np.random.default_rng(5))
    b = data.load_image_gt(ds, config, 0, rng=np.random.default_rng(5))
    assert a[0].shape == (64, 64, 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[3], b[3])
    crops = {data.load_image_gt(ds, config, 0, rng=np.random.default_rng(s))[0].tobytes()
             for s in range(6)}
    assert len(crops) > 1


class BrokenDataset(utils.Dataset):
    """Two 8x8 images: 0 has a 6x8 mask, 1 has two masks but one class id."""

    def __init__(self):
        super().__init__()
        self.add_class("broken", 1, "thing")
        for i in range(2):
            self.add_image("broken", image_id=i, path=f"/nowhere/{i}.png")
        self.prepare()

    def load_image(self, image_id):
        return np.zeros((8, 8, 3), np.uint8)

    def load_mask(self, image_id):
        if image_id == 0:
            return np.ones((6, 8, 1), bool), np.array([1], np.int32)
        return np.ones((8, 8, 2), bool), np.array([1], np.int32)

    def image_reference(self, image_id):
        return f"ref-{image_id}"


def test_load_image_gt_validates_annotations():
    config = make_config()
    with pytest.raises(ValueError, match=r"image 0 \(ref-0\).*mask shape"):
        data.load_image_gt(BrokenDataset(), config, 0)
    with pytest.raises(ValueError, match=r"image 1 \(ref-1\).*1 class ids for 2 masks"):
        data.load_image_gt(BrokenDataset(), config, 1)


def test_load_image_gt_drops_emptied_instances():
    config = make_config(USE_MINI_MASK=False)
    ds = shapes_dataset(count=3)
    _, _, ids_before, boxes_before, _ = data.load_image_gt(ds, config, 0)
    assert len(ids_before) >= 2

    def erase_first(image, masks, rng):
        masks = masks.copy()
        masks[:, :, 0] = False
        return image, masks

    _, _, ids, boxes, mask = data.load_image_gt(ds, config, 0, augmentation=erase_first)
    np.testing.assert_array_equal(ids, ids_before[1:])
    np.testing.assert_array_equal(boxes, boxes_before[1:])
    assert mask.shape[-1] == len(ids_before) - 1


# ====================================================================== augmentation
def test_horizontal_flip_moves_masks_with_image():
    config = make_config(USE_MINI_MASK=False)
    ds = shapes_dataset(count=2)
    image, _, ids, boxes, mask = data.load_image_gt(ds, config, 0)
    f_image, _, f_ids, f_boxes, f_mask = data.load_image_gt(
        ds, config, 0, augmentation=data.HorizontalFlip(p=1.0))
    np.testing.assert_array_equal(f_image, image[:, ::-1])
    np.testing.assert_array_equal(f_mask, mask[:, ::-1])
    np.testing.assert_array_equal(f_ids, ids)
    np.testing.assert_array_equal(f_boxes[:, [1, 3]], 64 - boxes[:, [3, 1]])
    np.testing.assert_array_equal(f_boxes[:, [0, 2]], boxes[:, [0, 2]])
    # p=0 never flips; p=0.5 flips for some rng draws and not for others
    same, _ = data.HorizontalFlip(p=0.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(same, image)
    flips = [not np.array_equal(data.HorizontalFlip()(image, mask,
                                                      np.random.default_rng(s))[0], image)
             for s in range(20)]
    assert 0 < sum(flips) < 20


def test_compose_and_shape_check():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    masks = np.zeros((2, 3, 1), bool)
    masks[0, 0, 0] = True
    twice = data.Compose([data.HorizontalFlip(1.0), data.HorizontalFlip(1.0)])
    out_image, out_masks = data.apply_augmentation(image, masks, twice,
                                                   np.random.default_rng(0))
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_masks, masks)

    def crop(image, masks, rng):
        return image[:1], masks[:1]

    with pytest.raises(ValueError, match="image 3: .*changed the image"):
        data.apply_augmentation(image, masks, crop, np.random.default_rng(0), image_id=3)

    def uint8_masks(image, masks, rng):
        return image, masks.astype(np.uint8)

    with pytest.raises(ValueError, match="bool masks"):
        data.apply_augmentation(image, masks, uint8_masks, np.random.default_rng(0))
    with pytest.raises(TypeError, match="callable"):
        data.Compose([data.HorizontalFlip(), "flip"])


class FakeFliplr:
    """imgaug-like leaf augmenters: flips (geometric) and brightens (not geometric)."""

    activated = True

    def augment(self, images):
        return images[:, ::-1]


class FakeMultiply(FakeFliplr):
    def augment(self, images):
        return np.minimum(images.astype(np.int32) * 2, 255).astype(images.dtype)


FakeFliplr.__name__, FakeMultiply.__name__ = "Fliplr", "Multiply"


class FakeSequential:
    """Duck-typed imgaug Sequential: consults hooks like imgaug does."""

    activated = True

    def __init__(self, children):
        self.children = children
        self.seeds = []

    def to_deterministic(self):
        return FakeSequential(self.children)

    def seed_(self, seed):
        self.seeds.append(seed)

    def augment_image(self, image, hooks=None):
        for child in self.children:
            if hooks is None or hooks.is_activated(image, augmenter=child, parents=[self],
                                                   default=child.activated):
                image = child.augment(image)
        return image


FakeSequential.__name__ = "Sequential"


def test_imgaug_style_augmenter_applies_only_geometry_to_masks():
    image = np.full((4, 6, 3), 10, np.uint8)
    image[:, 0] = 100
    masks = np.zeros((4, 6, 2), bool)
    masks[:, 0, 0] = True
    masks[1, 1, 1] = True
    aug = FakeSequential([FakeFliplr(), FakeMultiply()])
    out_image, out_masks = data.apply_augmentation(image, masks, aug,
                                                   np.random.default_rng(0))
    assert out_image[0, 5, 0] == 200 and out_image[0, 0, 0] == 20
    np.testing.assert_array_equal(out_masks, masks[:, ::-1])


# ====================================================================== DataGenerator
def test_generator_batch_layout():
    config = make_config()
    gen = data.DataGenerator(shapes_dataset(count=5), config, seed=0)
    assert len(gen) == 3
    assert len(data.DataGenerator(shapes_dataset(count=5), config, steps=7)) == 7
    batch = gen[0]
    expected = {
        "input_image": ((2, 64, 64, 3), np.float32),
        "input_image_meta": ((2, 16), np.float32),
        "input_rpn_match": ((2, NUM_ANCHORS, 1), np.int32),
        "input_rpn_bbox": ((2, 32, 4), np.float32),
        "input_gt_class_ids": ((2, 5), np.int32),
        "input_gt_boxes": ((2, 5, 4), np.float32),
        "input_gt_masks": ((2, 16, 16, 5), np.uint8),
    }
    assert set(batch) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert batch[key].shape == shape, key
        assert batch[key].dtype == dtype, key
    for i in range(2):
        count = int((batch["input_gt_class_ids"][i] != 0).sum())
        assert count >= 1
        assert not batch["input_gt_boxes"][i, count:].any()
        assert not batch["input_gt_masks"][i, :, :, count:].any()
        assert (batch["input_rpn_match"][i] != 0).sum() == 32
    # Molded image: mean subtracted from the padded uint8 image.
    assert batch["input_image"][0, 0, 0] == pytest.approx(-np.array(config.MEAN_PIXEL))


def test_generator_seeds_reproduce_and_differ():
    config = make_config(IMAGES_PER_GPU=1)
    ds = shapes_dataset(count=6)
    a = data.DataGenerator(ds, config, seed=11, augmentation=data.HorizontalFlip())
    b = data.DataGenerator(ds, config, seed=11, augmentation=data.HorizontalFlip())
    c = data.DataGenerator(ds, config, seed=12, augmentation=data.HorizontalFlip())
    first_a = [a[i] for i in range(len(a))]
    for i in reversed(range(len(b))):  # order of requests does not matter
        for key in first_a[i]:
            np.testing.assert_array_equal(first_a[i][key], b[i][key])
    ids_a = [int(x["input_image_meta"][0, 0]) for x in first_a]
    ids_c = [int(c[i]["input_image_meta"][0, 0]) for i in range(len(c))]
    assert sorted(ids_a) == sorted(ids_c) == list(range(6))  # one epoch visits all
    assert ids_a != ids_c
    # The next epoch uses another order; set_epoch returns to a given epoch.
    a.on_epoch_end()
    ids_next = [int(a[i]["input_image_meta"][0, 0]) for i in range(len(a))]
    assert ids_next != ids_a and sorted(ids_next) == list(range(6))
    a.set_epoch(0)
    np.testing.assert_array_equal(a[2]["input_rpn_match"], first_a[2]["input_rpn_match"])


def test_generator_without_shuffle_follows_dataset_order():
    config = make_config(IMAGES_PER_GPU=1)
    gen = data.DataGenerator(shapes_dataset(count=3), config, shuffle=False, steps=5)
    assert [int(gen[i]["input_image_meta"][0, 0]) for i in range(5)] == [0, 1, 2, 0, 1]


def test_generator_subsamples_instances_to_max_gt():
    config = make_config(MAX_GT_INSTANCES=2, IMAGES_PER_GPU=1)
    ds = shapes_dataset(count=6)
    class_ids = [data.load_image_gt(ds, config, i)[2] for i in ds.image_ids]
    assert max(len(c) for c in class_ids) > 2
    gen = data.DataGenerator(ds, config, shuffle=False)
    for i in ds.image_ids:
        got = gen[i]["input_gt_class_ids"][0]
        kept = min(2, len(class_ids[i]))
        assert (got > 0).sum() == kept
        # a sub-multiset of the image's instances
        assert all((got[:kept] == c).sum() <= (class_ids[i] == c).sum() for c in (1, 2, 3))


class PngDataset(utils.Dataset):
    """Real PNG files of one square each; the base class's load_image reads them."""

    def load_squares(self, directory, count, corrupt=()):
        self.add_class("png", 1, "square")
        for i in range(count):
            path = os.path.join(directory, f"img{i}.png")
            if i in corrupt:
                with open(path, "wb") as f:
                    f.write(b"this is not a PNG file \x00\xff" * 8)
            else:
                image = np.zeros((32, 32, 3), np.uint8)
                image[4 + i:20 + i, 6:22] = 200
                skimage.io.imsave(path, image, check_contrast=False)
            self.add_image("png", image_id=i, path=path, offset=i)
        self.prepare()

    def load_mask(self, image_id):
        offset = self.image_info[image_id]["offset"]
        mask = np.zeros((32, 32, 1), bool)
        mask[4 + offset:20 + offset, 6:22] = True
        return mask, np.array([1], np.int32)

    def image_reference(self, image_id):
        return self.image_info[image_id]["path"]


def test_generator_skips_corrupt_image(tmp_path, caplog):
    ds = PngDataset()
    ds.load_squares(str(tmp_path), 4, corrupt={2})
    gen = data.DataGenerator(ds, make_config(), shuffle=False)
    with caplog.at_level(logging.WARNING, logger="mrcnn.data"):
        batches = [gen[i] for i in range(len(gen))]
    assert all(b["input_image"].shape[0] == 2 for b in batches)
    assert [int(v) for b in batches for v in b["input_image_meta"][:, 0]] == [0, 1, 3, 0]
    assert gen.num_skipped == 1 and list(gen.skipped) == [2]
    assert "img2.png" in gen.skipped[2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "image 2" in warnings[0] and "img2.png" in warnings[0]
    # Meeting the image again skips it again but warns only once per image.
    with caplog.at_level(logging.WARNING, logger="mrcnn.data"):
        gen[1]
    assert gen.num_skipped == 2 and len(gen.skipped) == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_generator_raises_when_every_image_fails(tmp_path):
    ds = PngDataset()
    ds.load_squares(str(tmp_path), 3, corrupt={0, 1, 2})
    gen = data.DataGenerator(ds, make_config(), seed=0)
    with pytest.raises(RuntimeError, match="every one of the 3 images failed.*img"):
        gen[0]
    assert gen.num_skipped == 3


def test_generator_raises_after_consecutive_failures(tmp_path):
    ds = PngDataset()
    ds.load_squares(str(tmp_path), 5, corrupt={0, 1, 2})
    gen = data.DataGenerator(ds, make_config(), shuffle=False, max_consecutive_failures=2)
    with pytest.raises(RuntimeError, match="2 samples in a row failed"):
        gen[0]


class EmptyShapes(ShapesDataset):
    def load_mask(self, image_id):
        return np.zeros((48, 80, 0), bool), np.zeros(0, np.int32)


def test_generator_raises_when_no_image_has_instances():
    ds = EmptyShapes()
    ds.load_shapes(3, 48, 80, seed=0)
    ds.prepare()
    with pytest.raises(RuntimeError, match="no usable image"):
        data.DataGenerator(ds, make_config(), seed=0)[0]


def test_generator_with_worker_threads_matches_serial():
    config = make_config()
    ds = shapes_dataset(count=8)
    serial = data.DataGenerator(ds, config, seed=5, augmentation=data.HorizontalFlip())
    threaded = data.DataGenerator(ds, config, seed=5, augmentation=data.HorizontalFlip(),
                                  workers=2)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(threaded.__getitem__, range(len(threaded))))
    for i, batch in enumerate(parallel):
        for key in batch:
            np.testing.assert_array_equal(batch[key], serial[i][key])

    # Through keras' own worker pool (OrderedEnqueuer with threads).
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    adapter = PyDatasetAdapter(threaded, shuffle=False)
    adapter.on_epoch_begin()
    fetched = list(adapter.get_numpy_iterator())
    adapter.on_epoch_end()
    assert len(fetched) == len(serial)
    for i, batch in enumerate(fetched):
        np.testing.assert_array_equal(batch["input_gt_boxes"], serial[i]["input_gt_boxes"])
    assert threaded.epoch == 1


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="no images"):
        data.DataGenerator(ShapesDataset(), make_config())
    with pytest.raises(ValueError, match="steps"):
        data.DataGenerator(shapes_dataset(count=2), make_config(), steps=0)
    with pytest.raises(IndexError):
        data.DataGenerator(shapes_dataset(count=2), make_config())[5]
