"""COCO-format datasets for one-shot training and evaluation, on pycocotools.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances of an
image, ``K`` classes without background.

Ids: a prepared :class:`CocoDataset` numbers its images 0..num_images-1 ("image
index", in order of ascending COCO image id) and its classes 1..K in order of
ascending COCO category id (0 is background), as SPEC section 4 requires for the
one-shot splits. ``coco_image_id`` / ``coco_category_id`` map back to the
annotation file's ids, which evaluation results must use.

Masks come from polygons, uncompressed RLE and compressed RLE alike; crowd regions
(``iscrowd=1``) get the negated class id, as everywhere in ``mrcnn``.

Annotations that cannot be used are dropped, counted, and reported in one warning
per annotation file (counts and a few annotation ids): a category id not in
"categories", an image id not in "images", or polygons that all have fewer than 3
points (they cover nothing). Polygons of fewer than 3 points beside valid ones are
dropped from their annotation, which is kept. ``CocoDataset.dropped_annotations``
lists the annotation ids by reason.

Standard COCO layout for :meth:`CocoDataset.load_coco`::

    dataset_dir/annotations/instances_{subset}{year}.json
    dataset_dir/{subset}{year}/<file_name>

Any other COCO-format dataset loads with :meth:`CocoDataset.load_coco_file` from an
annotation file and an image folder.
"""

import contextlib
import io
import json
import logging
import os

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mrcnn import utils

logger = logging.getLogger(__name__)

# Subsets whose images live in the val{year} folder (Detectron / Matterport names).
_VAL_IMAGE_SUBSETS = ("minival", "valminusminival")
# Subsets cut out of train{year}: all but its last ``validation_size`` images, and
# those last images (last by sorted image id, or in the original's order).
_TRAIN_DIVISION_SUBSETS = ("train_split", "val_split")
DEFAULT_VALIDATION_SIZE = 3000
VAL_DIVISIONS = ("sorted", "original")


def _check_validation_size(validation_size, count):
    if not isinstance(validation_size, (int, np.integer)) or not 0 < validation_size < count:
        raise ValueError(f"validation_size must be an integer in 1..{count - 1} for "
                         f"{count} images, got {validation_size!r}")


def original_train_val_ids(coco, validation_size=DEFAULT_VALIDATION_SIZE):
    """The original project's division of train2017 into (train, validation).

    It listed the images of each category (pycocotools ``getImgIds(catIds=[c])``,
    categories in ascending id), concatenated the lists, removed duplicates through
    a Python ``set`` and held out the last ``validation_size`` ids in that set's
    iteration order. Images without any annotation are in neither part. The hash
    of a small int is the int itself, so the order does not depend on the hash
    seed (PYTHONHASHSEED): it is a function of the ids and of the order they were
    inserted in, which this function repeats exactly.

    Returns two lists of ints in that iteration order (not sorted).
    Raises ValueError if validation_size is not in 1..annotated images - 1.
    """
    per_category = []
    for category_id in sorted(coco.getCatIds()):
        per_category.extend(coco.getImgIds(catIds=[category_id]))
    ordered = list(set(per_category))  # the order is the point: keep the set's
    _check_validation_size(validation_size, len(ordered))
    return ordered[:-validation_size], ordered[-validation_size:]


def divide_train_val(coco, validation_size=DEFAULT_VALIDATION_SIZE, division="sorted"):
    """(train ids, validation ids) of a train{year} annotation file.

    division: "sorted" (every image of the file; the last ``validation_size`` by
    ascending image id are validation, :func:`split_train_val_ids`) or "original"
    (the original project's: annotated images only, last in set order,
    :func:`original_train_val_ids`).
    """
    if division == "sorted":
        return split_train_val_ids(coco.getImgIds(), validation_size)
    if division == "original":
        return original_train_val_ids(coco, validation_size)
    raise ValueError(f"division must be one of {VAL_DIVISIONS}, got {division!r}")


