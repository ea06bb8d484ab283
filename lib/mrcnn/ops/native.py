"""The tensor operations Keras has no op for, one implementation per backend.

Everything else in the model is written once in ``keras.ops``. These three need
more than ``keras.ops`` offers (dynamic output sizes, or a kernel the backend's
ecosystem already ships), so each has one implementation per Keras backend, chosen
by ``keras.backend.backend()`` at call time:

=========================  ==============================  ==========================  ===========================
op                         TensorFlow                      PyTorch                     JAX (and any other backend)
=========================  ==============================  ==========================  ===========================
``crop_and_resize``        ``tf.image.crop_and_resize``    ``torchvision.ops.roi_align``  gathers in ``keras.ops``
``pyramid_crop_and_resize``  per-level gather / scatter    per-level ``roi_align``     every level, then select
``batched_nms``            ``combined_non_max_suppression``  ``torchvision.ops.nms``   ``keras.ops.while_loop``
=========================  ==============================  ==========================  ===========================

The JAX implementations have static shapes and compile under ``jax.jit``. A
backend's libraries are imported inside the functions, so a process on JAX or
PyTorch never imports TensorFlow.

Shape shorthand: ``N`` images, ``H, W`` image size, ``C`` channels, ``K`` boxes to
crop, ``B`` batch, ``M`` NMS candidates per image, ``D`` kept boxes per image, ``R``
boxes per image, ``L`` pyramid levels.

Conventions (shared by all implementations and by ``tests/mrcnn/numpy_reference.py``):

- Boxes are ``(y1, x1, y2, x2)`` normalised as ``tf.image.crop_and_resize`` takes
  them: ``y = y1 * (H - 1)`` is the first sampled row. With ``ch > 1`` rows are
  sampled at ``y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (ch - 1)``; with ``ch == 1``
  at the box centre. Sampling is bilinear; a sample row or column outside
  ``[0, H - 1]`` / ``[0, W - 1]`` is 0 (extrapolation value 0).

  A box side exactly on the image edge (a box clipped to the window) puts its last
  sample at ``W - 1`` give or take rounding, so whether that column is kept or zeroed
  is a float32 rounding outcome. TensorFlow and PyTorch compute the position in plain
  float32 as written above and zero the same columns (TF zeroes the last column of 2-7% of
  boxes ending at 1.0). JAX does not: XLA divides by a constant through its reciprocal
  and fuses multiply-adds, so under ``jax.jit`` it zeroes another subset (0-59% of such
  boxes, depending on sizes) and eager JAX yet another. Detections of such boxes then
  differ between backends, or between a jitted and an eager JAX call, by up to a few
  1e-3 in class scores (measured on a random model).
- NMS is greedy by descending score. IoU is ``(y2 - y1) * (x2 - x1)`` area based
  (no +1); a box is suppressed by a kept box when their IoU is strictly greater than
  the threshold. Outputs are zero padded after the kept boxes.
"""

import keras
import numpy as np
from keras import ops


def _backend():
    return keras.backend.backend()


def _crop_size(crop_size):
    if isinstance(crop_size, (int, np.integer)):
        return int(crop_size), int(crop_size)
    size = tuple(int(v) for v in crop_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"crop_size must be a positive int or (height, width), got {crop_size!r}")
    return size


# =================================================================== crop and resize
def crop_and_resize(images, boxes, box_indices, crop_size):
    """Bilinear crops of boxes, resized to ``crop_size`` (``tf.image.crop_and_resize``).

    Args:
        images: float [N, H, W, C].
        boxes: float [K, 4] normalised (y1, x1, y2, x2) (see module docstring); may
            extend outside [0, 1] (samples outside the image are 0) or be flipped.
        box_indices: int [K], the image of each box.
        crop_size: int or (ch, cw).

    Returns:
        float32 [K, ch, cw, C]. Differentiable with respect to ``images`` (not boxes).
    """
    size = _crop_size(crop_size)
    backend = _backend()
    if backend == "tensorflow":
        return _tf_crop_and_resize(images, boxes, box_indices, size)
    if backend == "torch":
        return _torch_crop_and_resize(images, boxes, box_indices, size)
    return _keras_crop_and_resize(images, boxes, box_indices, size)


