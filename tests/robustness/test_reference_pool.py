"""Item 10: a corrupt image leaves the reference pool and is named, not its victims.

Before the issue a corrupt image stayed in the pool references are drawn from: every
sample that drew it as a reference failed, and each warning named the innocent query.
Here c9 (contiguous 3) lives in images 28, 33 and 40 (indices 4, 5, 6); image 28's file
is corrupt, and training batches query c9 only.
"""

import logging
import os
import shutil

import numpy as np
import pytest

from mrcnn.utils import ImageLoadError
from siamese_mrcnn.coco import CocoDataset
from siamese_mrcnn.data import OneShotDataGenerator

C9 = 3
CORRUPT, QUERY = 4, 5  # images 28 and 33


class CountingDataset(CocoDataset):
    """The tiny dataset, counting image reads per image (to see what is drawn)."""

    def __init__(self):
        super().__init__()
        self.reads = {}

    def load_image(self, image_id):
        self.reads[image_id] = self.reads.get(image_id, 0) + 1
        return super().load_image(image_id)


@pytest.fixture
def corrupt_dataset(tiny_coco, tmp_path):
    images = str(tmp_path / "images")
    shutil.copytree(tiny_coco["image_dir"], images)
    with open(os.path.join(images, "img_0028.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n truncated by a failed copy")
    dataset = CountingDataset()
    dataset.load_coco_file(tiny_coco["annotation_file"], images)
    dataset.prepare()
    assert dataset.category_image_index[C9].tolist() == [CORRUPT, QUERY, 6]
    return dataset


def generator_of(dataset, tiny_config):
    return OneShotDataGenerator(dataset, tiny_config, shuffle=True, seed=0, steps=4,
                                active_class_ids=[C9])


def test_a_corrupt_reference_is_named_counted_and_never_drawn_again(
        corrupt_dataset, tiny_config, caplog):
    generator = generator_of(corrupt_dataset, tiny_config)
    with caplog.at_level(logging.WARNING):
        provenances = [generator.draw_sample(QUERY, np.random.default_rng([7, i]))[1]
                       for i in range(24)]
    # Every sample of the innocent query succeeded, with references from the others.
    sources = [s.image_id for p in provenances for s in p.references]
    assert len(sources) == 24 and set(sources) == {QUERY, 6}
    # The corrupt file was read once (the draw that found it broken), then left the pool.
    assert corrupt_dataset.reads[CORRUPT] == 1
    assert generator.unusable_images == {CORRUPT}
    assert list(generator.skipped) == [CORRUPT] and generator.num_skipped == 1
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"skipping reference image {CORRUPT} "
                              f"({corrupt_dataset.image_reference(CORRUPT)}): failed to load: "
                              f"ImageLoadError: image {CORRUPT}: cannot decode")
    assert warning.endswith("removed from the reference pool")


def test_a_query_that_failed_to_load_is_not_drawn_as_a_reference(corrupt_dataset,
                                                                 tiny_config):
    generator = generator_of(corrupt_dataset, tiny_config)
    with pytest.raises(ImageLoadError, match="img_0028.png"):
        generator.draw_sample(CORRUPT, np.random.default_rng(0))  # the walk skips it
    assert generator.unusable_images == {CORRUPT}
    for i in range(24):
        generator.draw_sample(QUERY, np.random.default_rng([8, i]))
    assert corrupt_dataset.reads[CORRUPT] == 1  # only its own failed load as a query


def test_training_batches_skip_the_corrupt_image_and_name_only_it(corrupt_dataset,
                                                                  tiny_config, caplog):
    generator = generator_of(corrupt_dataset, tiny_config)
    with caplog.at_level(logging.WARNING):
        for epoch in range(3):
            generator.set_epoch(epoch)
            for index in range(len(generator)):
                batch = generator[index]
                assert batch["input_reference_images"].shape == (1, 1, 32, 32, 3)
    assert list(generator.skipped) == [CORRUPT]
    named = {r.getMessage().split(" (")[0] for r in caplog.records}
    assert named <= {f"skipping image {CORRUPT}", f"skipping reference image {CORRUPT}"}
    assert len(caplog.records) == 1  # once per failing image
