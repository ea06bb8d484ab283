"""Anchor boxes over the feature pyramid (numpy; computed once, used as a constant).

Shape shorthand: ``A`` anchors over all pyramid levels, ``L`` pyramid levels.

Anchors follow Matterport's layout: level by level (P2 first), within a level row by
row (y major) over feature cells, and within a cell one anchor per ratio, in the order
of ``ratios``. A level uses one scale (its side length in pixels); ratio is width /
height, so an anchor has height ``scale / sqrt(ratio)`` and width
``scale * sqrt(ratio)``. Centres are at ``arange(0, feature_size, anchor_stride) *
feature_stride`` pixels (no half-cell offset).
"""

import math

import numpy as np


def feature_shapes_for(image_shape, strides):
    """Feature map sizes [L, 2] of a backbone: ``ceil(image_side / stride)`` per level.

    Args:
        image_shape: (height, width[, channels]) of the molded image in pixels.
        strides: L feature strides in pixels, e.g. [4, 8, 16, 32, 64].
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    return np.array([[int(math.ceil(height / s)), int(math.ceil(width / s))] for s in strides],
                    dtype=np.int64)


def level_anchors(scale, ratios, feature_shape, feature_stride, anchor_stride):
    """Pixel anchors of one pyramid level, float64 [cells * len(ratios), 4] (y1, x1, y2, x2)."""
    ratios = np.asarray(ratios, dtype=np.float64).reshape(-1)
    heights = float(scale) / np.sqrt(ratios)
    widths = float(scale) * np.sqrt(ratios)
    centers_y = np.arange(0, feature_shape[0], anchor_stride) * feature_stride
    centers_x = np.arange(0, feature_shape[1], anchor_stride) * feature_stride
    # [Y, X] grid of cell centres, y major, then one anchor per ratio: [Y, X, R]
    cy = np.broadcast_to(centers_y[:, None, None], (len(centers_y), len(centers_x), len(ratios)))
    cx = np.broadcast_to(centers_x[None, :, None], cy.shape)
    h = np.broadcast_to(heights[None, None, :], cy.shape)
    w = np.broadcast_to(widths[None, None, :], cy.shape)
    boxes = np.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)
    return boxes.reshape(-1, 4).astype(np.float64)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Pixel anchors of all levels, float64 [A, 4]; the same as Matterport's
    ``generate_pyramid_anchors`` (one scale per level, levels concatenated in order).

    Args:
        scales: L anchor side lengths in pixels, one per level.
        ratios: anchor width/height ratios shared by all levels.
        feature_shapes: [L, 2] feature map (height, width) per level.
        feature_strides: L strides in pixels.
        anchor_stride: place anchors at every ``anchor_stride``-th feature cell.
    """
    if not (len(scales) == len(feature_shapes) == len(feature_strides)):
        raise ValueError(
            f"generate_pyramid_anchors: scales ({len(scales)}), feature_shapes "
            f"({len(feature_shapes)}) and feature_strides ({len(feature_strides)}) "
            f"need one entry per pyramid level")
    if int(anchor_stride) < 1:
        raise ValueError(
            f"generate_pyramid_anchors: anchor_stride must be >= 1, got {anchor_stride}")
    levels = [level_anchors(s, ratios, shape, stride, int(anchor_stride))
              for s, shape, stride in zip(scales, feature_shapes, feature_strides)]
    return np.concatenate(levels, axis=0)


def pyramid_anchors_normalised(scales, ratios, feature_shapes, feature_strides, anchor_stride,
                               image_shape):
    """Anchors of all levels in normalised coordinates, float32 [A, 4].

    Equal to ``norm_boxes(generate_pyramid_anchors(...), image_shape[:2])`` of
    ``mrcnn.utils``: pixel anchors from :func:`generate_pyramid_anchors` mapped with
    ``(box - [0, 0, 1, 1]) / [h-1, w-1, h-1, w-1]``. Anchors near the border extend
    outside [0, 1]; they are not clipped.

    Args: as :func:`generate_pyramid_anchors`, plus ``image_shape`` (height, width[, C])
        of the molded image in pixels.
    """
    pixels = generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides,
                                    anchor_stride)
    height, width = float(image_shape[0]), float(image_shape[1])
    scale = np.array([height - 1, width - 1, height - 1, width - 1])
    shift = np.array([0.0, 0.0, 1.0, 1.0])
    return np.divide(pixels - shift, scale).astype(np.float32)
