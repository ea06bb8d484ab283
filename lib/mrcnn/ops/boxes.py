"""Box arithmetic in keras.ops (any backend): deltas, clipping, IoU and normalisation.

Shape shorthand: ``...`` any leading (batch) dimensions, ``N`` and ``M`` box counts.
Boxes are ``(y1, x1, y2, x2)``. Functions here work on any coordinate frame (pixel or
normalised) unless their docstring says otherwise; :func:`norm_boxes` and
:func:`denorm_boxes` convert between them with the project convention
``norm = (box - [0, 0, 1, 1]) / [h - 1, w - 1, h - 1, w - 1]`` (pixel y2/x2 exclusive).

Deltas are ``(dy, dx, log(dh), log(dw))``: the centre shift relative to the box height
and width, and the log of the size ratio. Height is ``y2 - y1`` and the centre is
``y1 + 0.5 * height`` (no +1), as in Matterport's graph code.
"""

from keras import ops


def _split(boxes):
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def apply_box_deltas(boxes, deltas):
    """Move and resize boxes by deltas.

    Args:
        boxes: float [..., 4] (y1, x1, y2, x2), any frame.
        deltas: float [..., 4] (dy, dx, log(dh), log(dw)), broadcastable to ``boxes``.
            Already multiplied by any standard deviations.

    Returns:
        float32 [..., 4] refined boxes in the frame of ``boxes``.
    """
    boxes = ops.cast(boxes, "float32")
    deltas = ops.cast(deltas, "float32")
    y1, x1, y2, x2 = _split(boxes)
    dy, dx, dh, dw = _split(deltas)
    height = y2 - y1
    width = x2 - x1
    center_y = y1 + 0.5 * height + dy * height
    center_x = x1 + 0.5 * width + dx * width
    height = height * ops.exp(dh)
    width = width * ops.exp(dw)
    return ops.stack([center_y - 0.5 * height, center_x - 0.5 * width,
                     center_y + 0.5 * height, center_x + 0.5 * width], axis=-1)


def encode_box_deltas(boxes, gt_boxes):
    """Deltas that move ``boxes`` onto ``gt_boxes``; the inverse of :func:`apply_box_deltas`.

    Args:
        boxes: float [..., 4] source boxes (e.g. ROIs), any frame.
        gt_boxes: float [..., 4] target boxes in the same frame.

    Returns:
        float32 [..., 4] (dy, dx, log(dh), log(dw)), not divided by standard deviations.
        A box of zero height or width gives inf/NaN: callers mask padding rows first.
    """
    boxes = ops.cast(boxes, "float32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    y1, x1, y2, x2 = _split(boxes)
    gy1, gx1, gy2, gx2 = _split(gt_boxes)
    height = y2 - y1
    width = x2 - x1
    gt_height = gy2 - gy1
    gt_width = gx2 - gx1
    dy = (gy1 + 0.5 * gt_height - (y1 + 0.5 * height)) / height
    dx = (gx1 + 0.5 * gt_width - (x1 + 0.5 * width)) / width
    dh = ops.log(gt_height / height)
    dw = ops.log(gt_width / width)
    return ops.stack([dy, dx, dh, dw], axis=-1)


def clip_boxes(boxes, window):
    """Clip every coordinate of ``boxes`` into ``window``.

    Args:
        boxes: float [..., 4].
        window: float [..., 4] (wy1, wx1, wy2, wx2) broadcastable to ``boxes``, in the
            same frame (e.g. ``[0, 0, 1, 1]`` for normalised boxes).

    Returns:
        float32 [..., 4]; a box entirely outside the window collapses onto its border.
    """
    boxes = ops.cast(boxes, "float32")
    window = ops.cast(window, "float32")
    y1, x1, y2, x2 = _split(boxes)
    wy1, wx1, wy2, wx2 = _split(ops.broadcast_to(window, ops.shape(boxes)))
    y1 = ops.minimum(ops.maximum(y1, wy1), wy2)
    x1 = ops.minimum(ops.maximum(x1, wx1), wx2)
    y2 = ops.minimum(ops.maximum(y2, wy1), wy2)
    x2 = ops.minimum(ops.maximum(x2, wx1), wx2)
    return ops.stack([y1, x1, y2, x2], axis=-1)


def box_overlaps(boxes1, boxes2):
    """Pairwise intersection over union.

    Areas are ``(y2 - y1) * (x2 - x1)`` (no +1), the convention of
    ``mrcnn.ops.native.batched_nms``. Pairs whose union is empty (e.g. two zero
    padding boxes) get IoU 0, never NaN.

    Args:
        boxes1: float [..., N, 4].
        boxes2: float [..., M, 4], same frame; leading dims broadcast with ``boxes1``.

    Returns:
        float32 [..., N, M] IoU.
    """
    boxes1 = ops.cast(boxes1, "float32")
    boxes2 = ops.cast(boxes2, "float32")
    # [..., N, 1, 4] against [..., 1, M, 4] -> [..., N, M]
    b1y1, b1x1, b1y2, b1x2 = _split(boxes1[..., :, None, :])
    b2y1, b2x1, b2y2, b2x2 = _split(boxes2[..., None, :, :])
    inter_h = ops.maximum(ops.minimum(b1y2, b2y2) - ops.maximum(b1y1, b2y1), 0.0)
    inter_w = ops.maximum(ops.minimum(b1x2, b2x2) - ops.maximum(b1x1, b2x1), 0.0)
    intersection = inter_h * inter_w
    area1 = (b1y2 - b1y1) * (b1x2 - b1x1)
    area2 = (b2y2 - b2y1) * (b2x2 - b2x1)
    union = area1 + area2 - intersection
    return ops.divide_no_nan(intersection, union)


def _norm_scale_shift(shape):
    shape = ops.cast(shape, "float32")
    height, width = shape[..., 0], shape[..., 1]
    scale = ops.stack([height - 1.0, width - 1.0, height - 1.0, width - 1.0], axis=-1)
    shift = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], dtype="float32")
    return scale, shift


def norm_boxes(boxes, shape):
    """Pixel boxes (y2/x2 exclusive) -> normalised boxes.

    Args:
        boxes: [..., 4] pixel boxes.
        shape: [..., 2] (height, width) of the image, broadcastable against the
            leading dims of ``boxes`` (e.g. ``[2]`` for one shared shape, or ``[B, 1, 2]``
            for per-image shapes of ``[B, N, 4]`` boxes).

    Returns:
        float32 [..., 4] normalised boxes: ``(box - [0, 0, 1, 1]) / [h-1, w-1, h-1, w-1]``.
    """
    boxes = ops.cast(boxes, "float32")
    scale, shift = _norm_scale_shift(shape)
    return (boxes - shift) / scale


def denorm_boxes(boxes, shape):
    """Normalised boxes -> pixel boxes (y2/x2 exclusive), rounded to int32.

    Args:
        boxes: [..., 4] normalised boxes.
        shape: [..., 2] (height, width), broadcastable as in :func:`norm_boxes`.

    Returns:
        int32 [..., 4] ``round(box * [h-1, w-1, h-1, w-1] + [0, 0, 1, 1])``.
    """
    boxes = ops.cast(boxes, "float32")
    scale, shift = _norm_scale_shift(shape)
    return ops.cast(ops.round(boxes * scale + shift), "int32")
