"""One-shot class splits: which categories a model trains on ("seen") and which are held out.

Class ids here are the *contiguous* internal ids of a prepared dataset: 1..K in order
of sorted source category id (0 is background). For COCO (K = 80), split ``i`` in
1..4 holds out the 20 classes ``{4k + i : k = 0..19}`` (SPEC section 4); the other 60
are seen. Split ``"all"`` has all 80 classes seen and none held out (the model
trained on every class).

For other datasets a split is given by the names of its held-out classes
(:func:`split_from_names`) or by the same every-k-th rule (:func:`split_every_kth`).
"""

from dataclasses import dataclass

# The 80 COCO categories as (official COCO category id, name), sorted by id. Contiguous
# class id c is entry c - 1.
COCO_CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"),
    (6, "bus"), (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"),
    (11, "fire hydrant"), (13, "stop sign"), (14, "parking meter"), (15, "bench"),
    (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"),
    (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"),
    (35, "skis"), (36, "snowboard"), (37, "sports ball"), (38, "kite"),
    (39, "baseball bat"), (40, "baseball glove"), (41, "skateboard"), (42, "surfboard"),
    (43, "tennis racket"), (44, "bottle"), (46, "wine glass"), (47, "cup"), (48, "fork"),
    (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"),
    (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"),
    (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"), (72, "tv"),
    (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"), (77, "cell phone"),
    (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"), (82, "refrigerator"),
    (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"),
)
COCO_CLASS_NAMES = tuple(name for _, name in COCO_CATEGORIES)
NUM_COCO_CLASSES = len(COCO_CATEGORIES)

SPLIT_NAMES = (1, 2, 3, 4, "all")


def every_kth(num_classes, k, offset):
    """Contiguous ids c in 1..num_classes with c = offset (mod k), ascending."""
    return tuple(c for c in range(1, num_classes + 1) if (c - offset) % k == 0)


# Held-out ("unseen") contiguous class ids of the four COCO splits.
COCO_SPLIT_CLASSES = {i: every_kth(NUM_COCO_CLASSES, 4, i) for i in (1, 2, 3, 4)}


@dataclass(frozen=True)
class Split:
    """A division of classes 1..K into seen (trained on) and unseen (held out).

    ``seen_ids`` / ``unseen_ids`` are ascending contiguous class ids; ``seen_names`` /
    ``unseen_names`` the matching class names. ``name`` labels the split in reports
    (``"1"``..``"4"``, ``"all"`` or a custom label).
    """

    name: str
    seen_ids: tuple
    unseen_ids: tuple
    seen_names: tuple
    unseen_names: tuple

    @property
    def groups(self):
        """{"seen": ids, "unseen": ids}, leaving out an empty group."""
        out = {"seen": self.seen_ids, "unseen": self.unseen_ids}
        return {k: v for k, v in out.items() if v}

    @property
    def all_ids(self):
        return tuple(sorted(self.seen_ids + self.unseen_ids))

    def to_dict(self):
        return {"name": self.name, "seen_ids": list(self.seen_ids),
                "unseen_ids": list(self.unseen_ids), "seen_names": list(self.seen_names),
                "unseen_names": list(self.unseen_names)}


def _make_split(name, unseen_ids, class_names):
    """class_names: names of classes 1..K (index 0 = class 1)."""
    unseen = tuple(sorted(set(int(c) for c in unseen_ids)))
    seen = tuple(c for c in range(1, len(class_names) + 1) if c not in set(unseen))
    return Split(name=str(name), seen_ids=seen, unseen_ids=unseen,
                 seen_names=tuple(class_names[c - 1] for c in seen),
                 unseen_names=tuple(class_names[c - 1] for c in unseen))


def _parse_split(split):
    if isinstance(split, str) and split.strip().lower() == "all":
        return "all"
    try:
        number = int(split)
    except (TypeError, ValueError):
        number = None
    if number not in (1, 2, 3, 4) or isinstance(split, float) and split != number:
        raise ValueError(f"unknown split {split!r}; valid splits are 1, 2, 3, 4 and 'all'")
    return number


def get_split(split, num_classes=NUM_COCO_CLASSES, class_names=None):
    """The one-shot split ``split`` (1..4 or "all") over classes 1..num_classes.

    Split i holds out ``{c : c = i (mod 4)}``; for COCO's 80 classes this is SPEC
    section 4's split. ``class_names`` (length num_classes, for classes 1..K in
    order) default to the COCO names when num_classes is 80, else to "class_<id>".

    Raises:
        ValueError: unknown split (the message lists the valid ones) or names of the
            wrong length.
    """
    parsed = _parse_split(split)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"get_split: num_classes must be a positive int, got {num_classes!r}")
    if class_names is None:
        class_names = (COCO_CLASS_NAMES if num_classes == NUM_COCO_CLASSES
                       else tuple(f"class_{c}" for c in range(1, num_classes + 1)))
    class_names = tuple(class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"get_split: {len(class_names)} class names for num_classes="
                         f"{num_classes}")
    unseen = () if parsed == "all" else every_kth(num_classes, 4, parsed)
    return _make_split(parsed, unseen, class_names)


def _dataset_names(dataset):
    """Names of a prepared dataset's classes 1..K (background dropped)."""
    names = getattr(dataset, "class_names", None)
    if names is None:
        raise ValueError("the dataset must be prepared (dataset.prepare()) before making "
                         "a split of its classes")
    return tuple(names[1:])


def split_from_names(dataset, unseen_names, name="custom"):
    """Split a prepared dataset's classes: ``unseen_names`` held out, the rest seen.

    Raises:
        ValueError: a name that is not a class of the dataset (listing the valid
            names), a repeated name, or no name given.
    """
    if isinstance(unseen_names, str):
        raise ValueError("split_from_names: unseen_names must be a list of class names, "
                         f"got the single string {unseen_names!r}")
    class_names = _dataset_names(dataset)
    unseen_names = list(unseen_names)
    if not unseen_names:
        raise ValueError("split_from_names: no unseen class names given")
    index = {n: i + 1 for i, n in enumerate(class_names)}
    unknown = [n for n in unseen_names if n not in index]
    if unknown:
        raise ValueError(f"split_from_names: unknown class name(s) {unknown}; the "
                         f"dataset's classes are {list(class_names)}")
    repeated = sorted({n for n in unseen_names if unseen_names.count(n) > 1})
    if repeated:
        raise ValueError(f"split_from_names: class name(s) given twice: {repeated}")
    return _make_split(name, [index[n] for n in unseen_names], class_names)


def split_every_kth(dataset, k, offset, name=None):
    """Hold out every k-th class of a prepared dataset: ids c with c = offset (mod k).

    ``split_every_kth(coco, 4, i)`` is COCO split i. ``offset`` is taken modulo k.

    Raises:
        ValueError: k < 2 (k = 1 holds out everything) or a non-integer argument.
    """
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"split_every_kth: k must be an integer >= 2, got {k!r}")
    if not isinstance(offset, int):
        raise ValueError(f"split_every_kth: offset must be an integer, got {offset!r}")
    class_names = _dataset_names(dataset)
    label = name if name is not None else f"every_{k}th_offset_{offset % k}"
    return _make_split(label, every_kth(len(class_names), k, offset), class_names)
