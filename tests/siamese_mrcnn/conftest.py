"""A tiny COCO-format dataset written to disk for the one-shot tests.

8 images of 64x96 (noise background), 4 categories with COCO ids 9, 2, 11, 5 (listed
unsorted), instances given as polygons, uncompressed RLE and compressed RLE, one crowd
region and one image without annotations. Every instance is painted in its
category's colour, so a reference crop or a detector can tell the category by colour.
"""

import json
import os

import numpy as np
import pytest
import skimage.io
from pycocotools import mask as mask_utils

from tests.configs import TinySiameseConfig

HEIGHT, WIDTH = 64, 96
# COCO category id -> (name, colour); listed unsorted on purpose.
CATEGORIES = {9: ("c9", (40, 40, 230)), 2: ("c2", (230, 30, 30)),
              11: ("c11", (230, 230, 20)), 5: ("c5", (30, 220, 30))}
# Contiguous ids follow sorted COCO ids: 2 -> 1, 5 -> 2, 9 -> 3, 11 -> 4.
CONTIGUOUS = {2: 1, 5: 2, 9: 3, 11: 4}

# COCO image id -> instances (category id, encoding, (y1, x1, y2, x2), crowd). Listed
# in unsorted image-id order. "poly" is a triangle (apex top centre) inside the box,
# "rle" / "crle" an uncompressed / compressed RLE of the filled box.
IMAGES = {
    40: [(2, "poly", (5, 5, 25, 30), False), (9, "rle", (30, 40, 60, 90), False)],
    12: [(2, "crle", (12, 50, 40, 80), False), (5, "poly", (40, 5, 60, 40), False),
         (2, "rle", (0, 0, 10, 96), True)],
    7: [(5, "crle", (5, 10, 30, 40), False), (11, "poly", (35, 50, 60, 90), False)],
    33: [(9, "poly", (10, 10, 40, 50), False), (11, "crle", (20, 60, 50, 90), False),
         (9, "rle", (45, 5, 62, 30), False)],
    21: [],
    50: [(11, "poly", (5, 5, 30, 30), False), (2, "poly", (30, 50, 60, 90), False)],
    3: [(5, "poly", (20, 20, 50, 70), False)],
    28: [(9, "crle", (8, 60, 30, 92), False)],
}


def box_mask(box, height=HEIGHT, width=WIDTH):
    y1, x1, y2, x2 = box
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def triangle_polygon(box):
    y1, x1, y2, x2 = box
    return [float(x1), float(y2), float(x2), float(y2), (x1 + x2) / 2.0, float(y1)]


def uncompressed_rle(mask):
    """COCO's uncompressed RLE: run lengths over the column-major flattened mask,
    starting with a run of zeros."""
    flat = mask.flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def segmentation_of(kind, box):
    """(COCO segmentation, its decoded uint8 [H, W] mask)."""
    if kind == "poly":
        poly = [triangle_polygon(box)]
        rle = mask_utils.merge(mask_utils.frPyObjects(poly, HEIGHT, WIDTH))
        return poly, mask_utils.decode(rle)
    mask = box_mask(box)
    if kind == "rle":
        return uncompressed_rle(mask), mask
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}, mask


def write_coco_json(path, images, annotations, categories):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def build_tiny_coco(root, image_folder="images", annotation_name="instances.json"):
    """Write the tiny dataset under ``root``; return a description of its truth.

    Returns dict: annotation_file, image_dir, and "instances": {coco image id: list of
    dicts (annotation id, category id, crowd, mask uint8 [H, W])}, "images": {coco
    image id: uint8 [H, W, 3]}.
    """
    rng = np.random.default_rng(1234)
    image_dir = os.path.join(root, image_folder)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations, truth, pixels = [], [], {}, {}
    ann_id = 100
    for image_id, instances in IMAGES.items():
        image = rng.integers(60, 120, size=(HEIGHT, WIDTH, 3)).astype(np.uint8)
        truth[image_id] = []
        for cat_id, kind, box, crowd in instances:
            segmentation, mask = segmentation_of(kind, box)
            if not crowd:
                image[mask.astype(bool)] = CATEGORIES[cat_id][1]
            rle = mask_utils.encode(np.asfortranarray(mask))
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cat_id,
                "segmentation": segmentation, "iscrowd": int(crowd),
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
            truth[image_id].append({"annotation_id": ann_id, "category_id": cat_id,
                                    "crowd": crowd, "mask": mask, "box": box})
            ann_id += 1
        file_name = f"img_{image_id:04d}.png"
        skimage.io.imsave(os.path.join(image_dir, file_name), image, check_contrast=False)
        images.append({"id": image_id, "file_name": file_name, "height": HEIGHT,
                       "width": WIDTH})
        pixels[image_id] = image
    categories = [{"id": c, "name": n, "supercategory": "shape"}
                  for c, (n, _) in CATEGORIES.items()]
    annotation_file = os.path.join(root, annotation_name)
    write_coco_json(annotation_file, images, annotations, categories)
    return {"annotation_file": annotation_file, "image_dir": image_dir,
            "instances": truth, "images": pixels}


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory):
    """The tiny COCO-format dataset on disk (see module docstring) and its truth."""
    return build_tiny_coco(str(tmp_path_factory.mktemp("tiny_coco")))


@pytest.fixture
def tiny_dataset(tiny_coco):
    """A prepared CocoDataset of the tiny dataset."""
    from siamese_mrcnn.coco import CocoDataset
    dataset = CocoDataset()
    dataset.load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"])
    dataset.prepare()
    return dataset


class TinyConfig(TinySiameseConfig):
    """Queries 64x96 -> padded 128x128 at scale 1; references padded to 32x32."""

    NAME = "tiny_one_shot"
    IMAGES_PER_GPU = 1
    IMAGE_MAX_DIM = 128


@pytest.fixture(scope="session")
def tiny_config():
    return TinyConfig()


# ------------------------------------------------------------------ command-line helpers
def data_flags(tiny_coco):
    """The CLI flags that select the tiny COCO-format dataset."""
    return ["--annotations", tiny_coco["annotation_file"], "--images", tiny_coco["image_dir"]]


def image_path(tiny_coco, coco_id):
    return os.path.join(tiny_coco["image_dir"], f"img_{coco_id:04d}.png")


def run_error(capsys, argv):
    """Run the CLI's main expecting a user error: exit status 2 and exactly one
    stderr line, returned."""
    from siamese_mrcnn.cli import main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
