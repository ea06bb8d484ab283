"""One-shot splits: COCO's four splits equal SPEC section 4; custom splits by name / every k-th."""

import pytest

from mrcnn.utils import Dataset
from siamese_mrcnn.splits import (
    COCO_CATEGORIES, COCO_CLASS_NAMES, COCO_SPLIT_CLASSES, get_split, split_every_kth,
    split_from_names)

# SPEC section 4, verbatim.
SPEC_UNSEEN = {
    1: "person, airplane, boat, parking meter, dog, elephant, backpack, suitcase, "
       "sports ball, skateboard, wine glass, spoon, sandwich, hot dog, chair, dining table, "
       "mouse, microwave, refrigerator, scissors",
    2: "bicycle, bus, traffic light, bench, horse, bear, umbrella, frisbee, kite, "
       "surfboard, cup, bowl, orange, pizza, couch, toilet, remote, oven, book, teddy bear",
    3: "car, train, fire hydrant, bird, sheep, zebra, handbag, skis, baseball bat, "
       "tennis racket, fork, banana, broccoli, donut, potted plant, tv, keyboard, toaster, "
       "clock, hair drier",
    4: "motorcycle, truck, stop sign, cat, cow, giraffe, tie, snowboard, baseball glove, "
       "bottle, knife, apple, carrot, cake, bed, laptop, cell phone, sink, vase, toothbrush",
}


def test_coco_category_table():
    ids = [c for c, _ in COCO_CATEGORIES]
    assert len(ids) == 80 and ids == sorted(set(ids))
    assert ids[0] == 1 and ids[-1] == 90
    # The 10 ids COCO skips.
    assert sorted(set(range(1, 91)) - set(ids)) == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]


@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_unseen_classes_equal_spec(split):
    s = get_split(split)
    assert list(s.unseen_names) == SPEC_UNSEEN[split].split(", ")
    assert s.unseen_ids == COCO_SPLIT_CLASSES[split] == tuple(range(split, 81, 4))
    assert len(s.seen_ids) == 60 and not set(s.seen_ids) & set(s.unseen_ids)
    assert s.seen_names == tuple(COCO_CLASS_NAMES[c - 1] for c in s.seen_ids)


def test_splits_partition_all_classes():
    unseen = [c for i in (1, 2, 3, 4) for c in get_split(i).unseen_ids]
    assert sorted(unseen) == list(range(1, 81))


def test_split_all_and_string_forms():
    s = get_split("all")
    assert s.seen_ids == tuple(range(1, 81)) and s.unseen_ids == ()
    assert s.groups == {"seen": tuple(range(1, 81))}
    assert get_split("3") == get_split(3)
    assert get_split(2).groups["unseen"][:3] == (2, 6, 10)


@pytest.mark.parametrize("bad", [0, 5, "five", 1.5, None])
def test_unknown_split_is_named(bad):
    with pytest.raises(ValueError, match=rf"unknown split {bad!r}.*1, 2, 3, 4 and 'all'"):
        get_split(bad)


def test_split_over_other_class_counts():
    s = get_split(3, num_classes=10)
    assert s.unseen_ids == (3, 7) and s.unseen_names == ("class_3", "class_7")
    with pytest.raises(ValueError, match="3 class names for num_classes=10"):
        get_split(1, num_classes=10, class_names=["a", "b", "c"])


def _dataset(names):
    d = Dataset()
    for i, n in enumerate(names):
        d.add_class("toy", 10 + i, n)
    d.prepare()
    return d


def test_split_from_names():
    d = _dataset(["cat", "dog", "fox", "owl", "yak"])
    s = split_from_names(d, ["owl", "dog"], name="mine")
    assert (s.name, s.unseen_ids, s.unseen_names) == ("mine", (2, 4), ("dog", "owl"))
    assert s.seen_ids == (1, 3, 5) and s.seen_names == ("cat", "fox", "yak")
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['emu'\].*'cat', 'dog'"):
        split_from_names(d, ["dog", "emu"])
    with pytest.raises(ValueError, match="given twice"):
        split_from_names(d, ["dog", "dog"])
    with pytest.raises(ValueError, match="single string"):
        split_from_names(d, "dog")


def test_split_every_kth_reproduces_coco_splits():
    d = _dataset(COCO_CLASS_NAMES)
    for i in (1, 2, 3, 4):
        s = split_every_kth(d, 4, i)
        assert s.unseen_ids == get_split(i).unseen_ids
        assert s.unseen_names == get_split(i).unseen_names
    assert split_every_kth(_dataset("abcdefg"), 3, 0).unseen_ids == (3, 6)
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        split_every_kth(d, 1, 0)


def test_split_needs_prepared_dataset():
    with pytest.raises(ValueError, match="prepared"):
        split_from_names(Dataset(), ["x"])
