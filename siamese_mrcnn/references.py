"""The reference rule: how a reference image of a category is drawn and shaped.

Shape shorthand: ``H, W`` image height and width in pixels, ``D`` the reference side
``TARGET_MAX_DIM``, ``k`` shots.

Rule (SPEC section 4), shared by training and evaluation:
  1. a random image containing a non-crowd instance of the category (it may be the
     query itself unless excluded);
  2. a random non-crowd instance of the category in it;
  3. the image resized the query way (``IMAGE_RESIZE_MODE``, ``IMAGE_MIN_DIM``,
     ``IMAGE_MAX_DIM``, ``IMAGE_MIN_SCALE``) and the instance's mask with it;
  4. the mask's tight pixel box cropped from that resized image;
  5. the crop resized "square" with ``min_dim=TARGET_MIN_DIM`` (up-scaling only),
     ``max_dim=TARGET_MAX_DIM`` and zero padded (centred) to uint8 [D, D, 3].

Steps 3 and 5 resample by the config's ``RESAMPLING`` ("corrected", or "faithful":
the original's scikit-image calls, whose zeros beyond the border give an up-scaled
crop a dark rim); every function takes ``resampling`` to override it.

All randomness comes from the ``np.random.Generator`` passed in, so a seeded
generator reproduces the same references.
"""

from dataclasses import asdict, dataclass

import numpy as np

from mrcnn import utils


def reference_dims(config_or_dims):
    """(min_dim, max_dim) of references from a config (TARGET_MIN_DIM, TARGET_MAX_DIM)
    or from a (min_dim, max_dim) pair."""
    if hasattr(config_or_dims, "TARGET_MAX_DIM"):
        return int(config_or_dims.TARGET_MIN_DIM), int(config_or_dims.TARGET_MAX_DIM)
    try:
        min_dim, max_dim = (int(v) for v in config_or_dims)
    except (TypeError, ValueError):
        raise ValueError("reference dims must be a config with TARGET_MIN_DIM and "
                         f"TARGET_MAX_DIM or a (min_dim, max_dim) pair, got "
                         f"{config_or_dims!r}") from None
    if max_dim < 1 or min_dim > max_dim:
        raise ValueError(f"reference dims need 0 <= min_dim <= max_dim, max_dim >= 1; got "
                         f"({min_dim}, {max_dim})")
    return min_dim, max_dim


def _resampling(config_or_dims, resampling):
    """The resampling to use: the argument, else the config's, else "corrected"."""
    if resampling is not None:
        return utils.check_resampling(resampling)
    return utils.config_resampling(config_or_dims)


def resize_reference(image, config_or_dims, resampling=None):
    """Resize an image by the reference rule: uint8 [D, D, 3], content centred.

    The scale is max(1, min_dim / short side), lowered so the long side fits in
    max_dim = D; the rest is zero padding. Non-uint8 input is rounded and clipped
    to 0..255. A reference already of that form comes back unchanged.
    ``resampling``: "corrected" or "faithful"; None takes the config's RESAMPLING
    ("corrected" for a (min, max) pair).
    """
    resampling = _resampling(config_or_dims, resampling)
    min_dim, max_dim = reference_dims(config_or_dims)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"resize_reference: image must be a non-empty [h, w, C] array, "
                         f"got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float64)), 0, 255).astype(np.uint8)
    resized, _, _, _, _ = utils.resize_image(image, min_dim=min_dim, max_dim=max_dim,
                                             mode="square", resampling=resampling)
    return resized