def pyramid_crop_and_resize(feature_maps, boxes, levels, crop_size):
    """Crop each box from the feature map of its level, order preserved.

    Args:
        feature_maps: list of L float [B, h_l, w_l, C] maps (same C).
        boxes: float [B, R, 4] normalised (module docstring convention).
        levels: int [B, R] in 0..L-1, the index into ``feature_maps`` of each box.
        crop_size: int or (ch, cw).

    Returns:
        float32 [B, R, ch, cw, C]; gradients reach the feature maps, not the boxes.
    """
    size = _crop_size(crop_size)
    backend = _backend()
    if backend == "tensorflow":
        return _tf_pyramid_crop(feature_maps, boxes, levels, size)
    if backend == "torch":
        return _torch_pyramid_crop(feature_maps, boxes, levels, size)
    return _keras_pyramid_crop(feature_maps, boxes, levels, size)


def _sample_grid(lo, hi, size, extent):
    """Sample positions of a crop along one axis.

    lo, hi: [K] normalised box sides; size: samples; extent: image side (H or W).
    Returns (low index int32 [K, size], high index, fraction float [K, size],
    inside bool [K, size]) as ``tf.image.crop_and_resize`` computes them.
    """
    last = float(extent - 1)
    if size > 1:
        step = (hi - lo) * last / float(size - 1)
        pos = lo[:, None] * last + ops.arange(size, dtype="float32")[None, :] * step[:, None]
    else:
        pos = (0.5 * (lo + hi) * last)[:, None]
    inside = (pos >= 0.0) & (pos <= last)
    low = ops.floor(pos)
    frac = pos - low
    low_i = ops.cast(ops.clip(low, 0.0, last), "int32")
    high_i = ops.cast(ops.clip(ops.ceil(pos), 0.0, last), "int32")
    return low_i, high_i, frac, inside


def _keras_crop_and_resize(images, boxes, box_indices, size):
    """Gather-based bilinear crop in keras.ops: static shapes, jit-compatible."""
    images = ops.cast(images, "float32")
    boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
    box_indices = ops.cast(box_indices, "int32")
    n, height, width, channels = images.shape
    crop_h, crop_w = size
    y_lo, y_hi, y_frac, y_in = _sample_grid(boxes[:, 0], boxes[:, 2], crop_h, height)
    x_lo, x_hi, x_frac, x_in = _sample_grid(boxes[:, 1], boxes[:, 3], crop_w, width)
    flat = ops.reshape(images, (-1, channels))  # [N*H*W, C]
    base = box_indices[:, None, None] * (height * width)  # [K, 1, 1]

    def corner(rows, cols):  # rows [K, ch], cols [K, cw] -> [K, ch, cw, C]
        index = base + rows[:, :, None] * width + cols[:, None, :]
        return ops.take(flat, index, axis=0)

    x_frac = x_frac[:, None, :, None]
    y_frac = y_frac[:, :, None, None]
    top_left, top_right = corner(y_lo, x_lo), corner(y_lo, x_hi)
    bottom_left, bottom_right = corner(y_hi, x_lo), corner(y_hi, x_hi)
    top = top_left + (top_right - top_left) * x_frac
    bottom = bottom_left + (bottom_right - bottom_left) * x_frac
    crops = top + (bottom - top) * y_frac
    inside = (y_in[:, :, None] & x_in[:, None, :])[..., None]
    return ops.where(inside, crops, 0.0)


def _keras_pyramid_crop(feature_maps, boxes, levels, size):
    """Every box on every level, then the right level selected (static shapes)."""
    boxes = ops.cast(boxes, "float32")
    batch, rois = boxes.shape[0], boxes.shape[1]
    flat_boxes = ops.reshape(boxes, (-1, 4))
    flat_levels = ops.reshape(ops.cast(levels, "int32"), (-1,))
    image_of_box = ops.repeat(ops.arange(batch, dtype="int32"), rois)
    out = None
    for level, feature_map in enumerate(feature_maps):
        crops = _keras_crop_and_resize(feature_map, flat_boxes, image_of_box, size)
        on_level = (flat_levels == level)[:, None, None, None]
        out = ops.where(on_level, crops, 0.0) if out is None else ops.where(on_level, crops, out)
    return ops.reshape(out, (batch, rois) + tuple(size) + (out.shape[-1],))