def split_train_val_ids(image_ids, validation_size=DEFAULT_VALIDATION_SIZE):
    """Divide COCO image ids into (train, validation): the last ``validation_size``
    ids in ascending order are validation, the rest train.

    The original project took the last 3000 of the annotated images in Python set
    order (reproduced by :func:`original_train_val_ids`); this division is the
    simpler, documented alternative (SPEC section 4).

    Returns two ascending lists of ints.
    Raises ValueError if validation_size is not in 1..len(image_ids) - 1.
    """
    ids = sorted(int(i) for i in image_ids)
    _check_validation_size(validation_size, len(ids))
    return ids[:-validation_size], ids[-validation_size:]


def read_coco(annotation_file):
    """Load a COCO-format annotation file quietly into a pycocotools ``COCO``.

    Raises FileNotFoundError / ValueError naming the file when it is missing, not
    JSON, or lacks the "images", "annotations" or "categories" lists.
    """
    if not os.path.isfile(annotation_file):
        raise FileNotFoundError(f"COCO annotation file not found: {annotation_file}")
    try:
        with open(annotation_file, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{annotation_file}: not a JSON file: {e}") from None
    return coco_from_dict(data, origin=annotation_file)


def coco_from_dict(data, origin="<dict>"):
    """A pycocotools ``COCO`` from an in-memory COCO-format dict (indexed quietly)."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: a COCO annotation file holds a JSON object, got "
                         f"{type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{origin}: missing or invalid {key!r} list")
    cat_ids = [c.get("id") for c in data["categories"]]
    if len(set(cat_ids)) != len(cat_ids):
        raise ValueError(f"{origin}: repeated category ids in 'categories'")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco.createIndex()
    return coco


# Reasons an annotation is dropped (or loses polygons), in warning order, with the
# words of the warning.
_DROP_REASONS = {
    "unknown_category": "with a category id not in 'categories'",
    "missing_image": "of an image id not in 'images'",
    "degenerate_polygons": "whose polygons all have fewer than 3 points",
}
_SHORT_POLYGONS = "short_polygons"
_SHOWN_IDS = 5


def annotation_problems(coco, origin="annotations"):
    """{reason: [annotation ids]} of the unusable annotations of a pycocotools
    ``COCO`` (reasons: the keys of ``_DROP_REASONS``, plus "short_polygons" for
    annotations that keep some polygons but lose those of fewer than 3 points).

    Computed once per ``COCO`` object, which is when the one warning of the file is
    logged, so loading a train and a validation part of one file warns once.
    """
    cached = getattr(coco, "_siamese_mrcnn_annotation_problems", None)
    if cached is not None:
        return cached
    problems = {reason: [] for reason in (*_DROP_REASONS, _SHORT_POLYGONS)}
    details = {"unknown_category": set(), "missing_image": set()}
    annotations = coco.dataset.get("annotations", [])
    for ann in annotations:
        ann_id = ann.get("id")
        if ann.get("image_id") not in coco.imgs:
            problems["missing_image"].append(ann_id)
            details["missing_image"].add(ann.get("image_id"))
        elif ann.get("category_id") not in coco.cats:
            problems["unknown_category"].append(ann_id)
            details["unknown_category"].add(ann.get("category_id"))
        elif _covers_nothing(ann):
            problems["degenerate_polygons"].append(ann_id)
        elif isinstance(ann.get("segmentation"), list) and any(
                isinstance(p, (list, tuple)) and len(p) < 6 for p in ann["segmentation"]):
            problems[_SHORT_POLYGONS].append(ann_id)
    parts = []
    for reason, words in _DROP_REASONS.items():
        ids = problems[reason]
        if ids:
            extra = {"unknown_category": "category ids", "missing_image": "image ids"}.get(reason)
            parts.append(f"{len(ids)} {words} (annotation ids {_few(ids)}"
                         + (f"; {extra} {_few(sorted(details[reason], key=str))}"
                            if extra else "") + ")")
    dropped = sum(len(problems[r]) for r in _DROP_REASONS)
    message = ""
    if parts:
        message = (f"{origin}: {dropped} of {len(annotations)} annotations dropped: "
                   + ", ".join(parts))
    if problems[_SHORT_POLYGONS]:
        ids = problems[_SHORT_POLYGONS]
        message += (f"{'; ' if message else f'{origin}: '}{len(ids)} annotation(s) kept "
                    f"without their polygons of fewer than 3 points (annotation ids "
                    f"{_few(ids)})")
    if message:
        logger.warning("%s", message)
    coco._siamese_mrcnn_annotation_problems = problems
    return problems


def _few(values):
    shown = ", ".join(str(v) for v in values[:_SHOWN_IDS])
    return shown + (", ..." if len(values) > _SHOWN_IDS else "")


class CocoDataset(utils.Dataset):
    """A Matterport ``Dataset`` over COCO-format annotations, with one-shot indices.

    After :meth:`prepare`:
      * ``category_image_index``: {class id 1..K: int64 [M] ascending image indices
        with at least one non-crowd instance of the class};
      * ``image_category_index``: list over image indices of int32 ascending class ids
        with a non-crowd instance in the image;
      * ``coco``: the pycocotools ``COCO`` ground truth (for evaluation).
    Both indices are built from the annotations (no mask decoding).
    """

    def __init__(self, class_map=None):
        super().__init__(class_map)
        self._cocos = []
        self.category_image_index = {}
        self.image_category_index = []
        # {reason: annotation ids} dropped (or trimmed) while loading; see annotation_problems.
        self.dropped_annotations = {}

    # ------------------------------------------------------------------ loading
    def load_coco(self, dataset_dir, subset, year="2017", class_ids=None, return_coco=False,
                  validation_size=DEFAULT_VALIDATION_SIZE, val_division="sorted"):
        """Load a subset of COCO in the standard folder layout.

        Args:
            dataset_dir: folder holding ``annotations/`` and the image folders.
            subset: "train", "val", "minival", "valminusminival" (images in
                val{year}/), any other name with its own ``instances_{subset}{year}.json``
                and ``{subset}{year}/`` folder, or "train_split" / "val_split": the
                train{year} images minus / only the last ``validation_size`` (training
                and validation of the one-shot protocol; see ``val_division``).
            year: "2014", "2017", ...
            class_ids: COCO category ids to load (None: all). Only images containing
                one of them are loaded, and only their annotations.
            return_coco: also return the pycocotools ``COCO`` object.
            validation_size: images held out by "train_split" / "val_split".
            val_division: "sorted" (last by image id) or "original" (the original
                project's set order, annotated images only); see
                :func:`divide_train_val`.
        """
        if subset in _TRAIN_DIVISION_SUBSETS:
            source_subset, image_subset = "train", "train"
        elif subset in _VAL_IMAGE_SUBSETS:
            source_subset, image_subset = subset, "val"
        else:
            source_subset, image_subset = subset, subset
        annotation_file = os.path.join(dataset_dir, "annotations",
                                       f"instances_{source_subset}{year}.json")
        image_dir = os.path.join(dataset_dir, f"{image_subset}{year}")
        if not os.path.isfile(annotation_file):
            raise FileNotFoundError(
                f"load_coco: annotation file not found: {annotation_file} (expected "
                f"layout: {dataset_dir}/annotations/instances_<subset><year>.json)")
        coco = read_coco(annotation_file)
        image_ids = None
        if subset in _TRAIN_DIVISION_SUBSETS:
            train_ids, val_ids = divide_train_val(coco, validation_size, val_division)
            image_ids = train_ids if subset == "train_split" else val_ids
        return self.load_coco_file(coco, image_dir, class_ids=class_ids,
                                   return_coco=return_coco, image_ids=image_ids)

    def load_coco_file(self, annotation_file, image_dir, class_ids=None, return_coco=False,
                       image_ids=None, source="coco"):
        """Load any COCO-format dataset: an annotation file (or ``COCO`` object) and
        the folder its image ``file_name``\\ s are relative to.

        Args:
            annotation_file: path of the JSON file, or a pycocotools ``COCO``.
            image_dir: folder of the images.
            class_ids: COCO category ids to load (None: all categories of the file).
            return_coco: also return the ``COCO`` object.
            image_ids: restrict to these COCO image ids (None: all, or with
                ``class_ids`` the images containing one of those categories).
            source: the dataset source name in class and image registrations.
        """
        coco = annotation_file if isinstance(annotation_file, COCO) else read_coco(annotation_file)
        origin = annotation_file if isinstance(annotation_file, str) else "annotations"
        all_cat_ids = sorted(coco.getCatIds())
        if class_ids is None:
            class_ids = all_cat_ids
            selected = set(coco.getImgIds())
        else:
            class_ids = sorted(int(c) for c in class_ids)
            unknown = sorted(set(class_ids) - set(all_cat_ids))
            if unknown:
                raise ValueError(f"{origin}: unknown category id(s) {unknown}; the file has "
                                 f"{all_cat_ids}")
            selected = set()
            for cat_id in class_ids:
                selected.update(coco.getImgIds(catIds=[cat_id]))
        if image_ids is not None:
            missing = sorted(set(int(i) for i in image_ids) - set(coco.getImgIds()))
            if missing:
                raise ValueError(f"{origin}: image id(s) not in the file: {missing[:10]}")
            selected &= set(int(i) for i in image_ids)

        problems = annotation_problems(coco, origin)
        for reason, ids in problems.items():
            known = self.dropped_annotations.setdefault(reason, [])
            known.extend(i for i in ids if i not in known)
        for cat_id in class_ids:
            self.add_class(source, cat_id, coco.loadCats(cat_id)[0]["name"])
        wanted = set(class_ids)
        for image_id in sorted(selected):
            info = coco.imgs[image_id]
            for key in ("file_name", "width", "height"):
                if key not in info:
                    raise ValueError(f"{origin}: image {image_id} has no {key!r}")
            annotations = [a for a in coco.imgToAnns.get(image_id, [])
                           if a.get("category_id") in wanted and not _covers_nothing(a)]
            self.add_image(source, image_id=image_id,
                           path=os.path.join(image_dir, info["file_name"]),
                           width=int(info["width"]), height=int(info["height"]),
                           annotations=annotations)
        self._cocos.append((source, coco))
        if return_coco:
            return coco
        return None

    # ------------------------------------------------------------------ indices
    def prepare(self, class_map=None):
        """Number classes and images (see ``mrcnn.utils.Dataset.prepare``) and build
        ``category_image_index`` and ``image_category_index``."""
        super().prepare(class_map)
        from siamese_mrcnn.references import index_categories

        def present(image_id):
            info = self.image_info[image_id]
            if not self._is_coco_source(info["source"]):
                return ()
            return {self._class_id(info, ann) for ann in info["annotations"]
                    if not ann.get("iscrowd", 0)}

        index_categories(self, present)

    @property
    def coco(self):
        """The pycocotools ``COCO`` ground truth of the loaded annotation file."""
        if len(self._cocos) != 1:
            raise ValueError(f"CocoDataset.coco needs exactly one loaded annotation file, "
                             f"this dataset has {len(self._cocos)}")
        return self._cocos[0][1]

    def coco_image_id(self, image_id):
        """COCO image id of internal image index ``image_id``."""
        return int(self._info(image_id)["id"])

    def coco_category_id(self, class_id):
        """COCO category id of contiguous class id ``class_id`` (1..K)."""
        if not 1 <= int(class_id) < len(self.class_info):
            raise ValueError(f"class id {class_id} out of range 1..{len(self.class_info) - 1}")
        return int(self.class_info[int(class_id)]["id"])

    def class_id_from_category(self, category_id, source="coco"):
        """Contiguous class id of a COCO category id."""
        return self.map_source_class_id(f"{source}.{int(category_id)}")

    def image_index_from_coco(self, coco_image_id, source="coco"):
        """Internal image index of a COCO image id."""
        key = f"{source}.{int(coco_image_id)}"
        if key not in self.image_from_source_map:
            raise KeyError(f"COCO image id {coco_image_id} is not loaded in this dataset")
        return self.image_from_source_map[key]

    def image_reference(self, image_id):
        """The image's file path."""
        return self._info(image_id)["path"]

    # ------------------------------------------------------------------ masks
    def load_mask(self, image_id):
        """Instance masks of an image: (bool [H, W, N], int32 class ids [N]).

        Crowd regions have negative class ids. Annotations whose mask covers no pixel
        are dropped. An image without instances gives a [H, W, 0] mask.
        """
        masks, class_ids, _ = self.load_instances(image_id)
        return masks, class_ids

    def load_instances(self, image_id):
        """As :meth:`load_mask`, plus int64 [N] COCO annotation ids of the instances."""
        info = self._info(image_id)
        if not self._is_coco_source(info["source"]):
            masks, class_ids = super().load_mask(image_id)
            return masks, class_ids, np.full(len(class_ids), -1, dtype=np.int64)
        height, width = info["height"], info["width"]
        masks, class_ids, ann_ids = [], [], []
        for ann in info["annotations"]:
            mask = annotation_to_mask(ann, height, width, image_id=info["id"])
            if not mask.any():
                continue
            class_id = self._class_id(info, ann)
            masks.append(mask)
            class_ids.append(-class_id if ann.get("iscrowd", 0) else class_id)
            ann_ids.append(ann.get("id", -1))
        if not masks:
            return (np.zeros((height, width, 0), dtype=bool), np.zeros(0, dtype=np.int32),
                    np.zeros(0, dtype=np.int64))
        return (np.stack(masks, axis=-1), np.array(class_ids, dtype=np.int32),
                np.array(ann_ids, dtype=np.int64))

    # ------------------------------------------------------------------ private
    def _is_coco_source(self, source):
        return any(source == s for s, _ in self._cocos)

    def _class_id(self, info, ann):
        return self.map_source_class_id(f"{info['source']}.{ann['category_id']}")


def encode_masks(masks):
    """COCO's compressed RLEs of instance masks, ready for JSON.

    Args:
        masks: bool (or 0/1) [H, W, N].

    Returns:
        N dicts ``{"size": [H, W], "counts": str}`` (what ``pycocotools.mask.decode``
        and COCOeval read back; an empty mask is a valid RLE too).
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"encode_masks: masks must be [H, W, N], got shape {masks.shape}")
    if masks.shape[-1] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
    return [{"size": [int(v) for v in rle["size"]],
             "counts": rle["counts"].decode("ascii") if isinstance(rle["counts"], bytes)
             else rle["counts"]} for rle in rles]


def _covers_nothing(ann):
    """True for polygon annotations whose polygons all have fewer than 3 points
    (x, y pairs), including an empty polygon list."""
    segm = ann.get("segmentation")
    return (isinstance(segm, list) and all(isinstance(p, (list, tuple)) for p in segm)
            and not any(len(p) >= 6 for p in segm))


def annotation_to_mask(ann, height, width, image_id=None):
    """Decode one COCO annotation's segmentation to a bool [H, W] mask.

    Accepts polygons (list of [x1, y1, x2, y2, ...] lists; polygons with fewer than 3
    points cover nothing and are skipped), uncompressed RLE (``counts`` a list of
    ints) and compressed RLE (``counts`` a string). RLE ``size`` must be [H, W].

    Raises:
        ValueError naming the image id and annotation id when the segmentation is
        missing or malformed.
    """
    where = f"image {image_id}, annotation {ann.get('id')}"
    segm = ann.get("segmentation")
    try:
        if isinstance(segm, list):
            polygons = []
            for poly in segm:
                if not isinstance(poly, (list, tuple)) or len(poly) % 2:
                    raise ValueError("a polygon must be a flat list of x, y pairs")
                if len(poly) >= 6:
                    polygons.append([float(v) for v in poly])
            if not polygons:
                return np.zeros((height, width), dtype=bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
        elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
            if [int(v) for v in segm["size"]] != [height, width]:
                raise ValueError(f"RLE size {segm['size']} differs from the image size "
                                 f"[{height}, {width}]")
            counts = segm["counts"]
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects(segm, height, width)
            elif isinstance(counts, (str, bytes)):
                rle = segm
            else:
                raise ValueError(f"RLE counts must be a list or a string, got "
                                 f"{type(counts).__name__}")
        else:
            raise ValueError(f"unsupported segmentation {type(segm).__name__}: expected "
                             f"polygons or an RLE dict with 'counts' and 'size'")
        mask = mask_utils.decode(rle)
    except ValueError as e:
        raise ValueError(f"{where}: malformed segmentation: {e}") from None
    except Exception as e:  # pycocotools raises bare Exception / TypeError on bad data
        raise ValueError(f"{where}: malformed segmentation ({type(e).__name__}: {e})") from e
    if mask.shape != (height, width):
        raise ValueError(f"{where}: decoded mask {mask.shape} differs from the image size "
                         f"({height}, {width})")
    return mask.astype(bool)
