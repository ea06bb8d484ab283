"""samples.procedural: templates, dataset layout and drawing, split, COCO export, CLI."""

import itertools
import json
import os

import numpy as np
import pytest
import skimage.io
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mrcnn import utils
from samples.procedural import export as export_module
from samples.procedural.export import export_coco, render_preview, template_gallery
from samples.procedural.procedural import (ProceduralOneShotDataset, instance_owner_map,
                                           main, procedural_split)
from samples.procedural import templates as templates_module
from samples.procedural.templates import Template, make_templates

NUM_CATEGORIES = 24

SQUARE = Template("square", "test", ((np.array([[-0.5, -0.5], [-0.5, 0.5],
                                                [0.5, 0.5], [0.5, -0.5]]), True),))


def make_dataset(num_images=12, seed=0, **kwargs):
    kwargs.setdefault("num_categories", NUM_CATEGORIES)
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(num_images, seed=seed, **kwargs)
    dataset.prepare()
    return dataset


def raster_iou_numpy(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / max((a | b).sum(), 1)


# ---------------------------------------------------------------------- templates
def test_templates_count_distinct_and_well_formed():
    templates = make_templates(NUM_CATEGORIES, seed=3, max_iou=0.75)
    assert len(templates) == NUM_CATEGORIES
    assert len({t.name for t in templates}) == NUM_CATEGORIES
    assert [int(t.name.rsplit("_", 1)[1]) for t in templates] == list(range(NUM_CATEGORIES))
    # Independent check of the distinctness rule: 32x32 rasters at 75% of the side,
    # the second template turned by -20..20 degrees.
    center, scale = (15.5, 15.5), 24.0
    upright = [t.rasterize(center, scale, 0.0, (32, 32)) for t in templates]
    turned = [[t.rasterize(center, scale, a, (32, 32)) for a in (-20, -10, 0, 10, 20)]
              for t in templates]
    worst = max(raster_iou_numpy(upright[i], r)
                for i, j in itertools.permutations(range(NUM_CATEGORIES), 2)
                for r in turned[j])
    assert worst <= 0.75
    for t in templates:
        # Unit box: the longer side spans [-0.5, 0.5] (to within a 64-pixel raster).
        mask = t.rasterize((49.5, 49.5), 80.0, 0.0, (100, 100))
        rows, cols = np.nonzero(mask)
        extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
        assert 78 <= extent <= 82, t.name
        assert abs((rows.max() + rows.min()) / 2 - 49.5) <= 1.5, t.name
        assert abs((cols.max() + cols.min()) / 2 - 49.5) <= 1.5, t.name


def test_templates_deterministic_prefix_stable_and_seed_dependent():
    a = make_templates(NUM_CATEGORIES, seed=3)
    # Bypass the per-process cache so the second list is generated afresh.
    b = templates_module._make_templates_cached.__wrapped__(NUM_CATEGORIES, 3, 0.75, 20.0)
    assert a is not b
    short = make_templates(10, seed=3)
    other = make_templates(NUM_CATEGORIES, seed=4)
    for x, y in zip(a, b):
        assert x.name == y.name
        assert all(np.array_equal(p[0], q[0]) and p[1] == q[1]
                   for p, q in zip(x.parts, y.parts))
    assert [t.name for t in short] == [t.name for t in a[:10]]
    assert np.array_equal(short[5].thumbnail(32), a[5].thumbnail(32))
    assert any(not np.array_equal(x.thumbnail(32), y.thumbnail(32)) for x, y in zip(a, other))


def test_impossible_template_request_is_a_clear_error():
    with pytest.raises(ValueError, match="distinct templates"):
        make_templates(3, seed=0, max_iou=0.02)
    with pytest.raises(ValueError, match="num_categories"):
        make_templates(0)


def test_rasterize_square_by_hand_and_rotation_convention():
    # Edges at half-integers 5.5 and 13.5: pixels 6..13 are filled.
    mask = SQUARE.rasterize((9.5, 9.5), 8.0, 0.0, (20, 20))
    expected = np.zeros((20, 20), bool)
    expected[6:14, 6:14] = True
    assert np.array_equal(mask, expected)
    # An L shape with all edges on half-integers; +90 degrees is counter-clockwise as
    # displayed, i.e. np.rot90 (which turns the top row into the left column).
    ell = np.array([[-0.45, -0.45], [-0.45, -0.15], [0.15, -0.15], [0.15, 0.45],
                    [0.45, 0.45], [0.45, -0.45]])
    template = Template("ell", "test", ((ell, True),))
    upright = template.rasterize((16, 16), 10.0, 0.0, (33, 33))
    turned = template.rasterize((16, 16), 10.0, 90.0, (33, 33))
    assert upright.sum() == 9 * 3 + 3 * 6
    assert np.array_equal(turned, np.rot90(upright))


def test_subtractive_part_makes_a_hole():
    inner = np.array([[-0.25, -0.25], [-0.25, 0.25], [0.25, 0.25], [0.25, -0.25]])
    ring = Template("ring", "test", SQUARE.parts + ((inner, False),))
    mask = ring.rasterize((9.5, 9.5), 8.0, 0.0, (20, 20))
    # Inner edges at 7.5 and 11.5: pixels 8..11 cleared.
    assert mask.sum() == 64 - 16
    assert not mask[8:12, 8:12].any() and mask[6:14, 6:14].sum() == 48


# ---------------------------------------------------------------------- dataset
def test_same_seed_same_pixels_other_seed_differs():
    a, b, c = make_dataset(6, seed=7), make_dataset(6, seed=7), make_dataset(6, seed=8)
    for i in range(6):
        assert np.array_equal(a.load_image(i), b.load_image(i))
        ma, ca = a.load_mask(i)
        mb, cb = b.load_mask(i)
        assert np.array_equal(ma, mb) and np.array_equal(ca, cb)
    assert all(a.load_image(i).shape == (128, 128, 3) and a.load_image(i).dtype == np.uint8
               for i in range(6))
    assert sum(not np.array_equal(a.load_image(i), c.load_image(i)) for i in range(6)) == 6


def test_image_depends_only_on_seed_and_index():
    long = make_dataset(8, seed=5)
    short = ProceduralOneShotDataset()
    short.load_procedural(3, seed=5, num_categories=NUM_CATEGORIES)
    short.prepare()
    for i in range(3):
        assert np.array_equal(long.load_image(i), short.load_image(i))


def test_masks_match_image_colours_are_disjoint_and_mostly_visible():
    dataset = make_dataset(20, seed=11)
    categories_per_image = []
    for i in dataset.image_ids:
        image = dataset.load_image(i)
        masks, class_ids = dataset.load_mask(i)
        info = dataset.image_info[i]
        assert masks.dtype == bool and masks.shape[:2] == image.shape[:2]
        assert class_ids.dtype == np.int32 and masks.shape[-1] == len(class_ids) >= 1
        assert masks.sum(axis=-1).max() <= 1  # occlusion resolved: no pixel twice
        for k, inst in enumerate(info["instances"]):
            assert masks[..., k].any()
            assert (image[masks[..., k]] == inst["colour"]).all()
            assert class_ids[k] == inst["class_id"]
            full = dataset.templates[inst["class_id"] - 1].rasterize(
                inst["center"], inst["scale"], inst["rotation"], image.shape[:2])
            assert masks[..., k].sum() >= 0.4 * full.sum()
            assert not (masks[..., k] & ~full).any()
            assert 16 <= inst["scale"] <= 40 and abs(inst["rotation"]) <= 10
        categories_per_image.append(len(set(class_ids.tolist())))
    assert np.mean(np.array(categories_per_image) >= 2) >= 0.8
    assert max(categories_per_image) == 3


def test_heavy_occlusion_removes_instances_and_keeps_40_percent_visible():
    dataset = make_dataset(15, seed=2, image_size=64, instances=(6, 6),
                           categories_per_image=(2, 2), scale=(30, 40))
    kept = []
    for i in dataset.image_ids:
        masks, _ = dataset.load_mask(i)
        owner, full_area = instance_owner_map(dataset.image_info[i]["instances"],
                                              dataset.templates, 64, 64)
        assert np.array_equal(masks.sum(axis=(0, 1)), np.bincount(
            owner.ravel(), minlength=masks.shape[-1] + 1)[1:])
        assert (masks.sum(axis=(0, 1)) >= 0.4 * full_area).all()
        kept.append(masks.shape[-1])
    assert min(kept) >= 1 and np.mean(kept) < 6  # some were removed, none emptied out


def test_later_instances_occlude_earlier_ones_by_hand():
    dataset = make_dataset(1, seed=0, num_categories=4)
    dataset.templates = (SQUARE,) * 4
    info = dataset.image_info[0]
    info["clutter"] = []
    info["background"] = {"kind": "flat", "colours": [[0, 0, 0], [0, 0, 0]],
                          "angle": 0.0, "noise": 0.0, "noise_seed": 0}
    info["instances"] = [
        {"class_id": 2, "center": [9.5, 9.5], "scale": 8.0, "rotation": 0.0,
         "colour": [200, 0, 0]},
        {"class_id": 3, "center": [13.5, 13.5], "scale": 8.0, "rotation": 0.0,
         "colour": [0, 200, 0]}]
    masks, class_ids = dataset.load_mask(0)
    image = dataset.load_image(0)
    assert class_ids.tolist() == [2, 3]
    assert masks[..., 0].sum() == 64 - 16 and masks[..., 1].sum() == 64
    assert masks[10:14, 10:14, 1].all() and not masks[10:14, 10:14, 0].any()
    assert (image[12, 12] == [0, 200, 0]).all() and (image[7, 7] == [200, 0, 0]).all()
    assert image.sum() == 48 * 200 + 64 * 200


def test_categories_subset_and_class_registry():
    seen, unseen = procedural_split(NUM_CATEGORIES)
    dataset = make_dataset(15, seed=4, categories=seen)
    assert dataset.num_classes == NUM_CATEGORIES + 1
    assert dataset.class_names[1] == dataset.templates[0].name
    placed = set()
    for i in dataset.image_ids:
        placed |= set(dataset.load_mask(i)[1].tolist())
    assert placed <= set(seen) and len(placed) >= 5
    for i in dataset.image_ids:
        ids = sorted(set(dataset.load_mask(i)[1].tolist()))
        assert dataset.image_category_index[i].dtype == np.int32
        assert dataset.image_category_index[i].tolist() == ids
        assert all(i in dataset.category_image_index[c] for c in ids)
    assert sorted(dataset.category_image_index) == list(range(1, NUM_CATEGORIES + 1))
    assert sum(len(v) for v in dataset.category_image_index.values()) == sum(
        len(v) for v in dataset.image_category_index)
    assert all(dataset.category_image_index[c].size == 0 for c in unseen)


@pytest.mark.parametrize("kwargs, match", [
    ({"categories": [0, 3]}, "categories"),
    ({"categories": [NUM_CATEGORIES + 1]}, "categories"),
    ({"instances": (3, 1)}, "instances"),
    ({"scale": (2, 10)}, "scale"),
    ({"scale": (16, 128)}, "scale"),
    ({"image_size": 20}, "image_size"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(2, **kwargs)


def test_templates_cannot_change_within_one_dataset():
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(1, num_categories=NUM_CATEGORIES)
    with pytest.raises(ValueError, match="already holds templates"):
        dataset.load_procedural(1, num_categories=NUM_CATEGORIES, template_seed=9)


# ---------------------------------------------------------------------- split
def test_split_every_fourth_unseen_disjoint_and_covering():
    assert procedural_split(10) == ([2, 3, 4, 6, 7, 8, 10], [1, 5, 9])
    assert procedural_split(10, offset=4)[1] == [4, 8]
    for offset in range(1, 5):
        seen, unseen = procedural_split(200, offset=offset)
        assert not set(seen) & set(unseen)
        assert sorted(seen + unseen) == list(range(1, 201))
        assert len(unseen) == 50
    all_unseen = sorted(sum((procedural_split(200, offset=o)[1] for o in range(1, 5)), []))
    assert all_unseen == list(range(1, 201))
    with pytest.raises(ValueError, match="offset"):
        procedural_split(10, offset=5)


# ---------------------------------------------------------------------- COCO export
def test_export_coco_round_trip(tmp_path):
    dataset = make_dataset(5, seed=3)
    path = export_coco(dataset, str(tmp_path), image_ids=[0, 2, 4])
    assert path == os.path.join(str(tmp_path), "annotations.json")
    assert sorted(os.listdir(tmp_path / "images")) == ["000001.png", "000003.png",
                                                       "000005.png"]
    assert sorted(os.listdir(tmp_path)) == ["annotations.json", "images"]  # no temp files
    coco = COCO(path)
    assert sorted(coco.getCatIds()) == list(range(1, NUM_CATEGORIES + 1))
    assert coco.loadCats(1)[0]["name"] == dataset.class_names[1]
    total = 0
    for image_id in (0, 2, 4):
        masks, class_ids = dataset.load_mask(image_id)
        total += len(class_ids)
        entry = coco.loadImgs(image_id + 1)[0]
        stored = skimage.io.imread(tmp_path / "images" / entry["file_name"])
        assert np.array_equal(stored, dataset.load_image(image_id))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id + 1))
        assert len(anns) == len(class_ids)
        boxes = utils.extract_bboxes(masks)
        for k, ann in enumerate(anns):
            assert np.array_equal(coco.annToMask(ann).astype(bool), masks[..., k])
            assert ann["category_id"] == class_ids[k] and ann["iscrowd"] == 0
            assert ann["area"] == masks[..., k].sum()
            y1, x1, y2, x2 = boxes[k]
            assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1]
            assert isinstance(ann["segmentation"]["counts"], str)
    assert len(coco.getAnnIds()) == total
    with open(path) as f:
        document = json.load(f)
    assert document["info"]["num_categories"] == NUM_CATEGORIES


def test_export_loads_unchanged_through_the_project_coco_loader(tmp_path):
    coco_module = pytest.importorskip("siamese_mrcnn.coco")
    dataset = make_dataset(4, seed=9)
    path = export_coco(dataset, str(tmp_path))
    loaded = coco_module.CocoDataset()
    loaded.load_coco_file(path, str(tmp_path / "images"))
    loaded.prepare()
    assert loaded.num_images == 4 and loaded.class_names == dataset.class_names
    for i in range(4):
        assert np.array_equal(loaded.load_image(i), dataset.load_image(i))
        for got, want in zip(loaded.load_mask(i), dataset.load_mask(i)):
            assert np.array_equal(got, want)
        assert np.array_equal(loaded.image_category_index[i], dataset.image_category_index[i])


def test_export_crowd_and_empty_instances(tmp_path):
    class Tiny(utils.Dataset):
        def load_image(self, image_id):
            return np.zeros((6, 5, 3), np.uint8)

        def load_mask(self, image_id):
            masks = np.zeros((6, 5, 3), bool)
            masks[1:3, 2:5, 0] = True
            masks[4, 0, 2] = True
            return masks, np.array([1, 1, -1], np.int32)

    dataset = Tiny()
    dataset.add_class("tiny", 1, "thing")
    dataset.add_image("tiny", 0, path=None)
    dataset.prepare()
    coco = COCO(export_coco(dataset, str(tmp_path)))
    anns = coco.loadAnns(coco.getAnnIds())
    assert [(a["bbox"], a["area"], a["iscrowd"]) for a in anns] == [
        ([2, 1, 3, 2], 6, 0), ([0, 4, 1, 1], 1, 1)]
    assert mask_utils.decode(anns[0]["segmentation"]).shape == (6, 5)


def test_export_requires_prepare(tmp_path):
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(1, num_categories=NUM_CATEGORIES)
    with pytest.raises(ValueError, match="prepare"):
        export_coco(dataset, str(tmp_path))


# ---------------------------------------------------------------------- CLI, preview
def test_cli_exports_seen_split(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--out", str(out), "--images", "4", "--seed", "5",
                 "--categories", str(NUM_CATEGORIES), "--split", "seen"]) == 0
    coco = COCO(str(out / "annotations.json"))
    _, unseen = procedural_split(NUM_CATEGORIES)
    used = {a["category_id"] for a in coco.loadAnns(coco.getAnnIds())}
    assert used and not used & set(unseen)
    assert len(coco.getImgIds()) == 4
    assert "wrote 4 images" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


def test_gallery_and_preview(tmp_path):
    templates = make_templates(NUM_CATEGORIES, seed=0)
    gallery = template_gallery(templates[:5], columns=3, tile=10, unseen=[2])
    assert gallery.shape == (2 * 12 + 2, 3 * 12 + 2, 3)
    tile = gallery[2:12, 14:24]  # template 2 (class id 2), orange
    assert np.array_equal(tile[templates[1].thumbnail(10)][0], [255, 150, 0])
    assert np.array_equal(gallery[2:12, 2:12][templates[0].thumbnail(10)][0], [255] * 3)
    dataset = make_dataset(2, seed=1)
    path = render_preview(dataset, str(tmp_path / "preview.png"), num_images=2,
                          columns=2, num_templates=10, unseen=[1])
    image = skimage.io.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert export_module.ANNOTATION_FILE == "annotations.json"