def _tf_crop_and_resize(images, boxes, box_indices, size):
    import tensorflow as tf
    return tf.image.crop_and_resize(
        tf.cast(images, tf.float32), tf.stop_gradient(tf.cast(boxes, tf.float32)),
        tf.cast(box_indices, tf.int32), size, method="bilinear")


def _tf_pyramid_crop(feature_maps, boxes, levels, size):
    """Only the boxes of each level are cropped from it, then scattered back."""
    import tensorflow as tf
    boxes = tf.cast(boxes, tf.float32)
    levels = tf.cast(levels, tf.int32)
    pooled, positions = [], []
    for level, feature_map in enumerate(feature_maps):
        ix = tf.cast(tf.where(tf.equal(levels, level)), tf.int32)  # [n_l, 2] (image, roi)
        pooled.append(_tf_crop_and_resize(feature_map, tf.gather_nd(boxes, ix), ix[:, 0], size))
        positions.append(ix)
    pooled = tf.concat(pooled, axis=0)
    # Each (image, roi) is on exactly one level, so the scatter sums nothing.
    shape = tf.concat([tf.shape(boxes)[:2], size, tf.shape(pooled)[-1:]], axis=0)
    out = tf.scatter_nd(tf.concat(positions, axis=0), pooled, shape)
    out.set_shape([boxes.shape[0], boxes.shape[1], *size, feature_maps[0].shape[-1]])
    return out


def _torch_roi_boxes(boxes, box_indices, size, height, width):
    """Boxes for ``torchvision.ops.roi_align(aligned=True, sampling_ratio=1)`` whose
    single sample per bin lands where ``tf.image.crop_and_resize`` samples.

    roi_align samples bin i at ``start - 0.5 + (i + 0.5) * (end - start) / n``; with
    one bin per output pixel of width ``step`` this is ``start - 0.5 + 0.5 * step +
    i * step``, so ``start = first + 0.5 - 0.5 * step`` and ``end = start + n * step``.
    """
    import torch

    def axis(lo, hi, n, extent):
        last = float(extent - 1)
        if n > 1:
            step = (hi - lo) * last / float(n - 1)
            first = lo * last
        else:
            step = torch.zeros_like(lo)
            first = 0.5 * (lo + hi) * last
        start = first + 0.5 - 0.5 * step
        return start, start + n * step

    y_start, y_end = axis(boxes[:, 0], boxes[:, 2], size[0], height)
    x_start, x_end = axis(boxes[:, 1], boxes[:, 3], size[1], width)
    return torch.stack([box_indices.to(boxes.dtype), x_start, y_start, x_end, y_end], dim=1)


def _torch_crop_and_resize(images, boxes, box_indices, size):
    import torch
    from torchvision.ops import roi_align
    images = keras.ops.convert_to_tensor(images).float()
    boxes = keras.ops.convert_to_tensor(boxes).float().detach()
    box_indices = keras.ops.convert_to_tensor(box_indices).long()
    height, width = images.shape[1], images.shape[2]
    if boxes.shape[0] == 0:
        return images.new_zeros((0, *size, images.shape[-1]))
    rois = _torch_roi_boxes(boxes, box_indices, size, height, width)
    crops = roi_align(images.permute(0, 3, 1, 2), rois, output_size=size, spatial_scale=1.0,
                      sampling_ratio=1, aligned=True)  # [K, C, ch, cw]
    crops = crops.permute(0, 2, 3, 1)
    # roi_align clamps samples just outside the image to its edge; crop_and_resize
    # gives 0 there. The sample positions decide, as in _sample_grid.
    _, _, _, y_in = _sample_grid(boxes[:, 0], boxes[:, 2], size[0], height)
    _, _, _, x_in = _sample_grid(boxes[:, 1], boxes[:, 3], size[1], width)
    inside = (y_in[:, :, None] & x_in[:, None, :])[..., None]
    return torch.where(inside, crops, torch.zeros((), dtype=crops.dtype, device=crops.device))


