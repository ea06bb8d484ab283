"""mrcnn.utils.Dataset: class/image registries, id mapping, image loading."""

import logging

import numpy as np
import pytest
from PIL import Image

from mrcnn import utils


def _two_source_dataset():
    dataset = utils.Dataset()
    dataset.add_class("coco", 1, "person")
    dataset.add_class("coco", 18, "dog, domestic dog")
    dataset.add_class("shapes", 1, "square")
    dataset.add_class("coco", 1, "person again")  # repeated: ignored
    dataset.add_image("coco", 397133, "/data/397133.jpg", width=640, height=427)
    dataset.add_image("shapes", 0, "/data/s0.png")
    dataset.prepare()
    return dataset


def test_prepare_numbers_classes_and_images():
    dataset = _two_source_dataset()
    assert dataset.num_classes == 4
    assert dataset.class_ids.tolist() == [0, 1, 2, 3]
    assert dataset.class_names == ["BG", "person", "dog", "square"]
    assert dataset.num_images == 2 and len(dataset) == 2
    assert dataset.image_ids.tolist() == [0, 1]
    assert dataset.sources == ["", "coco", "shapes"]
    # Background belongs to every source.
    assert dataset.source_class_ids == {"": [0], "coco": [0, 1, 2], "shapes": [0, 3]}
    assert dataset.image_from_source_map == {"coco.397133": 0, "shapes.0": 1}
    assert dataset.image_info[0]["width"] == 640
    assert dataset.source_image_link(1) == "/data/s0.png"
    assert dataset.image_reference(0) == ""


def test_class_ids_map_both_ways():
    dataset = _two_source_dataset()
    assert dataset.map_source_class_id("coco.18") == 2
    assert dataset.map_source_class_id("shapes.1") == 3
    assert dataset.get_source_class_id(2, "coco") == 18
    assert dataset.get_source_class_id(3, "shapes") == 1
    for key, internal in dataset.class_from_source_map.items():
        source, source_id = key.split(".")
        assert dataset.get_source_class_id(internal, source) == int(source_id)
    with pytest.raises(ValueError, match="belongs to source 'shapes'"):
        dataset.get_source_class_id(3, "coco")
    with pytest.raises(KeyError, match="coco.99"):
        dataset.map_source_class_id("coco.99")


def test_bad_registration_and_unprepared_access_are_explained():
    dataset = utils.Dataset()
    with pytest.raises(ValueError, match="dot"):
        dataset.add_class("my.source", 1, "x")
    with pytest.raises(AttributeError, match="prepare"):
        dataset.num_classes
    assert "not prepared" in repr(dataset)
    dataset.prepare()
    assert "prepared" in repr(dataset) and "1 classes" in repr(dataset)
    with pytest.raises(IndexError, match="image id 5"):
        dataset.load_image(5)


def _dataset_with_files(paths):
    dataset = utils.Dataset()
    for i, path in enumerate(paths):
        dataset.add_image("files", i, str(path))
    dataset.prepare()
    return dataset


def test_load_image_expands_grayscale_and_drops_alpha(tmp_path):
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    rgba = np.random.default_rng(0).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    dataset = _dataset_with_files([tmp_path / "gray.png", tmp_path / "rgba.png"])

    image = dataset.load_image(0)
    assert image.shape == (12, 10, 3) and image.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(image[..., c], gray)
    image = dataset.load_image(1)
    assert image.shape == (6, 8, 3)
    assert np.array_equal(image, rgba[..., :3])


def test_corrupt_or_missing_file_raises_image_load_error(tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    missing = tmp_path / "nowhere.jpg"
    dataset = _dataset_with_files([corrupt, missing])
    with pytest.raises(utils.ImageLoadError, match="image 0.*broken.png") as info:
        dataset.load_image(0)
    assert info.value.path == str(corrupt) and info.value.image_id == 0
    assert isinstance(info.value, OSError)
    with pytest.raises(utils.ImageLoadError, match="image 1.*not found.*nowhere.jpg"):
        dataset.load_image(1)


def test_base_load_mask_is_empty_and_warns(caplog):
    dataset = _two_source_dataset()
    with caplog.at_level(logging.WARNING):
        masks, class_ids = dataset.load_mask(0)
    assert masks.shape == (0, 0, 0) and masks.dtype == bool
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32
    assert "override load_mask" in caplog.text


def test_subclass_overrides_load_mask():
    class Squares(utils.Dataset):
        def load_mask(self, image_id):
            masks = np.zeros((8, 8, 1), bool)
            masks[2:5, 3:7, 0] = True
            return masks, np.array([self.map_source_class_id("sq.1")], np.int32)

    dataset = Squares()
    dataset.add_class("sq", 1, "square")
    dataset.add_image("sq", "a", "unused.png")
    dataset.prepare()
    masks, class_ids = dataset.load_mask(0)
    assert class_ids.tolist() == [1]
    assert utils.extract_bboxes(masks).tolist() == [[2, 3, 5, 7]]
