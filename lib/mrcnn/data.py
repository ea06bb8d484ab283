"""Mask R-CNN training data: ground truth of one image, RPN targets, batches (numpy).

Shape shorthand: ``B`` batch (``config.BATCH_SIZE``), ``H, W`` molded image size,
``A`` anchors over all pyramid levels, ``N`` instances of an image, ``G`` ground-truth
slots (``MAX_GT_INSTANCES``, zero padded), ``K`` classes incl. background,
``R`` = ``RPN_TRAIN_ANCHORS_PER_IMAGE``, ``h, w`` = ``MINI_MASK_SHAPE`` (or H, W).

Boxes are **pixel** boxes ``(y1, x1, y2, x2)`` of the molded image, y2/x2 exclusive.

Flow: :func:`load_image_gt` loads, resizes and augments one image and its masks;
:func:`build_rpn_targets` labels anchors; :class:`DataGenerator` (a
``keras.utils.PyDataset``) turns a ``Dataset`` into the dict of batch arrays that
the training model consumes (keys in docs/architecture.md, "Training model inputs").
"""

import logging
import math
import threading

import keras
import numpy as np

from mrcnn import utils
from mrcnn.augmentation import Compose, HorizontalFlip, apply_augmentation
from mrcnn.rpn_targets import build_rpn_targets

__all__ = ["compose_image_meta", "parse_image_meta", "mold_image", "unmold_image",
           "load_image_gt", "build_rpn_targets", "DataGenerator", "HorizontalFlip",
           "Compose", "apply_augmentation"]

logger = logging.getLogger(__name__)

# Leading entries of every SeedSequence, so image orders and sample streams never
# share a seed even when the remaining numbers coincide.
_ORDER_STREAM = 0x0DE5
_SAMPLE_STREAM = 0x5A3B


# ====================================================================== image meta
def compose_image_meta(image_id, original_image_shape, image_shape, window, scale,
                       active_class_ids):
    """One image-meta row, float32 [12 + K].

    Args:
        image_id: int id of the image in its dataset.
        original_image_shape: (H0, W0, C) before resizing.
        image_shape: (H, W, C) after resizing and padding (the molded image).
        window: (y1, x1, y2, x2) of the real image inside the padded one, molded pixels.
        scale: resize factor applied to the original image.
        active_class_ids: [K] 1 for classes of the image's source dataset, else 0.
    """
    parts = {"original_image_shape": (original_image_shape, 3),
             "image_shape": (image_shape, 3), "window": (window, 4)}
    for name, (value, size) in parts.items():
        if len(value) != size:
            raise ValueError(f"compose_image_meta: {name} needs {size} values, got "
                             f"{list(value)} (image {image_id})")
    return np.array([image_id] + list(original_image_shape) + list(image_shape)
                    + list(window) + [scale] + list(active_class_ids), dtype=np.float32)


def parse_image_meta(meta):
    """Split image-meta rows into fields (numpy twin of ``mrcnn.ops.meta``).

    Args:
        meta: [B, 12 + K] (or one row [12 + K]; then the fields lose the B axis).

    Returns:
        dict: ``image_id`` int32 [B], ``original_image_shape`` int32 [B, 3],
        ``image_shape`` int32 [B, 3], ``window`` int32 [B, 4] (molded pixels),
        ``scale`` float32 [B], ``active_class_ids`` int32 [B, K].
    """
    meta = np.asarray(meta, dtype=np.float32)
    if meta.shape[-1] < 13:
        raise ValueError(f"parse_image_meta: rows need 12 + NUM_CLASSES (>= 13) values, "
                         f"got shape {meta.shape}")
    # Meta values are stored as float32; round before the cast so 2.9999 -> 3.
    as_int = lambda x: np.rint(x).astype(np.int32)  # noqa: E731
    return {
        "image_id": as_int(meta[..., 0]),
        "original_image_shape": as_int(meta[..., 1:4]),
        "image_shape": as_int(meta[..., 4:7]),
        "window": as_int(meta[..., 7:11]),
        "scale": meta[..., 11].astype(np.float32),
        "active_class_ids": as_int(meta[..., 12:]),
    }


# ====================================================================== molding
def mold_image(images, config):
    """RGB uint8 image(s) [..., H, W, 3] -> float32 with ``config.MEAN_PIXEL`` subtracted."""
    return np.asarray(images, dtype=np.float32) - np.asarray(config.MEAN_PIXEL, np.float32)


