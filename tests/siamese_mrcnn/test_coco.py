"""CocoDataset: loading, masks (polygon / RLE / crowd), indices and the train/val division."""

import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mrcnn.utils import ImageLoadError
from siamese_mrcnn.coco import (CocoDataset, annotation_to_mask, coco_from_dict,
                                divide_train_val, original_train_val_ids, split_train_val_ids)

from .conftest import CONTIGUOUS, HEIGHT, IMAGES, WIDTH, box_mask, uncompressed_rle, \
    write_coco_json


def test_classes_follow_sorted_coco_ids(tiny_dataset):
    assert tiny_dataset.class_names == ["BG", "c2", "c5", "c9", "c11"]
    assert [tiny_dataset.coco_category_id(c) for c in (1, 2, 3, 4)] == [2, 5, 9, 11]
    assert tiny_dataset.class_id_from_category(11) == 4
    assert tiny_dataset.map_source_class_id("coco.9") == 3


def test_images_in_ascending_coco_id_order(tiny_dataset, tiny_coco):
    assert tiny_dataset.num_images == 8
    ids = [tiny_dataset.coco_image_id(i) for i in tiny_dataset.image_ids]
    assert ids == [3, 7, 12, 21, 28, 33, 40, 50]
    assert tiny_dataset.image_index_from_coco(33) == 5
    np.testing.assert_array_equal(tiny_dataset.load_image(5), tiny_coco["images"][33])
    assert tiny_dataset.image_reference(5).endswith("img_0033.png")


@pytest.mark.parametrize("coco_id", sorted(IMAGES))
def test_masks_and_class_ids_match_the_annotations(tiny_dataset, tiny_coco, coco_id):
    index = tiny_dataset.image_index_from_coco(coco_id)
    masks, class_ids, ann_ids = tiny_dataset.load_instances(index)
    truth = tiny_coco["instances"][coco_id]
    assert masks.shape == (HEIGHT, WIDTH, len(truth)) and masks.dtype == bool
    assert class_ids.dtype == np.int32
    expected_ids = [(-1 if t["crowd"] else 1) * CONTIGUOUS[t["category_id"]] for t in truth]
    assert class_ids.tolist() == expected_ids
    assert ann_ids.tolist() == [t["annotation_id"] for t in truth]
    for n, t in enumerate(truth):
        np.testing.assert_array_equal(masks[:, :, n], t["mask"].astype(bool))
    masks2, class_ids2 = tiny_dataset.load_mask(index)
    np.testing.assert_array_equal(masks2, masks)
    np.testing.assert_array_equal(class_ids2, class_ids)


def test_rle_masks_are_the_exact_boxes(tiny_dataset):
    # Image 12: compressed RLE of box (12, 50, 40, 80) and a crowd RLE over rows 0..9.
    masks, class_ids = tiny_dataset.load_mask(tiny_dataset.image_index_from_coco(12))
    assert masks[:, :, 0].sum() == 28 * 30
    assert masks[12:40, 50:80, 0].all()
    assert class_ids[2] == -1 and masks[:10, :, 2].all() and masks[:, :, 2].sum() == 960


def test_image_without_annotations_gives_empty_mask(tiny_dataset):
    masks, class_ids = tiny_dataset.load_mask(tiny_dataset.image_index_from_coco(21))
    assert masks.shape == (HEIGHT, WIDTH, 0) and class_ids.shape == (0,)


def test_indices(tiny_dataset):
    idx = tiny_dataset.image_index_from_coco
    index = tiny_dataset.category_image_index
    # Crowd-only presence does not count: image 12's crowd is class 1 but 12 has a
    # non-crowd c2 too; class 4 (c11) has no crowd anywhere.
    assert index[1].tolist() == sorted([idx(40), idx(12), idx(50)])
    assert index[2].tolist() == sorted([idx(12), idx(7), idx(3)])
    assert index[3].tolist() == sorted([idx(40), idx(33), idx(28)])
    assert index[4].tolist() == sorted([idx(7), idx(33), idx(50)])
    per_image = {tiny_dataset.coco_image_id(i): c.tolist()
                 for i, c in enumerate(tiny_dataset.image_category_index)}
    assert per_image == {3: [2], 7: [2, 4], 12: [1, 2], 21: [], 28: [3], 33: [3, 4],
                         40: [1, 3], 50: [1, 4]}


