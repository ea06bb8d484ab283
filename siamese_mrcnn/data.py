"""One-shot training batches: a query, the ground truth of one category, k references.

Shape shorthand: ``B`` batch (``config.BATCH_SIZE``), ``S`` shots
(``config.NUM_TARGETS``), ``D`` reference side (``TARGET_MAX_DIM``), ``H, W`` molded
query size, ``A`` anchors over all pyramid levels, ``R`` =
``RPN_TRAIN_ANCHORS_PER_IMAGE``, ``G`` ground-truth slots (``MAX_GT_INSTANCES``, zero
padded), ``h, w`` = ``MINI_MASK_SHAPE`` (or H, W), ``N`` instances of an image.

Boxes are **pixel** boxes ``(y1, x1, y2, x2)`` of the molded query image, y2/x2
exclusive.

Per query image (SPEC section 4):
  1. load, resize (and augment) the image and its instances as Mask R-CNN does;
  2. the image is passed over when no non-crowd instance of an *active* category
     survived the resize; otherwise one active category present is drawn uniformly;
  3. only that category's non-crowd instances become ground truth, with class id 1;
     every other object (other or unseen categories, crowds of any category) is
     background, so no crowd region is passed on; more than G instances are
     subsampled to G;
  4. S independent references of the category are drawn by the reference rule of
     :mod:`siamese_mrcnn.references` (the query itself may be the source) and molded
     (mean pixel subtracted).

Works with any prepared ``mrcnn.utils.Dataset`` whose ``load_mask`` gives instance
masks; a dataset without ``category_image_index`` (anything but a ``CocoDataset``)
gets one built once, by scanning its masks, when the generator is created.
"""

import logging
from dataclasses import dataclass

import numpy as np

from mrcnn.data import (DataGenerator, _describe, build_rpn_targets, load_image_gt,
                        mold_image, pad_ground_truth, training_inputs)
from siamese_mrcnn.references import ensure_category_index, sample_references