def unmold_image(normalized_images, config):
    """Inverse of :func:`mold_image`: add ``MEAN_PIXEL`` back, round, clip to uint8."""
    images = np.asarray(normalized_images, np.float32) + np.asarray(config.MEAN_PIXEL,
                                                                    np.float32)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


# ====================================================================== ground truth
def _resize(image, config, rng):
    kwargs = dict(min_dim=config.IMAGE_MIN_DIM, min_scale=config.IMAGE_MIN_SCALE,
                  max_dim=config.IMAGE_MAX_DIM, mode=config.IMAGE_RESIZE_MODE,
                  resampling=utils.config_resampling(config))
    if config.IMAGE_RESIZE_MODE == "crop":
        kwargs["rng"] = rng
    return utils.resize_image(image, **kwargs)


def _describe(dataset, image_id):
    try:
        return f"image {image_id} ({dataset.image_reference(image_id)})"
    except Exception:  # a broken image_reference must not hide the real error
        return f"image {image_id}"


def load_image_gt(dataset, config, image_id, augmentation=None, rng=None,
                  active_class_ids=None):
    """Load an image with its ground truth, resized (and augmented) for training.

    Args:
        dataset: a prepared ``mrcnn.utils.Dataset``.
        config: uses IMAGE_RESIZE_MODE, IMAGE_MIN_DIM, IMAGE_MAX_DIM, IMAGE_MIN_SCALE,
            RESAMPLING (image, mask and mini-mask resampling), NUM_CLASSES,
            USE_MINI_MASK, MINI_MASK_SHAPE.
        image_id: internal id of the image in ``dataset``.
        active_class_ids: optional [NUM_CLASSES] 0/1 vector for the meta; default: the
            classes of the image's source dataset (Matterport). A model whose classes
            are not the dataset's (the 2-class Siamese model) passes its own.
        augmentation: None, a callable ``(image, masks, rng) -> (image, masks)`` or an
            imgaug-style augmenter (see :mod:`mrcnn.augmentation`); applied after
            resizing.
        rng: ``np.random.Generator`` for the crop position ("crop" mode) and the
            augmentation (a fresh one if None).

    Returns:
        image: uint8 [H, W, 3], resized and padded.
        image_meta: float32 [12 + K], see :func:`compose_image_meta`.
        class_ids: int32 [N] (negative = crowd); instances whose mask became empty
            by resizing, cropping or augmenting are dropped.
        bbox: int32 [N, 4] pixel boxes of the masks in the molded image.
        mask: bool [h, w, N]; mini masks (each box's contents resized to
            MINI_MASK_SHAPE) when USE_MINI_MASK, else full-size [H, W, N].

    Raises:
        ValueError naming the image when the mask and image sizes differ or the
        class ids do not match the number of masks.
    """
    rng = np.random.default_rng() if rng is None else rng
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    mask = np.asarray(mask)
    class_ids = np.asarray(class_ids, dtype=np.int32).reshape(-1)
    if image.ndim != 3:
        raise ValueError(f"{_describe(dataset, image_id)}: load_image returned shape "
                         f"{image.shape}, expected [H, W, C]")
    if mask.ndim != 3 or mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"{_describe(dataset, image_id)}: mask shape {mask.shape} does not "
                         f"match image shape {image.shape} (expected [H, W, N])")
    if len(class_ids) != mask.shape[-1]:
        raise ValueError(f"{_describe(dataset, image_id)}: {len(class_ids)} class ids for "
                         f"{mask.shape[-1]} masks")
    mask = mask.astype(bool)
    original_shape = image.shape

    image, window, scale, padding, crop = _resize(image, config, rng)
    if mask.shape[-1]:
        mask = np.asarray(utils.resize_mask(mask, scale, padding, crop,
                                            resampling=utils.config_resampling(config))
                          ).astype(bool)
    else:
        mask = np.zeros(image.shape[:2] + (0,), dtype=bool)
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"{_describe(dataset, image_id)}: resized mask {mask.shape} does "
                         f"not match resized image {image.shape}")

    if augmentation is not None:
        image, mask = apply_augmentation(image, mask, augmentation, rng, image_id=image_id)

    keep = mask.any(axis=(0, 1))
    mask, class_ids = mask[:, :, keep], class_ids[keep]
    bbox = np.asarray(utils.extract_bboxes(mask), dtype=np.int32).reshape(-1, 4)

    if active_class_ids is None:
        active_class_ids = np.zeros(config.NUM_CLASSES, dtype=np.int32)
        source = dataset.image_info[image_id]["source"]
        source_ids = np.asarray(dataset.source_class_ids[source])
        if len(source_ids) and source_ids.max() >= config.NUM_CLASSES:
            raise ValueError(f"{_describe(dataset, image_id)}: the dataset has class id "
                             f"{int(source_ids.max())} but config.NUM_CLASSES is "
                             f"{config.NUM_CLASSES}")
        active_class_ids[source_ids] = 1

    if config.USE_MINI_MASK:
        if mask.shape[-1]:
            mask = np.asarray(utils.minimize_mask(bbox, mask, config.MINI_MASK_SHAPE,
                                                  resampling=utils.config_resampling(config)),
                              dtype=bool)
        else:
            mask = np.zeros(tuple(config.MINI_MASK_SHAPE) + (0,), dtype=bool)

    image_meta = compose_image_meta(image_id, original_shape, image.shape, window, scale,
                                    active_class_ids)
    return image, image_meta, class_ids, bbox, mask