def test_crowd_only_presence_is_not_indexed(tmp_path):
    write_coco_json(str(tmp_path / "a.json"),
                    [{"id": 1, "file_name": "x.png", "height": 4, "width": 5}],
                    [{"id": 7, "image_id": 1, "category_id": 3, "iscrowd": 1,
                      "segmentation": uncompressed_rle(np.ones((4, 5), np.uint8))}],
                    [{"id": 3, "name": "thing"}])
    dataset = CocoDataset()
    dataset.load_coco_file(str(tmp_path / "a.json"), str(tmp_path))
    dataset.prepare()
    assert dataset.category_image_index[1].tolist() == []
    assert dataset.image_category_index[0].tolist() == []
    masks, class_ids = dataset.load_mask(0)
    assert class_ids.tolist() == [-1] and masks.all()


def test_class_filter_loads_only_images_and_annotations_of_those_classes(tiny_coco):
    dataset = CocoDataset()
    coco = dataset.load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"],
                                  class_ids=[11, 5], return_coco=True)
    dataset.prepare()
    assert dataset.coco is coco
    assert dataset.class_names == ["BG", "c5", "c11"]
    assert [dataset.coco_image_id(i) for i in dataset.image_ids] == [3, 7, 12, 33, 50]
    _, class_ids = dataset.load_mask(dataset.image_index_from_coco(33))
    assert class_ids.tolist() == [2]  # only the c11 instance; c9 ones are filtered out


def test_unknown_class_id_is_named(tiny_coco):
    with pytest.raises(ValueError, match=r"unknown category id\(s\) \[4\]"):
        CocoDataset().load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"],
                                     class_ids=[2, 4])


def test_missing_image_file_raises_image_load_error(tmp_path):
    write_coco_json(str(tmp_path / "a.json"),
                    [{"id": 5, "file_name": "missing.png", "height": 4, "width": 4}], [],
                    [{"id": 1, "name": "x"}])
    dataset = CocoDataset()
    dataset.load_coco_file(str(tmp_path / "a.json"), str(tmp_path))
    dataset.prepare()
    with pytest.raises(ImageLoadError, match="missing.png"):
        dataset.load_image(0)


def test_zero_area_annotations_are_dropped(tmp_path):
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[1.0, 1.0, 2.0, 2.0]]},  # 2 points: no area
            {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": uncompressed_rle(np.zeros((6, 8), np.uint8))},
            {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": uncompressed_rle(box_mask((1, 2, 3, 5), 6, 8))}]
    write_coco_json(str(tmp_path / "a.json"),
                    [{"id": 1, "file_name": "x.png", "height": 6, "width": 8}], anns,
                    [{"id": 1, "name": "x"}])
    dataset = CocoDataset()
    dataset.load_coco_file(str(tmp_path / "a.json"), str(tmp_path))
    dataset.prepare()
    masks, class_ids, ann_ids = dataset.load_instances(0)
    assert ann_ids.tolist() == [3] and class_ids.tolist() == [1]
    assert masks[:, :, 0].sum() == 6


@pytest.mark.parametrize("segmentation, message", [
    (None, "unsupported segmentation"),
    ([[1.0, 2.0, 3.0]], "flat list of x, y pairs"),
    ({"size": [5, 5], "counts": [1, 2]}, r"RLE size \[5, 5\] differs"),
    ({"size": [6, 8], "counts": 3.5}, "counts must be a list or a string"),
])
def test_malformed_annotation_names_image_and_annotation(segmentation, message):
    ann = {"id": 77, "category_id": 1, "segmentation": segmentation}
    with pytest.raises(ValueError, match=f"image 9, annotation 77: .*{message}"):
        annotation_to_mask(ann, 6, 8, image_id=9)


def test_uncompressed_and_compressed_rle_agree_with_numpy_mask():
    from pycocotools import mask as mask_utils
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:7] = 1
    mask[5, 0] = 1
    compressed = mask_utils.encode(np.asfortranarray(mask))
    for segm in (uncompressed_rle(mask), compressed,
                 dict(compressed, counts=compressed["counts"].decode("ascii"))):
        out = annotation_to_mask({"id": 1, "segmentation": segm}, 6, 8)
        np.testing.assert_array_equal(out, mask.astype(bool))


def test_split_train_val_ids_uses_sorted_ids():
    train, val = split_train_val_ids([9, 2, 30, 4, 17, 5], validation_size=2)
    assert train == [2, 4, 5, 9] and val == [17, 30]
    with pytest.raises(ValueError, match="validation_size"):
        split_train_val_ids([1, 2, 3], validation_size=3)


def _coco_like_annotations(count=900, seed=0):
    """A train2017-like file: 6-digit image ids, 6 categories, 30 images without
    annotations, annotations listed in a shuffled order."""
    rng = np.random.default_rng(seed)
    ids = [int(i) for i in rng.choice(np.arange(9, 581930), count, replace=False)]
    annotated = ids[30:]
    anns = []
    for n, image_id in enumerate(annotated):
        for cat in rng.choice([1, 2, 3, 5, 8, 13], rng.integers(1, 4), replace=False):
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": int(cat),
                         "iscrowd": int(n % 17 == 0), "bbox": [0, 0, 2, 2], "area": 4.0,
                         "segmentation": [[0.0, 0.0, 2.0, 0.0, 2.0, 2.0]]})
    anns = [anns[i] for i in rng.permutation(len(anns))]
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 4, "width": 4} for i in ids]
    cats = [{"id": c, "name": f"c{c}"} for c in (13, 1, 8, 2, 5, 3)]
    return {"images": images, "annotations": anns, "categories": cats}, set(annotated)


