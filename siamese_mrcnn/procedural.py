"""The procedural one-shot benchmark as the demo lays it out, with its COCO round trip.

:mod:`samples.procedural` generates images of shape categories from a seed; this
module fixes how the demo (:mod:`siamese_mrcnn.demo`), ``scripts/make_figures.py``
and the walkthrough notebook use it, so they all see the same data:

- the category split (:func:`procedural_split`): categories 1..K, every 4th
  (ids 1, 5, 9, ...) unseen, as the COCO splits hold out every 4th class;
- the layout (:func:`procedural_layout`): 2-3 categories and 2-5 instances per
  image, instances 14-33% of the image side;
- which categories are evaluated (:func:`choose_evaluated`): a seeded draw of
  ``count`` seen and ``count`` unseen ones;
- the datasets (:func:`make_datasets`): training images that show seen categories
  only (seed ``seed``); evaluation images (seed ``seed + EVAL_SEED_OFFSET``) that
  show only the evaluated ones, written as COCO files and read back with
  :class:`siamese_mrcnn.coco.CocoDataset` (:func:`exported_dataset`), so the
  evaluation runs the COCO code path unchanged; a small held-out set for AP while
  training (seed ``seed + HELD_OUT_SEED_OFFSET``, :func:`held_out_dataset`);
- which of them can be queried (:func:`evaluable_categories`): a reference comes
  from another image, so a category needs two images.

Shape shorthand: ``H, W`` image height and width in pixels (square, ``image_size``).
Class ids are the procedural ones (1..K); exported COCO category ids equal them.
"""

import os

import numpy as np

from samples.procedural.procedural import ProceduralOneShotDataset, procedural_split

__all__ = ["EVAL_SEED_OFFSET", "HELD_OUT_SEED_OFFSET", "choose_evaluated",
           "evaluable_categories", "exported_dataset", "generated_dataset",
           "held_out_dataset", "make_datasets", "procedural_layout", "procedural_split"]

# Seeds of the evaluation and held-out images, relative to the training seed, so
# the three sets never share an image.
EVAL_SEED_OFFSET = 1_000_003
HELD_OUT_SEED_OFFSET = 2_000_003


def procedural_layout(image_size, categories):
    """Keyword arguments of ``ProceduralOneShotDataset.load_procedural`` shared by the
    demo's training and evaluation images: ``categories`` categories (class ids
    1..categories), 2-3 of them and 2-5 instances per ``image_size``-pixel square
    image, instance sides 14-33% of the image side (rounded to pixels)."""
    size = int(image_size)
    return dict(image_size=size, num_categories=int(categories),
                categories_per_image=(2, 3), instances=(2, 5),
                scale=(round(0.14 * size), round(0.33 * size)))


def choose_evaluated(seen, unseen, count, seed):
    """``count`` seen and ``count`` unseen class ids drawn at random (all of a group
    if it has fewer), each list ascending: ``[seen ids, unseen ids]``."""
    rng = np.random.default_rng([int(seed), 271828])
    picks = []
    for ids in (seen, unseen):
        ids = np.asarray(ids)
        chosen = ids if len(ids) <= count else rng.choice(ids, count, replace=False)
        picks.append(sorted(int(c) for c in chosen))
    return picks


def generated_dataset(count, categories, seed, layout):
    """A prepared ProceduralOneShotDataset of ``count`` images that show only
    ``categories`` (class ids; None: all), drawn from ``seed`` with ``layout``
    (:func:`procedural_layout`)."""
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(int(count), categories=categories, seed=int(seed), **layout)
    dataset.prepare()
    return dataset


def exported_dataset(generated, folder):
    """``generated`` written as COCO files to ``folder`` (``annotations.json`` and
    ``images/``) and read back as a prepared :class:`siamese_mrcnn.coco.CocoDataset`.

    Exported category ids are the procedural class ids, so the CocoDataset numbers
    its classes the same way and a split carries over; RuntimeError if a class came
    back under another name.
    """
    from samples.procedural.export import IMAGE_DIR, export_coco
    from siamese_mrcnn.coco import CocoDataset

    annotations = export_coco(generated, folder)
    dataset = CocoDataset()
    dataset.load_coco_file(annotations, os.path.join(folder, IMAGE_DIR))
    dataset.prepare()
    for class_id in dataset.class_ids[1:]:
        if dataset.class_names[class_id] != generated.class_names[class_id]:
            raise RuntimeError(f"{annotations}: class {class_id} is "
                               f"{dataset.class_names[class_id]!r}, expected "
                               f"{generated.class_names[class_id]!r}")
    return dataset


def make_datasets(train_images, eval_images, seen, evaluated, seed, folder, layout):
    """(training ProceduralOneShotDataset, evaluation CocoDataset) of the demo.

    Training images show only ``seen`` categories (seed ``seed``); the
    ``eval_images`` evaluation images (seed ``seed + EVAL_SEED_OFFSET``) show only
    the ``evaluated`` ones, so every category queried in an image is one that is
    scored. The evaluation images are exported as COCO files to ``folder`` and read
    back (:func:`exported_dataset`).
    """
    train = generated_dataset(train_images, seen, seed, layout)
    generated = generated_dataset(eval_images, evaluated, int(seed) + EVAL_SEED_OFFSET,
                                  layout)
    return train, exported_dataset(generated, folder)


def held_out_dataset(count, evaluated, seed, folder, layout):
    """The small fixed held-out set on which AP is measured while training
    (:class:`siamese_mrcnn.callbacks.OneShotAP`): ``count`` images of the
    ``evaluated`` categories drawn from ``seed + HELD_OUT_SEED_OFFSET`` (shared
    with neither the training nor the evaluation images), as a CocoDataset
    exported to ``folder``."""
    generated = generated_dataset(count, evaluated, int(seed) + HELD_OUT_SEED_OFFSET, layout)
    return exported_dataset(generated, folder)


def evaluable_categories(dataset, class_ids):
    """The class ids among ``class_ids`` shown in at least two images of ``dataset``
    (a query's reference must come from another image), in the given order."""
    index = dataset.category_image_index
    return [int(c) for c in class_ids if len(index.get(int(c), ())) >= 2]