def _torch_pyramid_crop(feature_maps, boxes, levels, size):
    import torch
    boxes = keras.ops.convert_to_tensor(boxes).float()
    levels = keras.ops.convert_to_tensor(levels)
    batch, rois = boxes.shape[0], boxes.shape[1]
    channels = feature_maps[0].shape[-1]
    flat_boxes = boxes.reshape(-1, 4)
    flat_levels = levels.reshape(-1)
    image_of_box = torch.arange(batch, device=boxes.device).repeat_interleave(rois)
    out = boxes.new_zeros((batch * rois, *size, channels))
    for level, feature_map in enumerate(feature_maps):
        ix = torch.nonzero(flat_levels == level).squeeze(1)
        if ix.numel() == 0:
            continue
        crops = _torch_crop_and_resize(feature_map, flat_boxes[ix], image_of_box[ix], size)
        out = out.index_put((ix,), crops)
    return out.reshape(batch, rois, *size, channels)


# =================================================================== NMS
def batched_nms(boxes, scores, max_output_size, iou_threshold, valid=None, classes=None,
                num_classes=1):
    """Greedy non-max suppression, independently per image (and per class).

    Args:
        boxes: float [B, M, 4] (y1, x1, y2, x2), any frame.
        scores: float [B, M].
        max_output_size: int D, boxes kept per image at most.
        iou_threshold: float; IoU strictly above it suppresses.
        valid: optional bool [B, M]; False candidates are never kept and suppress
            nothing.
        classes: optional int [B, M] in 0..num_classes-1: boxes suppress only boxes
            of their own class (then the best D over all classes are kept).
        num_classes: the number of classes ``classes`` may hold.

    Returns:
        (boxes float32 [B, D, 4], scores float32 [B, D], classes int32 [B, D],
        count int32 [B]): kept candidates by descending score, zero rows after
        ``count``.
    """
    max_output_size = int(max_output_size)
    iou_threshold = float(iou_threshold)
    boxes = ops.cast(boxes, "float32")
    scores = ops.cast(scores, "float32")
    valid = (ops.ones_like(scores, dtype="bool") if valid is None
             else ops.cast(valid, "bool"))
    if classes is None:
        classes = ops.zeros_like(scores, dtype="int32")
    classes = ops.cast(classes, "int32")
    backend = _backend()
    if backend == "tensorflow":
        return _tf_batched_nms(boxes, scores, max_output_size, iou_threshold, valid, classes,
                               int(num_classes))
    if backend == "torch":
        return _torch_batched_nms(boxes, scores, max_output_size, iou_threshold, valid, classes)
    return _keras_batched_nms(boxes, scores, max_output_size, iou_threshold, valid, classes)


def _zero_after_count(boxes, scores, classes, count, size):
    keep = ops.arange(size, dtype="int32")[None, :] < count[:, None]
    return (ops.where(keep[..., None], boxes, 0.0), ops.where(keep, scores, 0.0),
            ops.where(keep, classes, 0), count)


def _tf_batched_nms(boxes, scores, size, threshold, valid, classes, num_classes):
    import tensorflow as tf
    # One score column per class; a candidate scores -inf in every other column and
    # everywhere when invalid, and the lowest float threshold drops exactly those.
    # A comparison, not a boolean tf.one_hot: tf2onnx converts one_hot of rank-1
    # indices only, and this op is part of the exported serving graph.
    in_class = tf.equal(classes[..., None], tf.range(num_classes, dtype=classes.dtype))
    class_scores = tf.where(in_class & valid[..., None], scores[..., None], float("-inf"))
    result = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], class_scores, max_output_size_per_class=size,
        max_total_size=size, iou_threshold=threshold,
        score_threshold=float(np.finfo(np.float32).min), pad_per_class=False,
        clip_boxes=False)
    count = tf.cast(result.valid_detections, tf.int32)
    return _zero_after_count(result.nmsed_boxes, result.nmsed_scores,
                             tf.cast(result.nmsed_classes, tf.int32), count, size)