def test_original_division_holds_out_the_last_annotated_images_in_set_order():
    data, annotated = _coco_like_annotations()
    coco = coco_from_dict(data)
    train, val = original_train_val_ids(coco, validation_size=300)
    assert len(val) == 300 and len(train) == len(annotated) - 300
    assert set(train) | set(val) == annotated and not set(train) & set(val)
    # Not the sorted division: 6-digit ids overflow the set's table, so its order is
    # neither sorted nor the file's.
    assert val != sorted(val) and set(val) != set(sorted(annotated)[-300:])
    sorted_train, sorted_val = divide_train_val(coco, 300, "sorted")
    assert sorted_val == sorted(int(i["id"]) for i in data["images"])[-300:]
    assert divide_train_val(coco, 300, "original") == (train, val)
    with pytest.raises(ValueError, match="division must be one of"):
        divide_train_val(coco, 300, "random")
    # A small case worked by hand (CPython's set: 8 slots, slot = id % 8, a
    # collision at slot i probes (5 i + 1) % 8): category 1 lists images [16, 8]
    # (16 in slot 0, 8 collides and moves to 1), category 2 lists [8, 1, 3]. Their
    # concatenation [16, 8, 8, 1, 3]: 16 -> 0, 8 -> 1, 1 collides with 8 and moves
    # to 6, 3 -> 3; iterated by slot: 16, 8, 3, 1.
    small = coco_from_dict({
        "images": [{"id": i, "file_name": "x", "height": 1, "width": 1}
                   for i in (1, 3, 8, 16, 99)],
        "annotations": [{"id": n, "image_id": i, "category_id": c, "iscrowd": 0}
                        for n, (i, c) in enumerate([(16, 1), (8, 1), (1, 2), (3, 2),
                                                    (8, 2)])],
        "categories": [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}]})
    assert original_train_val_ids(small, 2) == ([16, 8], [3, 1])
    assert split_train_val_ids(small.getImgIds(), 2) == ([1, 3, 8], [16, 99])


def test_original_division_does_not_depend_on_the_hash_seed(tmp_path):
    import json
    import subprocess
    import sys
    data, _ = _coco_like_annotations(count=400, seed=3)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(data))
    script = ("import json, sys; from siamese_mrcnn.coco import read_coco, "
              "original_train_val_ids; print(json.dumps(original_train_val_ids("
              "read_coco(sys.argv[1]), 100)))")
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", script, str(path)], env=env,
                              capture_output=True, text=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1
    in_subprocesses = json.loads(outputs.pop())
    from siamese_mrcnn.coco import read_coco
    assert in_subprocesses == [list(p) for p in original_train_val_ids(read_coco(str(path)),
                                                                      100)]


