"""Pyramid ROI align: pool each box from the FPN level that suits its size (TensorFlow).

Shape shorthand: ``B`` batch, ``R`` boxes per image (zero padded), ``C`` channels,
``ph, pw`` pooled height and width. Boxes are normalised (y1, x1, y2, x2).
"""

import tensorflow as tf

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
    half to even (``tf.round``). Degenerate boxes (zero padding) map to level 2.

    Args:
        boxes: float [..., 4] normalised.
        image_shape: (height, width) of the molded image in pixels; int/float [2].

    Returns:
        int32 [...] levels in 2..5.
    """
    boxes = tf.cast(boxes, tf.float32)
    image_shape = tf.cast(image_shape, tf.float32)
    y1, x1, y2, x2 = tf.unstack(boxes, num=4, axis=-1)
    area = tf.maximum((y2 - y1) * (x2 - x1), 0.0)
    image_area = image_shape[0] * image_shape[1]
    # log2 of 0 is -inf, which the clamp turns into the lowest level: clamp in float
    # before casting, since casting -inf to int is undefined.
    level = CANONICAL_LEVEL + tf.round(
        tf.math.log(tf.sqrt(area) / (CANONICAL_SIZE / tf.sqrt(image_area))) / tf.math.log(2.0))
    level = tf.clip_by_value(level, float(MIN_LEVEL), float(MAX_LEVEL))
    return tf.cast(level, tf.int32)


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
        [B, R, ph, pw, C] pooled features in the dtype of the feature maps.
    """
    if len(feature_maps) != MAX_LEVEL - MIN_LEVEL + 1:
        raise ValueError(f"pyramid_roi_align: expected feature maps P2..P5 "
                         f"({MAX_LEVEL - MIN_LEVEL + 1}), got {len(feature_maps)}")
    pool_h, pool_w = _pool_shape(pool_size)
    boxes = tf.cast(boxes, tf.float32)
    levels = roi_pyramid_level(boxes, image_shape)  # [B, R]

    pooled, positions = [], []
    for i, feature_map in enumerate(feature_maps):
        # (batch, roi) positions of the boxes on this level: [n_l, 2]
        ix = tf.cast(tf.where(tf.equal(levels, MIN_LEVEL + i)), tf.int32)
        level_boxes = tf.gather_nd(boxes, ix)
        # Boxes are inputs, not something to train: no gradient into the proposals.
        level_boxes = tf.stop_gradient(level_boxes)
        crops = tf.image.crop_and_resize(
            tf.cast(feature_map, tf.float32), level_boxes, ix[:, 0], (pool_h, pool_w),
            method="bilinear")
        pooled.append(crops)
        positions.append(ix)
    pooled = tf.concat(pooled, axis=0)
    positions = tf.concat(positions, axis=0)
    # Every (batch, roi) pair lies on exactly one level, so scattering back restores the
    # input order without sums of several values.
    shape = tf.concat([tf.shape(boxes)[:2], [pool_h, pool_w], tf.shape(pooled)[-1:]], axis=0)
    out = tf.scatter_nd(positions, pooled, shape)
    channels = feature_maps[0].shape[-1]
    out.set_shape([boxes.shape[0], boxes.shape[1], pool_h, pool_w, channels])
    return tf.cast(out, feature_maps[0].dtype)
