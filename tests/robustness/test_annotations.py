"""Item 6: unusable annotations are dropped with one warning per file, counted.

Before the issue an annotation with an unknown category id, a missing image id, or
polygons of fewer than 3 points disappeared without a word.
"""

import json
import logging

import numpy as np

from siamese_mrcnn.coco import CocoDataset, read_coco
from tests.robustness.conftest import write_annotations


def broken_annotations(tiny_coco, path):
    """The tiny dataset plus 6 bad annotations (ids 901..906) and one with a short
    polygon beside a valid one (id 907), written to ``path``."""
    with open(tiny_coco["annotation_file"]) as f:
        data = json.load(f)
    triangle = [10.0, 10.0, 30.0, 10.0, 20.0, 30.0]
    base = {"iscrowd": 0, "area": 100.0, "bbox": [10.0, 10.0, 20.0, 20.0]}
    data["annotations"] += [
        dict(base, id=901, image_id=3, category_id=99, segmentation=[triangle]),
        dict(base, id=902, image_id=7, category_id=99, segmentation=[triangle]),
        dict(base, id=903, image_id=3, category_id=42, segmentation=[triangle]),
        dict(base, id=904, image_id=777, category_id=2, segmentation=[triangle]),
        dict(base, id=905, image_id=21, category_id=5, segmentation=[[1.0, 2.0, 3.0, 4.0]]),
        dict(base, id=906, image_id=21, category_id=9, segmentation=[]),
        dict(base, id=907, image_id=21, category_id=11,
             segmentation=[triangle, [5.0, 5.0, 6.0, 6.0]]),
    ]
    return write_annotations(path, data), len(data["annotations"])


def test_unusable_annotations_are_counted_in_one_warning_per_file(tiny_coco, tmp_path,
                                                                  caplog):
    path, total = broken_annotations(tiny_coco, tmp_path / "broken.json")
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.coco"):
        dataset = CocoDataset()
        dataset.load_coco_file(path, tiny_coco["image_dir"])
        dataset.prepare()
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning == (
        f"{path}: 6 of {total} annotations dropped: "
        f"3 with a category id not in 'categories' (annotation ids 901, 902, 903; "
        f"category ids 42, 99), "
        f"1 of an image id not in 'images' (annotation ids 904; image ids 777), "
        f"2 whose polygons all have fewer than 3 points (annotation ids 905, 906); "
        f"1 annotation(s) kept without their polygons of fewer than 3 points "
        f"(annotation ids 907)")
    assert dataset.dropped_annotations == {
        "unknown_category": [901, 902, 903], "missing_image": [904],
        "degenerate_polygons": [905, 906], "short_polygons": [907]}

    # Image 21 had no annotation: now only 907 (c11, its valid triangle) is there, so
    # c5 and c9 are not "present" in it and cannot be drawn as its references.
    index = dataset.image_index_from_coco(21)
    assert dataset.image_category_index[index].tolist() == [4]
    masks, class_ids = dataset.load_mask(index)
    assert class_ids.tolist() == [4] and masks.shape == (64, 96, 1)
    assert 150 < int(masks.sum()) < 250  # the 20 x 20 triangle alone


def test_two_parts_of_one_file_warn_once(tiny_coco, tmp_path, caplog):
    """Training and validation loaded from one annotation file (as train does for
    COCO) report its problems once."""
    path, _ = broken_annotations(tiny_coco, tmp_path / "broken.json")
    coco = read_coco(path)
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.coco"):
        for ids in ([3, 7, 12, 21], [28, 33, 40, 50]):
            part = CocoDataset()
            part.load_coco_file(coco, tiny_coco["image_dir"], image_ids=ids)
            part.prepare()
    assert len(caplog.records) == 1
    assert part.dropped_annotations["missing_image"] == [904]


def test_a_clean_file_loads_without_a_warning(tiny_coco, caplog):
    """The tiny dataset as written (held before the issue)."""
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.coco"):
        dataset = CocoDataset()
        dataset.load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"])
        dataset.prepare()
    assert caplog.records == []
    assert not any(dataset.dropped_annotations.values())
    assert np.concatenate(dataset.image_category_index).size == 12  # (image, class) pairs
