"""The paper's baselines for the one-shot evaluation: random boxes, wrong references.

Shape shorthand: ``H, W`` query image height and width in pixels, ``N`` detections
of one query, ``Q`` categories queried in one image, ``S`` shots, ``D`` reference
side (TARGET_MAX_DIM). Boxes are pixel ``(y1, x1, y2, x2)`` of the original query
image, y2/x2 exclusive.

A baseline changes one step of the evaluation of one (run, image)
(:func:`siamese_mrcnn.evaluation.run_detections` takes ``baseline=``); the rest
of the protocol (which categories are queried, how results are labelled, pooled
and scored) is unchanged:

- :class:`WrongReference` ("wrong-reference"): every query's references are
  replaced by references of a *different* evaluated category, drawn uniformly.
  A model that detected "objects" regardless of the reference would score as
  well with them as with the right ones; the gap is what the reference adds.
- :class:`RandomBoxes` ("random-boxes"): the model's detections are kept but
  moved to random places, the original's ``detect(..., random_detections=True)``
  behind the paper's "random boxes" row (unseen AP50 1.2 boxes / 0.5 masks):
  each box keeps a size the model predicted and lands uniformly inside the image,
  the boxes are shuffled among the score ranks while scores and masks stay with
  their rank (see :func:`random_boxes`).

Both are seeded by ``seed`` (the CLI and the demo use the evaluation seed +
:data:`BASELINE_SEED_OFFSET`) and by the run, so they do not depend on the order
of work, on sharding or on resuming.
"""

import zlib

import numpy as np

from mrcnn import utils
from siamese_mrcnn.references import sample_references

BASELINES = ("random-boxes", "wrong-reference")
# Added to the evaluation seed for the baseline's own draws (the demo's choice).
BASELINE_SEED_OFFSET = 7

WRONG_REFERENCE_NOTE = (
    "wrong reference: each query's reference is replaced by one of a different "
    "category, drawn uniformly from the other evaluated categories (seen and unseen) "
    "with a generator seeded by (seed, query image, run); the reference image is "
    "drawn by the usual reference rule from any evaluation image")
RANDOM_BOXES_NOTE = (
    "random boxes: the model's detections with each box moved to a uniformly random "
    "place in the image (sizes kept, boxes shuffled among the score ranks, scores and "
    "masks kept by rank), as the original's detect(random_detections=True)")


class Baseline:
    """A change to the evaluation of one (run, image); subclasses override a hook.

    Both hooks get the dataset, the evaluation config and :class:`EvalMode`, the
    query image uint8 [H, W, 3], its internal index ``image_id``, the queried class
    ids (ascending) and the run.
    """

    name = None
    note = ""

    def __init__(self, seed):
        self.seed = int(seed)

    def settings(self):
        """What identifies the baseline in partial files and reports (JSON)."""
        return {"name": self.name, "seed": self.seed, "how": self.note}

    def replace_references(self, dataset, config, mode, image, image_id, queried, run,
                           shots, reference_sets, provenance):
        """-> (Q lists of S uint8 [D, D, 3] references, Q provenance dicts)."""
        return reference_sets, provenance

    def replace_detections(self, dataset, config, mode, image, image_id, queried, run,
                           outputs):
        """-> Q detection dicts (the detector interface of the evaluation)."""
        return outputs


class WrongReference(Baseline):
    """References of another category (see module docstring).

    evaluated: every class id that may serve as the wrong category (at least 2).
    For one (run, image) a generator seeded by (seed, CRC-32 of the image's bytes,
    run) draws, for each queried class in ascending order, the wrong class and then
    its ``shots`` references (reference rule, any evaluation image); this is the
    demo's draw, so its published baseline numbers are reproduced.
    """

    name = "wrong-reference"
    note = WRONG_REFERENCE_NOTE

    def __init__(self, evaluated, seed):
        super().__init__(seed)
        self.evaluated = sorted(int(c) for c in evaluated)
        if len(self.evaluated) < 2:
            raise ValueError("a wrong-category reference needs at least 2 evaluated "
                             f"categories, got {self.evaluated}")

    def generator(self, image, run):
        """The generator of one (run, query image)."""
        key = zlib.crc32(np.ascontiguousarray(image).tobytes())
        return np.random.default_rng([self.seed, key, int(run)])

    def replace_references(self, dataset, config, mode, image, image_id, queried, run,
                           shots, reference_sets, provenance):
        rng = self.generator(image, run)
        swapped, records = [], []
        for class_id in queried:
            others = [c for c in self.evaluated if c != int(class_id)]
            if not others:
                raise ValueError(f"class {class_id}: no other evaluated category to draw a "
                                 f"wrong reference from")
            wrong = others[int(rng.integers(len(others)))]
            refs, sources = sample_references(dataset, wrong, rng, config, shots,
                                              resampling=mode.resampling)
            swapped.append(refs)
            records.append({"class_id": int(class_id), "reference_class_id": wrong,
                            "sources": [s.to_dict() for s in sources]})
        return swapped, records


