"""Training-time augmentation that always moves instance masks with the image (numpy).

Shape shorthand: ``H, W`` image size in pixels, ``N`` instances.

Two kinds of ``augmentation`` are accepted by :func:`apply_augmentation` (and so by
``load_image_gt`` and ``DataGenerator``):

* a callable ``augmentation(image, masks, rng) -> (image, masks)`` with ``image`` uint8
  [H, W, 3], ``masks`` bool [H, W, N] and ``rng`` a ``np.random.Generator``; it must
  transform both identically. :class:`HorizontalFlip` and :class:`Compose` are such
  callables and need nothing beyond numpy;
* an imgaug-style augmenter (anything with ``to_deterministic``): its deterministic
  copy, seeded from ``rng``, augments the image, then the masks with only the
  geometric augmenters of :data:`GEOMETRIC_AUGMENTERS` active, so colour changes
  never touch masks while flips, crops and affine warps do. imgaug is never imported
  here (it does not import under numpy 2); we only call the augmenter's methods.

Public names are re-exported by :mod:`mrcnn.data`.
"""

import numpy as np

# imgaug augmenter class names applied to masks as well as images: containers (which
# only dispatch to their children) and augmenters that move pixels around.
GEOMETRIC_AUGMENTERS = frozenset({
    "Sequential", "SomeOf", "OneOf", "Sometimes", "Identity", "Noop",
    "Fliplr", "Flipud", "Rot90", "Affine", "AffineCv2", "PiecewiseAffine",
    "PerspectiveTransform", "ElasticTransformation", "Crop", "Pad", "CropAndPad",
    "CropToFixedSize", "PadToFixedSize", "CenterCropToFixedSize", "CenterPadToFixedSize",
    "ScaleX", "ScaleY", "TranslateX", "TranslateY", "Rotate", "ShearX", "ShearY",
})


class HorizontalFlip:
    """Mirror image and masks left-right with probability ``p``.

    Call: ``(image [H, W, C], masks [H, W, N], rng) -> (image, masks)``; the result
    arrays are copies with the input shapes and dtypes.
    """

    def __init__(self, p=0.5):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"HorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, image, masks, rng):
        if rng.random() < self.p:
            return image[:, ::-1].copy(), masks[:, ::-1].copy()
        return image, masks

    def __repr__(self):
        return f"HorizontalFlip(p={self.p})"


class Compose:
    """Apply callables ``augmentation(image, masks, rng)`` one after the other."""

    def __init__(self, augmentations):
        self.augmentations = list(augmentations)
        for i, aug in enumerate(self.augmentations):
            if not callable(aug):
                raise TypeError(f"Compose: element {i} ({aug!r}) is not callable as "
                                f"augmentation(image, masks, rng)")

    def __call__(self, image, masks, rng):
        for aug in self.augmentations:
            image, masks = aug(image, masks, rng)
        return image, masks

    def __repr__(self):
        return f"Compose({self.augmentations!r})"


class _GeometricOnlyHooks:
    """Duck-typed stand-in for ``imgaug.HooksImages``: keep only geometric augmenters."""

    def is_activated(self, images, augmenter, parents, default):
        return type(augmenter).__name__ in GEOMETRIC_AUGMENTERS and default

    def is_propagating(self, images, augmenter, parents, default):
        return default

    def preprocess(self, images, augmenter, parents):
        return images

    def postprocess(self, images, augmenter, parents):
        return images


def _seeded_deterministic_copy(augmenter, rng):
    """A deterministic copy of an imgaug augmenter, reseeded from ``rng``."""
    det = augmenter.to_deterministic()
    seed = int(rng.integers(0, 2**31 - 1))
    if hasattr(det, "seed_"):          # imgaug >= 0.4
        det.seed_(seed)
    elif hasattr(det, "reseed"):       # older imgaug
        det.reseed(seed)
    return det


def apply_augmentation(image, masks, augmentation, rng, image_id=None):
    """Augment an image and its instance masks identically.

    Args:
        image: uint8 [H, W, C].
        masks: bool [H, W, N] full-size instance masks aligned with ``image``.
        augmentation: a callable or an imgaug-style augmenter (see module docstring).
        rng: ``np.random.Generator``; the only source of randomness for callables and
            the seed of an imgaug augmenter's deterministic copy.
        image_id: used in error messages.

    Returns:
        (image uint8 [H, W, C], masks bool [H, W, N]), same shapes as the inputs.

    Raises:
        ValueError if the augmentation changed a shape or dtype (an augmentation
        that resizes would desynchronise image meta, anchors and boxes).
    """
    where = f"image {image_id}: " if image_id is not None else ""
    if hasattr(augmentation, "to_deterministic"):
        det = _seeded_deterministic_copy(augmentation, rng)
        new_image = det.augment_image(image)
        if masks.shape[-1]:
            new_masks = det.augment_image(masks.astype(np.uint8),
                                          hooks=_GeometricOnlyHooks()).astype(bool)
        else:
            new_masks = masks
    elif callable(augmentation):
        new_image, new_masks = augmentation(image, masks, rng)
    else:
        raise TypeError(f"{where}augmentation must be callable as "
                        f"augmentation(image, masks, rng) or an imgaug augmenter, "
                        f"got {type(augmentation).__name__}")
    new_image = np.asarray(new_image)
    new_masks = np.asarray(new_masks)
    if new_image.shape != image.shape or new_image.dtype != image.dtype:
        raise ValueError(f"{where}augmentation {augmentation!r} changed the image from "
                         f"{image.shape} {image.dtype} to {new_image.shape} "
                         f"{new_image.dtype}; augmentations must keep shape and dtype")
    if new_masks.shape != masks.shape or new_masks.dtype != np.bool_:
        raise ValueError(f"{where}augmentation {augmentation!r} changed the masks from "
                         f"{masks.shape} bool to {new_masks.shape} {new_masks.dtype}; "
                         f"augmentations must return bool masks of unchanged shape")
    return new_image, new_masks