def crop_reference(image, box, config_or_dims, resampling=None):
    """Crop a pixel box from an (already query-resized) image and apply the reference rule.

    Args:
        image: uint8 [H, W, 3].
        box: pixel (y1, x1, y2, x2), y2/x2 exclusive; clipped to the image.
        config_or_dims: a config (TARGET_MIN_DIM, TARGET_MAX_DIM) or (min, max) dims.
        resampling: as :func:`resize_reference`.
    Returns:
        uint8 [D, D, 3] reference, zero padded.
    Raises:
        ValueError if the box covers no pixel of the image.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"crop_reference: image must be [H, W, C], got shape {image.shape}")
    height, width = image.shape[:2]
    y1, x1, y2, x2 = (int(v) for v in np.asarray(box).reshape(4))
    y1, x1 = max(y1, 0), max(x1, 0)
    y2, x2 = min(y2, height), min(x2, width)
    if y2 <= y1 or x2 <= x1:
        raise ValueError(f"crop_reference: box {tuple(int(v) for v in np.asarray(box))} "
                         f"covers no pixel of the {height}x{width} image")
    return resize_reference(image[y1:y2, x1:x2], config_or_dims, resampling)


class NoReferenceError(ValueError):
    """No (allowed) image holds a usable non-crowd instance of the category."""


@dataclass(frozen=True)
class ReferenceSource:
    """Where a reference came from.

    image_id: internal image index in the dataset; instance: index of the instance in
    ``dataset.load_mask(image_id)``; annotation_id: the source annotation id (-1 if the
    dataset does not give one); box: pixel (y1, x1, y2, x2) of the crop in the
    query-style resized image.
    """

    image_id: int
    instance: int
    annotation_id: int
    box: tuple

    def to_dict(self):
        d = asdict(self)
        d["box"] = list(self.box)
        return d


def index_categories(dataset, present_classes):
    """Build and store the two category indices of a one-shot dataset.

    Args:
        dataset: a prepared ``mrcnn.utils.Dataset``.
        present_classes: ``(image_id) -> iterable of class ids`` with a non-crowd
            instance in that image.

    Sets and returns ``dataset.category_image_index``: {class id (every class of the
    dataset but background): int64 image indices holding it, ascending}; also sets
    ``dataset.image_category_index``: list over image indices of int32 ascending
    class ids. References are drawn and queries chosen through these.
    """
    per_class = {int(c): [] for c in dataset.class_ids[1:]}
    dataset.image_category_index = []
    for image_id in dataset.image_ids:
        present = np.array(sorted({int(c) for c in present_classes(int(image_id)) if c > 0}),
                           dtype=np.int32)
        dataset.image_category_index.append(present)
        for class_id in present:
            per_class.setdefault(int(class_id), []).append(int(image_id))
    dataset.category_image_index = {c: np.array(v, dtype=np.int64)
                                    for c, v in per_class.items()}
    return dataset.category_image_index


def ensure_category_index(dataset):
    """The dataset's ``category_image_index`` {class id: image indices with a
    non-crowd instance}; a dataset without one (any ``mrcnn.utils.Dataset``) gets
    both indices by a scan of ``load_mask`` (:func:`index_categories`)."""
    index = getattr(dataset, "category_image_index", None)
    if index is None:
        index = index_categories(
            dataset, lambda image_id: np.asarray(dataset.load_mask(image_id)[1]))
    return index


def _class_label(dataset, class_id):
    names = getattr(dataset, "class_names", None)
    if names is not None and 0 <= class_id < len(names):
        return f"class {class_id} ({names[class_id]!r})"
    return f"class {class_id}"


def _load_instances(dataset, image_id):
    if hasattr(dataset, "load_instances"):
        return dataset.load_instances(image_id)
    masks, class_ids = dataset.load_mask(image_id)
    return masks, np.asarray(class_ids), np.full(len(class_ids), -1, dtype=np.int64)


def _query_resize(image, config, rng, resampling):
    kwargs = dict(min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
                  min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE,
                  resampling=resampling)
    if config.IMAGE_RESIZE_MODE == "crop":
        kwargs["rng"] = rng
    return utils.resize_image(image, **kwargs)


def classes_after_resize(dataset, image_id, config, resampling=None):
    """Class ids an image "contains" after the query-style resize, the original's way.

    The original decided which categories to query in an image from the instances
    its ground-truth loader kept: non-crowd instances whose mask is non-empty after
    the image is resized (IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM,
    IMAGE_MIN_SCALE; "crop" is taken as "square", nothing may be cut away). A tiny
    instance can vanish in a down-scale, so its category is then not queried.

    Args:
        dataset: a prepared dataset (``load_mask`` or ``load_instances``).
        image_id: internal image index.
        config: the query resize settings; ``resampling`` None takes its RESAMPLING.
    Returns:
        ascending list of int class ids (> 0).
    """
    resampling = _resampling(config, resampling)
    masks, class_ids, _ = _load_instances(dataset, image_id)
    class_ids = np.asarray(class_ids).reshape(-1)
    candidates = np.flatnonzero(class_ids > 0)
    if len(candidates) == 0:
        return []
    masks = np.asarray(masks)
    mode = "square" if config.IMAGE_RESIZE_MODE == "crop" else config.IMAGE_RESIZE_MODE
    # Only the geometry (scale, padding) is needed, so a blank image stands in.
    _, _, scale, padding, _ = utils.resize_image(
        np.zeros(masks.shape[:2], np.uint8), min_dim=config.IMAGE_MIN_DIM,
        max_dim=config.IMAGE_MAX_DIM, min_scale=config.IMAGE_MIN_SCALE, mode=mode)
    resized = utils.resize_mask(masks[:, :, candidates], scale, padding,
                                resampling=resampling)
    alive = resized.reshape(-1, len(candidates)).any(axis=0)
    return sorted({int(c) for c in class_ids[candidates[alive]]})


def _reference_from_image(dataset, image_id, class_id, rng, config, resampling):
    """A reference of ``class_id`` from one image, or None if no instance survives
    the query-style resize."""
    masks, class_ids, ann_ids = _load_instances(dataset, image_id)
    candidates = np.flatnonzero(np.asarray(class_ids) == class_id)
    if len(candidates) == 0:
        return None
    image = dataset.load_image(image_id)
    resized, _, scale, padding, crop = _query_resize(image, config, rng, resampling)
    instance_masks = utils.resize_mask(np.asarray(masks)[:, :, candidates], scale, padding,
                                       crop, resampling=resampling)
    boxes = utils.extract_bboxes(instance_masks)
    alive = instance_masks.any(axis=(0, 1))
    if not alive.any():
        return None
    choice = int(rng.choice(np.flatnonzero(alive)))
    box = tuple(int(v) for v in boxes[choice])
    reference = crop_reference(resized, box, config, resampling)
    instance = int(candidates[choice])
    return reference, ReferenceSource(image_id=int(image_id), instance=instance,
                                      annotation_id=int(ann_ids[instance]), box=box)


def sample_reference(dataset, class_id, rng, config, exclude_image=None, skip_images=(),
                     on_load_error=None, resampling=None):
    """Draw one reference of ``class_id`` by the reference rule.

    Args:
        dataset: a prepared dataset (a ``CocoDataset`` or any ``mrcnn.utils.Dataset``;
            without ``category_image_index`` one is built by scanning its masks).
        class_id: contiguous class id (> 0).
        rng: ``np.random.Generator``, the only source of randomness.
        config: IMAGE_RESIZE_MODE / IMAGE_MIN_DIM / IMAGE_MAX_DIM / IMAGE_MIN_SCALE
            (query-style resize) and TARGET_MIN_DIM / TARGET_MAX_DIM.
        exclude_image: an internal image index that may not serve as the source
            (e.g. the query), or None.
        resampling: "corrected" or "faithful" for both resizes; None: the config's
            RESAMPLING.
        skip_images: internal image indices removed from the pool (e.g. images that
            failed to load before).
        on_load_error: None: an image of the pool that fails to load (image or
            masks) raises. A callable ``(image_id, error)``: it is told, the image
            leaves this draw's candidates and another is drawn (training, where one
            corrupt file must not spoil other samples).
    Returns:
        (uint8 [D, D, 3] reference, :class:`ReferenceSource`).
    Raises:
        NoReferenceError (a ValueError) naming the class when no (other) image holds
        an instance of it that survives the resize.
    """
    class_id = int(class_id)
    resampling = _resampling(config, resampling)
    index = ensure_category_index(dataset)
    if class_id not in index:
        raise ValueError(f"sample_reference: {_class_label(dataset, class_id)} is not in the "
                         f"dataset's category index (is the dataset prepared?)")
    candidates = np.asarray(index[class_id], dtype=np.int64)
    if exclude_image is not None:
        candidates = candidates[candidates != int(exclude_image)]
    if len(skip_images):
        candidates = candidates[~np.isin(candidates, np.fromiter(skip_images, np.int64))]
    while len(candidates):
        pick = int(rng.integers(len(candidates)))
        image_id = int(candidates[pick])
        try:
            found = _reference_from_image(dataset, image_id, class_id, rng, config,
                                          resampling)
        except Exception as error:  # noqa: BLE001 - any failure of that image's files
            if on_load_error is None:
                raise
            on_load_error(image_id, error)
            candidates = np.delete(candidates, pick)
            continue
        if found is not None:
            return found
        # Its instances vanished in the resize (or a crop): draw among the others.
        candidates = np.delete(candidates, pick)
    excluded = "" if exclude_image is None else f" other than image {exclude_image}"
    raise NoReferenceError(f"sample_reference: no image{excluded} contains a usable "
                           f"non-crowd instance of {_class_label(dataset, class_id)}")


def sample_references(dataset, class_id, rng, config, k, exclude_image=None, skip_images=(),
                      on_load_error=None, resampling=None):
    """``k`` independent references of ``class_id`` (k-shot); arguments as
    :func:`sample_reference`.

    Returns (list of k uint8 [D, D, 3] references, list of k :class:`ReferenceSource`).
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"sample_references: k must be a positive integer, got {k!r}")
    skip = set(skip_images)

    def failed(image_id, error):
        skip.add(image_id)  # not drawn again for the next shots either
        on_load_error(image_id, error)

    draws = [sample_reference(dataset, class_id, rng, config, exclude_image, skip,
                              None if on_load_error is None else failed,
                              resampling=resampling)
             for _ in range(int(k))]
    return [d[0] for d in draws], [d[1] for d in draws]


# The smallest reference crop accepted from a user (detect, SiameseMaskRCNN.detect),
# in pixels per side. A smaller crop, scaled up to TARGET_MIN_DIM, carries little
# more than its mean colour: a 2x2 reference gave the same detections as a real one.
# Training and evaluation crop references from annotations as the paper does and
# are not limited.
MIN_REFERENCE_SIZE = 8


def check_reference_size(height, width, what="reference"):
    """Raise ValueError when a reference crop of ``height`` x ``width`` pixels is
    below ``MIN_REFERENCE_SIZE`` on either side; ``what`` names it."""
    if min(int(height), int(width)) < MIN_REFERENCE_SIZE:
        raise ValueError(f"{what} is {int(height)}x{int(width)} pixels, below the minimum "
                         f"reference size of {MIN_REFERENCE_SIZE}x{MIN_REFERENCE_SIZE} "
                         f"(siamese_mrcnn.references.MIN_REFERENCE_SIZE)")