__all__ = ["OneShotDataGenerator", "SampleProvenance"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleProvenance:
    """What one one-shot sample was made of.

    image_id: internal index of the query image; class_id: the dataset's class id of
    the drawn category (the one labelled 1); references: S
    :class:`siamese_mrcnn.references.ReferenceSource`, in the order of the sample's
    ``input_reference_images``.
    """

    image_id: int
    class_id: int
    references: tuple


class OneShotDataGenerator(DataGenerator):
    """Training batches of Siamese Mask R-CNN from any instance-mask ``Dataset``.

    ``generator[index]`` is the dict of :class:`mrcnn.data.DataGenerator` (all arrays
    with leading axis B) plus ``input_reference_images`` float32 [B, S, D, D, 3]
    (reference rule, zero padded, mean pixel subtracted). Ground truth holds only the
    drawn category: ``input_gt_class_ids`` is 1 for its instances and 0 for padding
    (never negative). The image meta's ``active_class_ids`` is [1, 1].

    Args:
        dataset: a prepared ``mrcnn.utils.Dataset`` with instance masks.
        config: a :class:`siamese_mrcnn.config.SiameseConfig` (NUM_CLASSES 2,
            NUM_TARGETS, TARGET_MIN_DIM, TARGET_MAX_DIM).
        shuffle, augmentation, seed, steps: as :class:`mrcnn.data.DataGenerator`.
            Augmentation applies to the query only; references are cropped from the
            un-augmented image.
        active_class_ids: the dataset's class ids that may serve as query and
            reference category (a split's training classes); None: every class.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size``,
            ``max_consecutive_failures`` of :class:`mrcnn.data.DataGenerator`.

    Images that hold no non-crowd instance of an active class according to the
    category index are left out of the walk up front (``image_ids``); an image whose
    active instances all vanish in the resize is passed over by the base class's
    rule (``load_sample`` returns None).

    Failing images: a query image whose image or masks fail to load is skipped by
    the base class (warned about once, counted in ``skipped`` and ``num_skipped``)
    and also leaves the reference pool (``unusable_images``). An image that fails
    while being drawn as a *reference* is warned about by its own name, counted the
    same way and leaves the pool; the sample continues with another reference, so a
    corrupt file never spoils other images' samples. Every random choice of a sample (crop,
    augmentation, category, anchors, subsampling, references) comes from the
    sample's generator, so batches depend only on ``(seed, epoch, index)``.
    """

    def __init__(self, dataset, config, shuffle=True, augmentation=None, seed=None,
                 steps=None, *, active_class_ids=None, **kwargs):
        super().__init__(dataset, config, shuffle=shuffle, augmentation=augmentation,
                         seed=seed, steps=steps, **kwargs)
        for name in ("NUM_TARGETS", "TARGET_MIN_DIM", "TARGET_MAX_DIM"):
            if not hasattr(config, name):
                raise ValueError(f"OneShotDataGenerator: config {config!r} has no {name}; "
                                 f"use a siamese_mrcnn.config.SiameseConfig")
        if config.NUM_CLASSES != 2:
            raise ValueError(f"OneShotDataGenerator: config.NUM_CLASSES must be 2 "
                             f"(background, match), got {config.NUM_CLASSES}")
        self.active_class_ids = _resolve_active_classes(dataset, active_class_ids)
        # Built once here (a scan of every mask for non-COCO datasets) and stored on
        # the dataset, so workers and reference sampling reuse it.
        index = ensure_category_index(dataset)
        with_active = [np.asarray(index.get(int(c), ()), dtype=np.int64)
                       for c in self.active_class_ids]
        candidates = np.unique(np.concatenate(with_active))
        if len(candidates) == 0:
            raise ValueError(f"OneShotDataGenerator: no image of the dataset holds a "
                             f"non-crowd instance of the active classes "
                             f"{self.active_class_ids.tolist()}")
        # Images without any active instance would only be loaded to be passed over.
        self.image_ids = self.image_ids[np.isin(self.image_ids, candidates)]
        # Images that failed to load: no reference is drawn from them any more.
        self.unusable_images = set()

    # -------------------------------------------------------------- samples
    def load_sample(self, image_id, rng):
        """Arrays of one query (batch keys without the B axis), or None to pass it
        over (no non-crowd instance of an active class after resizing)."""
        sample, _ = self.draw_sample(image_id, rng)
        return sample

    def choose_category(self, present_class_ids, rng):
        """The category to query, drawn uniformly from the active classes present
        (int [M] ascending dataset class ids, M >= 1)."""
        return int(present_class_ids[int(rng.integers(len(present_class_ids)))])

    def draw_sample(self, image_id, rng):
        """One one-shot sample and where it came from.

        Args:
            image_id: internal index of the query image in the dataset.
            rng: ``np.random.Generator``, the only source of randomness.
        Returns:
            (sample, provenance): ``sample`` is the dict of :meth:`load_sample`
            (``input_image`` [H, W, 3], ``input_image_meta`` [14], ``input_rpn_match``
            [A, 1], ``input_rpn_bbox`` [R, 4], ``input_gt_class_ids`` [G],
            ``input_gt_boxes`` [G, 4] pixel, ``input_gt_masks`` [h, w, G],
            ``input_reference_images`` [S, D, D, 3]) and ``provenance`` a
            :class:`SampleProvenance`; (None, None) when the image is passed over.
        Raises:
            whatever loading raises, and ValueError when no reference of the drawn
            category survives the resize (the base class then skips the image).
        """
        config = self.config
        try:
            # Both classes (background, match) are active in every one-shot sample.
            image, image_meta, class_ids, boxes, masks = load_image_gt(
                self.dataset, config, image_id, augmentation=self.augmentation, rng=rng,
                active_class_ids=np.ones(config.NUM_CLASSES, dtype=np.int32))
        except Exception:
            with self._lock:
                self.unusable_images.add(int(image_id))
            raise
        present = np.intersect1d(class_ids[class_ids > 0], self.active_class_ids)
        if len(present) == 0:
            return None, None
        class_id = self.choose_category(present, rng)
        # Crowds carry negated ids, so this keeps exactly the non-crowd instances.
        keep = np.flatnonzero(class_ids == class_id)
        boxes, masks = boxes[keep], masks[:, :, keep]
        gt_class_ids = np.ones(len(keep), dtype=np.int32)

        rpn_match, rpn_bbox = build_rpn_targets(self.anchors(image.shape), gt_class_ids,
                                                boxes, config, rng=rng)
        gt_class_ids, gt_boxes, gt_masks = pad_ground_truth(
            gt_class_ids, boxes, masks, config.MAX_GT_INSTANCES, rng)

        with self._lock:
            unusable = frozenset(self.unusable_images)
        references, sources = sample_references(self.dataset, class_id, rng, config,
                                                int(config.NUM_TARGETS),
                                                skip_images=unusable,
                                                on_load_error=self._reference_failed)
        sample = training_inputs(image, image_meta, rpn_match, rpn_bbox, gt_class_ids,
                                 gt_boxes, gt_masks, config)
        sample["input_reference_images"] = mold_image(np.stack(references), config)
        provenance = SampleProvenance(image_id=int(image_id), class_id=class_id,
                                      references=tuple(sources))
        return sample, provenance


    def _reference_failed(self, image_id, error):
        """A reference image failed to load: warn naming it (not the query), count
        it as a skipped sample and take it out of the reference pool."""
        message = f"{type(error).__name__}: {error}"
        with self._lock:
            self.unusable_images.add(int(image_id))
            first = image_id not in self.skipped
            self.skipped[image_id] = message
            self.num_skipped += 1
        if first:
            logger.warning("skipping reference %s: failed to load: %s; removed from "
                           "the reference pool", _describe(self.dataset, image_id), message)


def _resolve_active_classes(dataset, active_class_ids):
    """Validated, sorted unique int64 [M] class ids (all non-background if None)."""
    known = np.asarray(dataset.class_ids, dtype=np.int64)
    known = known[known > 0]
    if active_class_ids is None:
        active = known
    else:
        values = np.asarray(list(active_class_ids)).reshape(-1)
        if values.size == 0:
            raise ValueError("OneShotDataGenerator: active_class_ids is empty; pass None "
                             "for every class")
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"OneShotDataGenerator: active_class_ids must be integer "
                             f"class ids, got {list(active_class_ids)!r}")
        active = np.unique(values.astype(np.int64))
        unknown = np.setdiff1d(active, known)
        if len(unknown):
            raise ValueError(f"OneShotDataGenerator: active_class_ids {unknown.tolist()} "
                             f"are not classes of the dataset (1..{len(dataset.class_ids) - 1})")
    if len(active) == 0:
        raise ValueError("OneShotDataGenerator: the dataset has no class besides background")
    return active

