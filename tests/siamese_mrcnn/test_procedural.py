"""siamese_mrcnn.procedural: the demo's layout of the procedural benchmark and its COCO
round trip."""

import os
import types

import numpy as np
import pytest

from siamese_mrcnn import procedural
from siamese_mrcnn.coco import CocoDataset


def test_layout_by_hand():
    assert procedural.procedural_layout(128, 80) == {
        "image_size": 128, "num_categories": 80, "categories_per_image": (2, 3),
        "instances": (2, 5), "scale": (18, 42)}  # 0.14 * 128 = 17.9, 0.33 * 128 = 42.2
    assert procedural.procedural_layout(64, 8)["scale"] == (9, 21)


def test_split_holds_out_every_fourth_category():
    seen, unseen = procedural.procedural_split(12)
    assert list(unseen) == [1, 5, 9]
    assert sorted(list(seen) + list(unseen)) == list(range(1, 13))


def test_choose_evaluated_is_seeded_and_within_groups():
    seen, unseen = list(range(2, 40, 2)), list(range(1, 40, 4))
    a = procedural.choose_evaluated(seen, unseen, 4, seed=5)
    assert a == procedural.choose_evaluated(seen, unseen, 4, seed=5)
    assert a != procedural.choose_evaluated(seen, unseen, 4, seed=6)
    assert len(a[0]) == len(a[1]) == 4 and set(a[0]) <= set(seen) and set(a[1]) <= set(unseen)
    assert a[0] == sorted(a[0]) and a[1] == sorted(a[1])
    # A group smaller than the count is taken whole.
    assert procedural.choose_evaluated([2, 3], [1], 4, seed=0) == [[2, 3], [1]]


def test_evaluable_categories_need_two_images():
    dataset = types.SimpleNamespace(category_image_index={1: np.array([0, 3]),
                                                          2: np.array([4]), 3: np.array([])})
    assert procedural.evaluable_categories(dataset, [1, 2, 3, 4]) == [1]
    assert procedural.evaluable_categories(dataset, [3, 1]) == [1]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The quick demo's data: 8 categories (6 seen, 2 unseen), 64-pixel images."""
    folder = tmp_path_factory.mktemp("procedural")
    seen, unseen = procedural.procedural_split(8)
    evaluated = [2, 3, 1, 5]
    layout = procedural.procedural_layout(64, 8)
    train, evaluation = procedural.make_datasets(6, 5, seen, evaluated, 3,
                                                 str(folder / "eval"), layout)
    held_out = procedural.held_out_dataset(4, evaluated, 3, str(folder / "held"), layout)
    return dict(folder=folder, seen=seen, evaluated=evaluated, layout=layout, train=train,
                evaluation=evaluation, held_out=held_out)


def test_training_images_show_seen_categories_only(demo_data):
    train, seen = demo_data["train"], demo_data["seen"]
    assert train.num_images == 6
    shown = set()
    for image_id in train.image_ids:
        image = train.load_image(image_id)
        masks, class_ids = train.load_mask(image_id)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert masks.shape[:2] == (64, 64) and len(class_ids) >= 1
        shown |= {int(c) for c in class_ids}
    assert shown <= set(seen)


def test_evaluation_round_trip_through_coco_files(demo_data):
    """The evaluation images come back from their COCO files as a CocoDataset with the
    procedural class ids and names, the same pixels and the same instances."""
    evaluation, folder = demo_data["evaluation"], demo_data["folder"] / "eval"
    assert isinstance(evaluation, CocoDataset)
    assert os.path.isfile(folder / "annotations.json")
    assert len(os.listdir(folder / "images")) == 5 == evaluation.num_images
    generated = procedural.generated_dataset(5, demo_data["evaluated"],
                                             3 + procedural.EVAL_SEED_OFFSET,
                                             demo_data["layout"])
    assert evaluation.class_names == generated.class_names  # ids 1..8 carry over
    for image_id in range(5):
        np.testing.assert_array_equal(evaluation.load_image(image_id),
                                      generated.load_image(image_id))
        masks, class_ids = evaluation.load_mask(image_id)
        want_masks, want_ids = generated.load_mask(image_id)
        order, want_order = np.argsort(class_ids, kind="stable"), np.argsort(want_ids,
                                                                             kind="stable")
        np.testing.assert_array_equal(class_ids[order], want_ids[want_order])
        np.testing.assert_array_equal(masks[..., order], want_masks[..., want_order])
        assert set(int(c) for c in class_ids) <= set(demo_data["evaluated"])


def test_held_out_images_are_new(demo_data):
    evaluation, held_out = demo_data["evaluation"], demo_data["held_out"]
    assert isinstance(held_out, CocoDataset) and held_out.num_images == 4
    assert held_out.class_names == evaluation.class_names
    evaluation_pixels = [evaluation.load_image(i).tobytes() for i in evaluation.image_ids]
    for image_id in held_out.image_ids:
        assert held_out.load_image(image_id).tobytes() not in evaluation_pixels
        assert set(held_out.image_category_index[image_id]) <= set(demo_data["evaluated"])
