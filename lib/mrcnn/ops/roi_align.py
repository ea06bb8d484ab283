"""Pyramid ROI align: pool each box from the FPN level that suits its size (keras.ops).

Shape shorthand: ``B`` batch, ``R`` boxes per image (zero padded), ``C`` channels,
``ph, pw`` pooled height and width. Boxes are normalised (y1, x1, y2, x2).
"""

import math

from keras import ops

from mrcnn.ops import native

# Levels of the feature maps given to pyramid_roi_align: P2..P5.
MIN_LEVEL = 2
MAX_LEVEL = 5
# A ROI of this many pixels on a side (in a 224x224 ImageNet-size frame) maps to P4.
CANONICAL_SIZE = 224.0
CANONICAL_LEVEL = 4


def roi_pyramid_level(boxes, image_shape):
    """Pyramid level per box: clamp(4 + round(log2(sqrt(h*w) / (224 / sqrt(area)))), 2, 5).

    ``h, w`` are the normalised box sides and ``area`` the molded image area in pixels,
    so a box of 224 pixels on a side maps to P4 whatever the image size. Rounding is
    half to even. Degenerate boxes (zero padding) map to level 2.

    Args:
        boxes: float [..., 4] normalised.
        image_shape: (height, width) of the molded image in pixels; int/float [2].

    Returns:
        int32 [...] levels in 2..5.
    """
    boxes = ops.cast(boxes, "float32")
    image_shape = ops.cast(image_shape, "float32")
    y1, x1, y2, x2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    area = ops.maximum((y2 - y1) * (x2 - x1), 0.0)
    image_area = image_shape[0] * image_shape[1]
    # log2 of 0 is -inf, which the clamp turns into the lowest level: clamp in float
    # before casting, since casting -inf to int is undefined.
    level = CANONICAL_LEVEL + ops.round(
        ops.log(ops.sqrt(area) / (CANONICAL_SIZE / ops.sqrt(image_area))) / math.log(2.0))
    level = ops.clip(level, float(MIN_LEVEL), float(MAX_LEVEL))
    return ops.cast(level, "int32")


def _pool_shape(pool_size):
    if isinstance(pool_size, int):
        return (pool_size, pool_size)
    pool_shape = tuple(int(v) for v in pool_size)
    if len(pool_shape) != 2:
        raise ValueError(f"pyramid_roi_align: pool_size must be an int or (height, width), "
                         f"got {pool_size!r}")
    return pool_shape


def pyramid_roi_align(boxes, feature_maps, pool_size, image_shape):
    """Bilinear crop-and-resize of each box on its pyramid level, order preserved.

    Args:
        boxes: float [B, R, 4] normalised, zero padded (padding rows pool some value,
            never NaN).
        feature_maps: list [P2, P3, P4, P5], each float [B, h_l, w_l, C].
        pool_size: int or (ph, pw).
        image_shape: (height, width) of the molded image in pixels, [2].

    Returns:
        [B, R, ph, pw, C] pooled features in the dtype of the feature maps. Boxes are
        inputs, not something to train: no gradient reaches them.
    """
    if len(feature_maps) != MAX_LEVEL - MIN_LEVEL + 1:
        raise ValueError(f"pyramid_roi_align: expected feature maps P2..P5 "
                         f"({MAX_LEVEL - MIN_LEVEL + 1}), got {len(feature_maps)}")
    pool_shape = _pool_shape(pool_size)
    boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
    levels = roi_pyramid_level(boxes, image_shape) - MIN_LEVEL  # [B, R] in 0..3
    pooled = native.pyramid_crop_and_resize(feature_maps, boxes, levels, pool_shape)
    return ops.cast(pooled, feature_maps[0].dtype)