def _torch_batched_nms(boxes, scores, size, threshold, valid, classes):
    import torch
    from torchvision.ops import nms
    batch = boxes.shape[0]
    out_boxes = boxes.new_zeros((batch, size, 4))
    out_scores = scores.new_zeros((batch, size))
    out_classes = torch.zeros((batch, size), dtype=torch.int32, device=boxes.device)
    counts = torch.zeros((batch,), dtype=torch.int32, device=boxes.device)
    for b in range(batch):
        candidates = torch.nonzero(valid[b]).squeeze(1)
        kept = []
        # One NMS call per class: torchvision's batched_nms offsets boxes by class,
        # which rounds coordinates; per class keeps the IoU exact.
        for c in torch.unique(classes[b, candidates]):
            members = candidates[classes[b, candidates] == c]
            kept.append(members[nms(boxes[b, members], scores[b, members], threshold)])
        if not kept:
            continue
        kept = torch.cat(kept)
        kept = kept[torch.argsort(scores[b, kept], descending=True, stable=True)][:size]
        n = kept.numel()
        out_boxes[b, :n] = boxes[b, kept]
        out_scores[b, :n] = scores[b, kept]
        out_classes[b, :n] = classes[b, kept]
        counts[b] = n
    return out_boxes, out_scores, out_classes, counts


def _keras_batched_nms(boxes, scores, size, threshold, valid, classes):
    """Greedy NMS as a while loop over candidates by score, all images at once.

    Static shapes throughout: step i decides the i-th best candidate of every image
    (kept if valid and not suppressed yet) and suppresses the later candidates of
    its class that overlap it. The loop stops when every image has D boxes or all
    candidates are decided. Memory O(B * M); M steps at most.
    """
    batch, candidates = boxes.shape[0], boxes.shape[1]
    if candidates == 0:
        # Nothing to keep. The loop body is traced even when it never runs, and its
        # take of candidate i fails on an empty axis.
        return (ops.zeros((batch, size, 4), "float32"), ops.zeros((batch, size), "float32"),
                ops.zeros((batch, size), "int32"), ops.zeros((batch,), "int32"))
    order = ops.argsort(-ops.where(valid, scores, float("-inf")), axis=-1)
    boxes = ops.take_along_axis(boxes, order[..., None], axis=1)
    scores = ops.take_along_axis(scores, order, axis=1)
    valid = ops.take_along_axis(valid, order, axis=1)
    classes = ops.take_along_axis(classes, order, axis=1)
    positions = ops.arange(candidates, dtype="int32")
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])  # [B, M]

    def cond(i, kept, suppressed, count):
        return (i < candidates) & ops.any(count < size)

    def body(i, kept, suppressed, count):
        box = ops.take(boxes, i, axis=1)  # [B, 4]
        decide = (ops.take(valid, i, axis=1) & ~ops.take(suppressed, i, axis=1)
                  & (count < size))  # [B]
        inter_h = ops.maximum(ops.minimum(box[:, None, 2], boxes[..., 2])
                              - ops.maximum(box[:, None, 0], boxes[..., 0]), 0.0)
        inter_w = ops.maximum(ops.minimum(box[:, None, 3], boxes[..., 3])
                              - ops.maximum(box[:, None, 1], boxes[..., 1]), 0.0)
        inter = inter_h * inter_w
        union = ops.take(area, i, axis=1)[:, None] + area - inter
        iou = ops.divide_no_nan(inter, union)  # [B, M]
        same_class = classes == ops.take(classes, i, axis=1)[:, None]
        suppressed = suppressed | (decide[:, None] & same_class & (iou > threshold)
                                   & (positions[None, :] > i))
        kept = kept | (decide[:, None] & (positions[None, :] == i))
        return i + 1, kept, suppressed, count + ops.cast(decide, "int32")

    start = (ops.convert_to_tensor(0, dtype="int32"), ops.zeros((batch, candidates), "bool"),
             ops.zeros((batch, candidates), "bool"), ops.zeros((batch,), "int32"))
    _, kept, _, count = ops.while_loop(cond, body, start)
    # Kept candidates in score order: the smallest positions among the kept.
    rank_key = ops.where(kept, positions[None, :], positions[None, :] + candidates)
    take = min(size, candidates)
    selected = ops.argsort(rank_key, axis=-1)[:, :take]
    out_boxes = ops.take_along_axis(boxes, selected[..., None], axis=1)
    out_scores = ops.take_along_axis(scores, selected, axis=1)
    out_classes = ops.take_along_axis(classes, selected, axis=1)
    if take < size:
        out_boxes = ops.pad(out_boxes, [[0, 0], [0, size - take], [0, 0]])
        out_scores = ops.pad(out_scores, [[0, 0], [0, size - take]])
        out_classes = ops.pad(out_classes, [[0, 0], [0, size - take]])
    return _zero_after_count(out_boxes, out_scores, out_classes, count, size)
