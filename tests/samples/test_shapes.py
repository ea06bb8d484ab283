"""Tests of the synthetic shapes sample (samples/shapes)."""

import numpy as np
import pytest

from mrcnn import utils
from samples.shapes.shapes import (CLASS_COLOURS, SHAPE_KINDS, ShapesConfig, ShapesDataset,
                                   shape_mask)


def make_dataset(count=12, height=64, width=64, seed=3):
    ds = ShapesDataset()
    ds.load_shapes(count, height, width, seed=seed)
    ds.prepare()
    return ds


def hand_dataset(shapes, height=20, width=20, background=(0, 0, 0)):
    ds = ShapesDataset()
    ds.load_shapes(0, height, width)
    ds.add_image("shapes", image_id=0, path=None, width=width, height=height,
                 bg_color=background, shapes=shapes)
    ds.prepare()
    return ds


def test_config_matches_demo_settings():
    config = ShapesConfig()
    assert config.NAME == "shapes" and config.NUM_CLASSES == 4
    assert config.IMAGE_SHAPE.tolist() == [128, 128, 3]
    assert tuple(config.RPN_ANCHOR_SCALES) == (8, 16, 32, 64, 128)
    assert config.TRAIN_ROIS_PER_IMAGE == 32 and config.BATCH_SIZE == 8
    assert config.STEPS_PER_EPOCH == 100 and config.VALIDATION_STEPS == 5
    assert config.IMAGE_META_SIZE == 16


def test_classes_and_determinism():
    a, b, c = make_dataset(seed=3), make_dataset(seed=3), make_dataset(seed=4)
    assert a.class_names == ["BG", "square", "circle", "triangle"]
    assert a.num_images == 12
    assert [i["shapes"] for i in a.image_info] == [i["shapes"] for i in b.image_info]
    np.testing.assert_array_equal(a.load_image(5), b.load_image(5))
    assert [i["shapes"] for i in a.image_info] != [i["shapes"] for i in c.image_info]


def test_shapes_are_valid_and_not_overlapping_much():
    ds = make_dataset(count=40, seed=7)
    counts = []
    for info in ds.image_info:
        shapes = info["shapes"]
        counts.append(len(shapes))
        assert 1 <= len(shapes) <= 4
        boxes = []
        for kind, colour, (cy, cx, size) in shapes:
            assert kind in SHAPE_KINDS
            assert all(0 <= v <= 255 for v in colour)
            assert 8 <= size <= 16  # 64-pixel images: 1/8 to 1/4 of the side
            assert size <= cy < 64 - size and size <= cx < 64 - size
            boxes.append([cy - size, cx - size, cy + size + 1, cx + size + 1])
        iou = utils.compute_overlaps(np.array(boxes, float), np.array(boxes, float))
        np.fill_diagonal(iou, 0)
        assert iou.max() < 0.3
    assert len(set(counts)) > 1


def test_masks_agree_with_drawn_image():
    ds = make_dataset(count=10, seed=11)
    for image_id in ds.image_ids:
        image = ds.load_image(image_id)
        masks, class_ids = ds.load_mask(image_id)
        info = ds.image_info[image_id]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert masks.dtype == bool and masks.shape[:2] == (64, 64)
        assert class_ids.dtype == np.int32 and len(class_ids) == masks.shape[-1] >= 1
        # Visible parts never overlap, and each is painted in its shape's colour.
        assert masks.sum(axis=-1).max() <= 1
        for i in range(len(class_ids)):
            colours = np.unique(image[masks[:, :, i]], axis=0)
            assert len(colours) == 1
            kind = ds.class_names[class_ids[i]]
            assert (kind, tuple(colours[0].tolist())) in {(k, c) for k, c, _ in info["shapes"]}
        background = ~masks.any(axis=-1)
        assert np.all(image[background] == info["bg_color"])


def test_later_shape_occludes_earlier():
    ds = hand_dataset([("square", (255, 0, 0), (8, 8, 4)),
                       ("square", (0, 255, 0), (12, 12, 4))])
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [1, 1]
    first = np.zeros((20, 20), bool)
    first[4:13, 4:13] = True
    second = np.zeros((20, 20), bool)
    second[8:17, 8:17] = True
    np.testing.assert_array_equal(masks[:, :, 1], second)
    np.testing.assert_array_equal(masks[:, :, 0], first & ~second)
    image = ds.load_image(0)
    assert image[10, 10].tolist() == [0, 255, 0] and image[5, 5].tolist() == [255, 0, 0]
    assert image[0, 0].tolist() == [0, 0, 0]
    assert ds.image_reference(0)[1][0] == "square"


def test_fully_hidden_shape_has_no_instance():
    ds = hand_dataset([("circle", (9, 9, 9), (10, 10, 2)),
                       ("square", (200, 9, 9), (10, 10, 5))])
    masks, class_ids = ds.load_mask(0)
    assert class_ids.tolist() == [1]
    assert masks.shape == (20, 20, 1) and masks.sum() == 11 * 11


def test_shape_mask_geometry():
    square = shape_mask("square", (5, 6, 2), 12, 12)
    assert square.sum() == 25 and square[3:8, 4:9].all()
    circle = shape_mask("circle", (6, 6, 3), 13, 13)
    assert circle[6, 3] and circle[6, 9] and circle[3, 6] and circle[9, 6]
    assert not circle[3, 3] and not circle[6, 10]
    triangle = shape_mask("triangle", (10, 10, 8), 21, 21)
    rows = np.flatnonzero(triangle.any(axis=1))
    assert rows.min() == 2 and rows.max() in (13, 14)  # apex cy - 8, base cy + 4
    widths = triangle.sum(axis=1)
    assert widths[4] < widths[8] < widths[12]           # widens downwards
    clipped = shape_mask("square", (0, 0, 3), 10, 10)
    assert clipped.sum() == 16
    with pytest.raises(ValueError, match="hexagon"):
        shape_mask("hexagon", (5, 5, 2), 10, 10)


def test_load_shapes_rejects_tiny_images():
    with pytest.raises(ValueError, match="16x16"):
        ShapesDataset().load_shapes(3, 8, 64)


def test_class_colours_colour_every_shape_by_its_kind_on_grey():
    plain = make_dataset(count=20, seed=5)
    coded = ShapesDataset()
    coded.load_shapes(20, 64, 64, seed=5, class_colours=CLASS_COLOURS)
    coded.prepare()
    # The first image has the classic layout of the seed, only its colours change.
    assert ([(k, d) for k, _, d in plain.image_info[0]["shapes"]]
            == [(k, d) for k, _, d in coded.image_info[0]["shapes"]])
    for b in coded.image_info:
        r, g, bl = b["bg_color"]
        assert r == g == bl and 90 <= r < 170
    for image_id in coded.image_ids:
        image = coded.load_image(image_id)
        masks, class_ids = coded.load_mask(image_id)
        for i, class_id in enumerate(class_ids):
            colour = CLASS_COLOURS[coded.class_names[class_id]]
            assert (image[masks[..., i]] == colour).all()
    with pytest.raises(ValueError, match="triangle"):
        ShapesDataset().load_shapes(1, 64, 64, class_colours={"square": (1, 2, 3),
                                                               "circle": (4, 5, 6)})