class RandomBoxes(Baseline):
    """The model's detections at random places (see :func:`random_boxes`); one
    generator per (run, image, category), seeded like the references."""

    name = "random-boxes"
    note = RANDOM_BOXES_NOTE

    def replace_detections(self, dataset, config, mode, image, image_id, queried, run,
                           outputs):
        image_key = dataset.coco_image_id(image_id) if hasattr(dataset, "coco_image_id") \
            else int(image_id)
        moved = []
        for class_id, output in zip(queried, outputs):
            category_key = dataset.coco_category_id(class_id) \
                if hasattr(dataset, "coco_category_id") else int(class_id)
            rng = np.random.default_rng(np.random.SeedSequence(
                [self.seed, int(run), int(image_key), int(category_key)]))
            moved.append(random_boxes(output, image.shape[:2], rng, mode.resampling))
        return moved


def random_boxes(detection, image_shape, rng, resampling="corrected"):
    """The original's random detections, on one query's unmolded detections.

    The original shifted each detected box (normalised, in the molded frame) by a
    uniform offset that keeps it inside the image window, permuted the scores among
    the detections and re-sorted by score, while the masks stayed in their rows.
    Net effect, done here on pixel boxes of the original image: the detection at
    score rank k keeps its score and its mask, and gets the size of the box of a
    randomly permuted rank, placed uniformly (integer offsets) inside the image;
    its mask is refitted from its old box into the new one (a resize of the pasted
    mask; the original pasted the 28x28 probabilities directly).

    Args:
        detection: {"rois": int [N, 4] pixel boxes, "scores": float [N],
            "masks": bool [H, W, N] or None}.
        image_shape: (H, W) of the query image.
        rng: ``np.random.Generator``.
        resampling: how masks are refitted ("corrected" or "faithful").
    Returns:
        a new dict of the same form, detections by descending score.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    rois = np.asarray(detection["rois"]).reshape(-1, 4).astype(np.int64)
    scores = np.asarray(detection["scores"], dtype=np.float32).reshape(-1)
    masks = detection.get("masks")
    count = len(scores)
    if count == 0:
        return {"rois": rois.astype(np.int32), "scores": scores, "masks": masks}
    order = np.argsort(-scores, kind="stable")
    rois, scores = rois[order], scores[order]
    heights = np.clip(rois[:, 2] - rois[:, 0], 1, height)
    widths = np.clip(rois[:, 3] - rois[:, 1], 1, width)
    # Each rank takes the box size of a permuted rank, as the original's re-sort did.
    shuffle = rng.permutation(count)
    heights, widths = heights[shuffle], widths[shuffle]
    y1 = rng.integers(0, height - heights + 1)
    x1 = rng.integers(0, width - widths + 1)
    boxes = np.stack([y1, x1, y1 + heights, x1 + widths], axis=1)
    out = {"rois": boxes.astype(np.int32), "scores": scores, "masks": None}
    if masks is not None:
        masks = np.asarray(masks)[:, :, order]
        moved = np.zeros((height, width, count), dtype=bool)
        for k in range(count):  # each mask moves into a box of its own size
            oy1, ox1, oy2, ox2 = (int(v) for v in rois[k])
            oy1, ox1 = max(oy1, 0), max(ox1, 0)
            oy2, ox2 = min(max(oy2, oy1 + 1), height), min(max(ox2, ox1 + 1), width)
            crop = masks[oy1:oy2, ox1:ox2, k].astype(np.float32)
            if crop.size:
                moved[:, :, k] = utils.unmold_mask(crop, boxes[k], (height, width),
                                                   resampling)
        out["masks"] = moved
    return out


def make_baseline(name, evaluated, seed):
    """The baseline called ``name`` ("random-boxes" or "wrong-reference") for the
    evaluated class ids, seeded by ``seed``."""
    if name == "wrong-reference":
        return WrongReference(evaluated, seed)
    if name == "random-boxes":
        return RandomBoxes(seed)
    raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