def _backbone_shapes(config, image_shape):
    """Feature map sizes [L, 2] of the backbone for an image of ``image_shape``."""
    if callable(config.BACKBONE):
        return np.asarray(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array([[int(math.ceil(image_shape[0] / s)), int(math.ceil(image_shape[1] / s))]
                     for s in config.BACKBONE_STRIDES])


# ====================================================================== batches
def pad_ground_truth(class_ids, boxes, masks, slots, rng):
    """Subsample to at most ``slots`` instances (at random, order kept) and zero pad.

    Args: class_ids int32 [N], boxes int [N, 4] pixel, masks bool [h, w, N],
        rng a ``np.random.Generator``.
    Returns: int32 [G], float32 [G, 4], bool [h, w, G] with G = ``slots``.
    """
    if len(class_ids) > slots:
        keep = np.sort(rng.choice(len(class_ids), slots, replace=False))
        class_ids, boxes, masks = class_ids[keep], boxes[keep], masks[:, :, keep]
    count = len(class_ids)
    padded_ids = np.zeros(slots, dtype=np.int32)
    padded_ids[:count] = class_ids
    padded_boxes = np.zeros((slots, 4), dtype=np.float32)
    padded_boxes[:count] = boxes
    padded_masks = np.zeros(masks.shape[:2] + (slots,), dtype=bool)
    padded_masks[:, :, :count] = masks
    return padded_ids, padded_boxes, padded_masks


def training_inputs(image, image_meta, rpn_match, rpn_bbox, gt_class_ids, gt_boxes,
                    gt_masks, config):
    """One sample's model inputs (the keys of the training model, see
    ``MaskRCNN.build_inputs``): the image molded, the RPN match as [A, 1], the
    padded ground truth as given (:func:`pad_ground_truth`)."""
    return {
        "input_image": mold_image(image, config),
        "input_image_meta": image_meta,
        "input_rpn_match": rpn_match[:, None],
        "input_rpn_bbox": rpn_bbox,
        "input_gt_class_ids": gt_class_ids,
        "input_gt_boxes": gt_boxes,
        "input_gt_masks": gt_masks,
    }


class DataGenerator(keras.utils.PyDataset):
    """Training batches of a Mask R-CNN ``Dataset`` for ``keras.Model.fit``.

    ``generator[index]`` is a dict (keys of docs/architecture.md, "Training model
    inputs") with leading axis B:

    - ``input_image`` float32 [B, H, W, 3], molded (resized, padded, mean subtracted);
    - ``input_image_meta`` float32 [B, 12 + K];
    - ``input_rpn_match`` int32 [B, A, 1] (1 / -1 / 0);
    - ``input_rpn_bbox`` float32 [B, R, 4], zero padded;
    - ``input_gt_class_ids`` int32 [B, G], 0 padded, negative = crowd;
    - ``input_gt_boxes`` float32 [B, G, 4] pixel boxes, zero padded;
    - ``input_gt_masks`` uint8 (0/1) [B, h, w, G].

    Order and randomness: epoch ``e`` walks the images in a permutation drawn from
    ``(seed, e)`` (the identity when ``shuffle`` is False); when an epoch needs more
    images than the dataset holds, further passes use further permutations. Batch
    ``index`` starts at position ``index * B`` of that walk. Every sample draws its
    randomness (crop, augmentation, anchor and instance subsampling) from a generator
    seeded by ``(seed, epoch, index, slot, position)``, so a batch depends only on
    ``(seed, epoch, index)``: runs are reproducible, resumable at an epoch
    (:meth:`set_epoch`) and independent of worker scheduling. No generator state is
    shared between threads.

    Unusable images: an image without a positive-class instance after resizing is
    passed over, as is an image whose loading raises (corrupt file, bad annotation);
    the batch then takes the next image of the walk. Failures are logged once per
    image (with ``dataset.image_reference``) and recorded in ``skipped`` (image id ->
    message); ``num_skipped`` counts every skipped sample. ``max_consecutive_failures``
    failures in a row, or every image of the dataset failing, raise RuntimeError.
    With ``use_multiprocessing`` the records stay in the worker processes (the
    warnings are still logged).

    Subclasses change per-image work by overriding :meth:`load_sample`.
    """

    def __init__(self, dataset, config, shuffle=True, augmentation=None, seed=None,
                 steps=None, workers=1, use_multiprocessing=False, max_queue_size=10,
                 max_consecutive_failures=50):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        image_ids = getattr(dataset, "image_ids", None)
        if image_ids is None or len(image_ids) == 0:
            raise ValueError("DataGenerator: the dataset has no images (did you call "
                             "dataset.prepare()?)")
        if steps is not None and (int(steps) != steps or steps < 1):
            raise ValueError(f"DataGenerator: steps must be a positive integer or None, "
                             f"got {steps!r}")
        if int(max_consecutive_failures) < 1:
            raise ValueError(f"DataGenerator: max_consecutive_failures must be >= 1, got "
                             f"{max_consecutive_failures!r}")
        self.dataset = dataset
        self.config = config
        self.shuffle = bool(shuffle)
        self.augmentation = augmentation
        self.seed = (int(np.random.SeedSequence().entropy % 2**63) if seed is None
                     else int(seed))
        if self.seed < 0:
            raise ValueError(f"DataGenerator: seed must be >= 0, got {seed}")
        self.steps = None if steps is None else int(steps)
        self.max_consecutive_failures = int(max_consecutive_failures)
        self.epoch = 0
        self.image_ids = np.asarray(dataset.image_ids)
        self.skipped = {}
        self.num_skipped = 0
        self._lock = threading.Lock()
        self._anchor_cache = {}
        self._order_cache = {}

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -------------------------------------------------------------- epochs
    def __len__(self):
        if self.steps is not None:
            return self.steps
        return int(math.ceil(len(self.image_ids) / self.config.BATCH_SIZE))

    def set_epoch(self, epoch):
        """Continue as epoch ``epoch`` (0-based), e.g. when resuming training."""
        self.epoch = int(epoch)

    def on_epoch_end(self):
        self.epoch += 1

    def image_order(self, epoch, pass_index=0):
        """Image ids in the order of pass ``pass_index`` of ``epoch``, int [num_images]."""
        key = (epoch, pass_index)
        order = self._order_cache.get(key)
        if order is None:
            if self.shuffle:
                rng = np.random.default_rng([_ORDER_STREAM, self.seed, epoch, pass_index])
                order = rng.permutation(self.image_ids)
            else:
                order = self.image_ids.copy()
            with self._lock:
                if len(self._order_cache) > 16:
                    self._order_cache.clear()
                self._order_cache[key] = order
        return order

    def sample_rng(self, epoch, index, slot, position):
        """The ``np.random.Generator`` of one sample attempt (a new one per call)."""
        return np.random.default_rng([_SAMPLE_STREAM, self.seed, epoch, index, slot,
                                      position])

    # -------------------------------------------------------------- samples
    def anchors(self, image_shape):
        """Pixel anchors float32 [A, 4] for a molded image of ``image_shape`` (cached)."""
        key = tuple(int(d) for d in image_shape[:2])
        anchors = self._anchor_cache.get(key)
        if anchors is None:
            config = self.config
            anchors = utils.generate_pyramid_anchors(
                config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                _backbone_shapes(config, key), config.BACKBONE_STRIDES,
                config.RPN_ANCHOR_STRIDE).astype(np.float32)
            self._anchor_cache[key] = anchors
        return anchors

    def load_sample(self, image_id, rng):
        """Arrays of one image (keys as the batch dict, without the B axis), or None.

        Returns None when the image has no positive-class instance after resizing,
        so the caller moves on to the next image; raises when loading fails.
        RPN targets use all instances; then more than G instances are subsampled to
        G at random (crowds included) and everything is zero padded to G.
        """
        config = self.config
        image, image_meta, class_ids, boxes, masks = load_image_gt(
            self.dataset, config, image_id, augmentation=self.augmentation, rng=rng)
        if not np.any(class_ids > 0):
            return None
        rpn_match, rpn_bbox = build_rpn_targets(self.anchors(image.shape), class_ids,
                                                boxes, config, rng=rng)
        return training_inputs(image, image_meta, rpn_match, rpn_bbox,
                               *pad_ground_truth(class_ids, boxes, masks,
                                                 config.MAX_GT_INSTANCES, rng), config)

    def _record_failure(self, image_id, error):
        message = f"{type(error).__name__}: {error}"
        with self._lock:
            first = image_id not in self.skipped
            self.skipped[image_id] = message
            self.num_skipped += 1
        if first:
            logger.warning("skipping %s: failed to load: %s",
                           _describe(self.dataset, image_id), message)
        return message

    # -------------------------------------------------------------- batches
    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"DataGenerator: batch index {index} out of range "
                             f"[0, {len(self)})")
        epoch = self.epoch  # read once: the whole batch belongs to one epoch
        num_images = len(self.image_ids)
        batch_size = self.config.BATCH_SIZE
        position = index * batch_size
        samples, sample_ids = [], []
        failures_in_row, unusable_in_row, last_error = 0, set(), None
        while len(samples) < batch_size:
            pass_index, offset = divmod(position, num_images)
            image_id = int(self.image_order(epoch, pass_index)[offset])
            rng = self.sample_rng(epoch, index, len(samples), position)
            position += 1
            try:
                sample = self.load_sample(image_id, rng)
            except Exception as error:  # noqa: BLE001 - any failure skips the sample
                last_error = f"{_describe(self.dataset, image_id)}: " \
                             f"{self._record_failure(image_id, error)}"
                failures_in_row += 1
                unusable_in_row.add(image_id)
                if failures_in_row >= self.max_consecutive_failures:
                    raise RuntimeError(
                        f"DataGenerator: {failures_in_row} samples in a row failed to "
                        f"load; last error: {last_error}") from error
                if len(self.skipped) >= num_images:
                    raise RuntimeError(
                        f"DataGenerator: every one of the {num_images} images failed "
                        f"to load; last error: {last_error}") from error
                if len(unusable_in_row) >= num_images:
                    raise RuntimeError(
                        f"DataGenerator: no usable image among the {num_images} images "
                        f"(each failed or has no instance); last error: {last_error}"
                    ) from error
                continue
            failures_in_row = 0
            if sample is None:
                unusable_in_row.add(image_id)
                if len(unusable_in_row) >= num_images:
                    raise RuntimeError(
                        f"DataGenerator: no usable image among the {num_images} images: "
                        f"none has an instance of a positive class after resizing"
                        + (f"; last error: {last_error}" if last_error else ""))
                continue
            unusable_in_row.clear()
            samples.append(sample)
            sample_ids.append(image_id)
        return self._stack(samples, sample_ids)

    @staticmethod
    def _stack(samples, sample_ids):
        batch = {}
        for key in samples[0]:
            shapes = {s[key].shape for s in samples}
            if len(shapes) > 1:
                raise ValueError(
                    f"DataGenerator: '{key}' has different shapes {sorted(shapes)} across "
                    f"the batch (images {sample_ids}); IMAGE_RESIZE_MODE 'none' or "
                    f"'pad64' give each image its own size, so use BATCH_SIZE 1 or "
                    f"'square'/'crop'")
            batch[key] = np.stack([s[key] for s in samples])
            if batch[key].dtype == bool:
                # tf.distribute cannot split bool batches across replicas; uint8 has
                # the same size.
                batch[key] = batch[key].astype(np.uint8)
        return batch