def _write_standard_layout(root, subset, image_ids):
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "height": 4, "width": 4}
              for i in image_ids]
    anns = [{"id": 1000 + i, "image_id": i, "category_id": 1, "iscrowd": 0,
             "segmentation": [[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]]} for i in image_ids]
    write_coco_json(os.path.join(root, "annotations", f"instances_{subset}.json"), images,
                    anns, [{"id": 1, "name": "x"}])


def test_load_coco_train_val_division(tmp_path):
    ids = [50, 3, 41, 8, 27, 100, 12, 64, 5, 33]
    _write_standard_layout(str(tmp_path), "train2017", ids)
    train, val = CocoDataset(), CocoDataset()
    train.load_coco(str(tmp_path), "train_split", validation_size=3)
    val.load_coco(str(tmp_path), "val_split", year="2017", validation_size=3)
    for d in (train, val):
        d.prepare()
    assert [train.coco_image_id(i) for i in train.image_ids] == [3, 5, 8, 12, 27, 33, 41]
    assert [val.coco_image_id(i) for i in val.image_ids] == [50, 64, 100]
    assert val.image_info[0]["path"] == os.path.join(str(tmp_path), "train2017",
                                                     "000000000050.jpg")
    original = CocoDataset()
    original.load_coco(str(tmp_path), "val_split", validation_size=3, val_division="original")
    original.prepare()
    expected = sorted(original_train_val_ids(original.coco, 3)[1])
    assert [original.coco_image_id(i) for i in original.image_ids] == expected


def test_load_coco_standard_subsets(tmp_path):
    _write_standard_layout(str(tmp_path), "val2017", [4, 2])
    _write_standard_layout(str(tmp_path), "minival2014", [6])
    val, minival = CocoDataset(), CocoDataset()
    coco = val.load_coco(str(tmp_path), "val", "2017", return_coco=True)
    minival.load_coco(str(tmp_path), "minival", "2014")
    assert sorted(coco.getImgIds()) == [2, 4]
    assert val.image_info[0]["path"] == os.path.join(str(tmp_path), "val2017",
                                                     "000000000002.jpg")
    assert minival.image_info[0]["path"] == os.path.join(str(tmp_path), "val2014",
                                                         "000000000006.jpg")
    with pytest.raises(FileNotFoundError, match="instances_test2017.json"):
        CocoDataset().load_coco(str(tmp_path), "test", "2017")


def test_bad_annotation_file_is_named(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not a JSON file"):
        CocoDataset().load_coco_file(str(path), str(tmp_path))
    path.write_text('{"images": [], "categories": []}')
    with pytest.raises(ValueError, match="broken.json: missing or invalid 'annotations'"):
        CocoDataset().load_coco_file(str(path), str(tmp_path))


def test_coco_needs_exactly_one_annotation_file(tiny_coco):
    dataset = CocoDataset()
    with pytest.raises(ValueError, match="exactly one"):
        dataset.coco
    dataset.load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"])
    dataset.load_coco_file(tiny_coco["annotation_file"], tiny_coco["image_dir"])
    with pytest.raises(ValueError, match="has 2"):
        dataset.coco


def test_encode_masks_round_trips_through_pycocotools():
    from siamese_mrcnn.coco import encode_masks
    masks = np.zeros((5, 7, 3), bool)
    masks[1:4, 2:6, 0] = True
    masks[0, 0, 1] = True          # one pixel; mask 2 stays empty
    rles = encode_masks(masks)
    assert [r["size"] for r in rles] == [[5, 7]] * 3
    assert all(isinstance(r["counts"], str) for r in rles)  # JSON-ready
    json.dumps(rles)
    for k, rle in enumerate(rles):
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), masks[:, :, k])
    assert encode_masks(np.zeros((5, 7, 0), bool)) == []
    with pytest.raises(ValueError, match=r"\[H, W, N\]"):
        encode_masks(np.zeros((5, 7), bool))
