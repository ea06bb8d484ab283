"""Export a Siamese Mask R-CNN for serving: a TensorFlow SavedModel or an ONNX file.

The exported graph does everything :meth:`SiameseMaskRCNN.detect` does, so a
server needs neither this project nor numpy pre-processing: it takes the raw uint8
query image and raw uint8 reference crops and returns detections in the query's
own pixels, masks included.

Shape shorthand: ``H, W`` query image height and width (any), ``S`` references
(one or more; their features are averaged, the k-shot rule), ``h, w`` reference
crop height and width (any), ``N`` detections kept (at most
DETECTION_MAX_INSTANCES), ``Q`` = IMAGE_MAX_DIM (molded query side), ``R`` =
TARGET_MAX_DIM (molded reference side), ``K`` classes (2: background, match).

Serving signature (endpoint ``serve``, also the SavedModel's ``serving_default``
and the ONNX graph):

    inputs   image        uint8 [H, W, 3]      RGB query image
             references   uint8 [S, h, w, 3]   RGB reference crops, one object each
    outputs  boxes        int32 [N, 4]         (y1, x1, y2, x2) query pixels, y2/x2 exclusive
             class_ids    int32 [N]            1 = matches the references
             scores       float32 [N]          descending
             masks        bool [N, H, W]       instance masks in the query's pixels
             count        int32 []             N, the number of detections

``N`` is dynamic: the outputs hold exactly the detections ``detect()`` returns (its
``rois``, ``class_ids``, ``scores`` and ``masks`` moved to the front axis). The
SavedModel has a second endpoint, ``serve_padded``, for crops of different sizes:
``references`` uint8 [S, h_max, w_max, 3] holds each crop in its top-left corner
and ``reference_sizes`` int32 [S, 2] gives each crop's (height, width).

In the graph, as in ``detect()`` (``RESAMPLING = "corrected"``):

1. the query is resized the "square" way (scale = max(1, IMAGE_MIN_DIM / short
   side), at least IMAGE_MIN_SCALE, lowered so the long side fits IMAGE_MAX_DIM),
   bilinearly at pixel centres with edges extended, rounded to integers, zero
   padded (centred) to Q x Q and mean-subtracted;
2. each reference is resized by the reference rule (short side up to
   TARGET_MIN_DIM, never down; long side capped at TARGET_MAX_DIM), zero padded to
   R x R and mean-subtracted;
3. the model's backbone, matching and heads run (its own layers and weights);
4. detections are moved from the molded frame to the query's pixels and rounded;
   empty boxes are dropped;
5. each 28x28 mask is resampled bilinearly onto the pixels of its box (pixel
   centres, edges extended) and thresholded at 0.5.

Steps 1, 2, 4 and 5 are written in ``keras.ops``; the resampling is done with
gathers (no image-resize kernel), so the ONNX graph needs no Resize op either.
Geometry (scales, sizes, sample positions, box arithmetic) is computed in float64
like the numpy code, so boxes and masks agree with ``detect()`` exactly in most
cases; the remaining difference is the float round-off of bilinear weights, which
can move a resized pixel by one grey level (measured in ``tests/siamese_mrcnn/
test_export.py``).

What the graph does not check (``detect()`` raises instead): S must be at least 1;
crops below 8x8 pixels (``references.MIN_REFERENCE_SIZE``) are resized like any
other, though they carry little more than a colour; ``reference_sizes`` must lie in
1..h_max and 1..w_max. The number of references is free (the config's NUM_TARGETS
only shapes ``detect()``'s input). Masks are resampled in float64 for the N kept
detections only: about 8 x N x H x W bytes of working memory per query.

Only IMAGE_RESIZE_MODE "square" (fixed molded size) and RESAMPLING "corrected"
can be exported. Export runs on the TensorFlow backend (a SavedModel is a
TensorFlow artifact, and the ONNX file is converted from it by tf2onnx: ``pip
install -e ".[export]"``).
"""

import keras
import numpy as np
from keras import ops

FORMATS = ("savedmodel", "onnx")
# The serving signature in words (written to export.json by ``siamese-mrcnn export``).
SIGNATURE = {
    "inputs": {
        "image": "uint8 [H, W, 3] RGB query image, any size",
        "references": "uint8 [S, h, w, 3] RGB reference crops (S >= 1, any size, one "
                      "object each; their features are averaged)",
    },
    "inputs_serve_padded": {
        "reference_sizes": "int32 [S, 2] (height, width) of each crop, placed in the "
                           "top-left corner of references (SavedModel only)",
    },
    "outputs": {
        "boxes": "int32 [N, 4] (y1, x1, y2, x2) query pixels, y2 and x2 exclusive",
        "class_ids": "int32 [N], 1 = matches the references",
        "scores": "float32 [N], descending",
        "masks": "bool [N, H, W] instance masks in query pixels",
        "count": "int32 [], N",
    },
}
# Mask-head probabilities at or above this are inside the instance (detect()'s rule).
MASK_THRESHOLD = 0.5


class ExportError(ValueError):
    """A model or configuration that cannot be exported, or a missing requirement."""


# ---------------------------------------------------------------- pre-processing
def square_geometry(heights, widths, min_dim, max_dim, min_scale=0):
    """Scale, resized size and padding of :func:`mrcnn.utils.resize_image`'s "square"
    mode, for a batch of image sizes.

    Args:
        heights, widths: int or float tensors [B], image sizes in pixels.
        min_dim, max_dim, min_scale: the mode's settings (``min_dim`` 0: no
            up-scaling rule; ``min_scale`` 0: no lower bound).
    Returns:
        (scale float64 [B], resized height float64 [B], resized width float64 [B],
        top float64 [B], left float64 [B]): the image is resized to (height, width)
        = round(size * scale) (half to even, Python's ``round``) and placed at
        (top, left) of the max_dim x max_dim canvas. Computed in float64 with the
        numpy code's operations, so the sizes are the same.
    """
    h = ops.cast(heights, "float64")
    w = ops.cast(widths, "float64")
    scale = ops.ones_like(h)
    if min_dim:
        scale = ops.maximum(scale, float(min_dim) / ops.minimum(h, w))
    if min_scale:
        scale = ops.maximum(scale, float(min_scale))
    long_side = ops.maximum(h, w)
    scale = ops.where(ops.round(long_side * scale) > float(max_dim),
                      float(max_dim) / long_side, scale)
    new_h, new_w = ops.round(h * scale), ops.round(w * scale)
    # (max_dim - size) // 2 of non-negative integers.
    top = ops.floor((float(max_dim) - new_h) / 2.0)
    left = ops.floor((float(max_dim) - new_w) / 2.0)
    return scale, new_h, new_w, top, left


def _sample_grid(out_size, offset, length, extent):
    """Bilinear sample positions along one axis of a batch.

    Output pixel ``i`` (0..out_size-1) lies in the content when ``offset <= i <
    offset + length`` and samples source coordinate ``(i - offset + 0.5) * extent /
    length - 0.5``, clamped to ``[0, extent - 1]`` (pixel centres, edges extended:
    scikit-image's ``resize(order=1, mode="edge")`` and mrcnn's mask pasting).

    Args:
        out_size: int or scalar tensor, output pixels along the axis.
        offset, length, extent: float64 [B] (content start and size in the output,
            source size).
    Returns:
        (low int32 [B, out], high int32 [B, out], fraction float64 [B, out],
        inside bool [B, out]).
    """
    i = ops.cast(ops.arange(out_size), "float64")[None, :] - offset[:, None]
    inside = (i >= 0.0) & (i < length[:, None])
    step = extent / ops.maximum(length, 1.0)
    pos = (i + 0.5) * step[:, None] - 0.5
    pos = ops.clip(pos, 0.0, ops.maximum(extent - 1.0, 0.0)[:, None])
    low = ops.floor(pos)
    fraction = pos - low
    low_i = ops.cast(low, "int32")
    high_i = ops.minimum(low_i + 1, ops.cast(extent, "int32")[:, None] - 1)
    return low_i, high_i, fraction, inside


def _gather_rows(images, index):
    """images [B, n, ...], index int32 [B, m] -> [B, m, ...] (per-item rows)."""
    shape = ops.shape(images)
    batch, rows = shape[0], shape[1]
    flat = ops.reshape(images, (-1,) + tuple(shape[2:]))  # [B*n, ...]
    base = ops.arange(batch, dtype="int32")[:, None] * ops.cast(rows, "int32")
    return ops.take(flat, base + index, axis=0)


def _lerp(a, b, fraction):
    """``a * (1 - f) + b * f``: the numpy code's form, so results agree bit for bit."""
    return a * (1.0 - fraction) + b * fraction


def resample(images, rows, cols):
    """Bilinear resampling of a batch on per-item separable grids.

    Args:
        images: float64 [B, n, m, C].
        rows: the (low, high, fraction, inside) of :func:`_sample_grid` for the
            output rows [B, oh]; cols: the same for the output columns [B, ow].
    Returns:
        float64 [B, oh, ow, C]: interpolated along columns, then rows (the order
        of mrcnn's numpy ``_bilinear_gather``); 0 outside the content.
    """
    y0, y1, fy, y_in = rows
    x0, x1, fx, x_in = cols
    # Columns first: [B, n, m, C] -> [B, m, n, C] so columns are the gathered axis.
    by_col = ops.transpose(images, (0, 2, 1, 3))
    fx4 = fx[:, :, None, None]
    cols_done = _lerp(_gather_rows(by_col, x0), _gather_rows(by_col, x1), fx4)  # [B, ow, n, C]
    by_row = ops.transpose(cols_done, (0, 2, 1, 3))  # [B, n, ow, C]
    fy4 = fy[:, :, None, None]
    out = _lerp(_gather_rows(by_row, y0), _gather_rows(by_row, y1), fy4)  # [B, oh, ow, C]
    inside = (y_in[:, :, None] & x_in[:, None, :])[..., None]
    return ops.where(inside, out, 0.0)


def resize_square(images, sizes, min_dim, max_dim, min_scale=0):
    """:func:`mrcnn.utils.resize_image` "square" (resampling "corrected") for a batch
    of images of different sizes, in ``keras.ops``.

    Args:
        images: uint8 (or float) [B, h_max, w_max, C]; image b is its top-left
            ``sizes[b]`` pixels.
        sizes: int [B, 2] (height, width) of each image.
        min_dim, max_dim, min_scale: the resize settings.
    Returns:
        (resized float32 [B, max_dim, max_dim, C] with integer values 0..255 in the
        window and 0 in the padding (as the uint8 image ``resize_image`` returns),
        window float64 [B, 4] (y1, x1, y2, x2) pixels of the content, y2/x2
        exclusive, scale float64 [B]).
    """
    sizes = ops.cast(sizes, "float64")
    heights, widths = sizes[:, 0], sizes[:, 1]
    scale, new_h, new_w, top, left = square_geometry(heights, widths, min_dim, max_dim,
                                                     min_scale)
    rows = _sample_grid(max_dim, top, new_h, heights)
    cols = _sample_grid(max_dim, left, new_w, widths)
    resized = resample(ops.cast(images, "float64"), rows, cols)
    # resize_image rounds to the nearest integer (half to even) and clips to uint8.
    resized = ops.clip(ops.round(resized), 0.0, 255.0)
    window = ops.stack([top, left, top + new_h, left + new_w], axis=1)
    return ops.cast(resized, "float32"), window, scale


# ---------------------------------------------------------------- post-processing
def unmold_boxes(boxes, window, molded_size, image_height, image_width):
    """Normalised boxes in the molded image -> pixel boxes of the original image.

    The arithmetic of :meth:`mrcnn.model.MaskRCNN.unmold_detections` (float32 shift
    and scale by the normalised window, then float64 de-normalisation rounded half
    to even), so the pixels agree exactly.

    Args:
        boxes: float32 [N, 4] normalised (y1, x1, y2, x2) in the molded image.
        window: float [4] pixel window of the image content in the molded image.
        molded_size: int, the molded image's side.
        image_height, image_width: scalars, the original image's size.
    Returns:
        int32 [N, 4] pixel boxes (y1, x1, y2, x2), y2/x2 exclusive.
    """
    last = float(molded_size - 1)
    norm_window = ops.cast((ops.cast(window, "float64") - np.array([0.0, 0.0, 1.0, 1.0]))
                           / last, "float32")
    wy1, wx1, wy2, wx2 = (norm_window[i] for i in range(4))
    shift = ops.stack([wy1, wx1, wy1, wx1])
    extent = ops.stack([wy2 - wy1, wx2 - wx1, wy2 - wy1, wx2 - wx1])
    normalised = (ops.cast(boxes, "float32") - shift) / extent
    h = ops.cast(image_height, "float64") - 1.0
    w = ops.cast(image_width, "float64") - 1.0
    scale = ops.stack([h, w, h, w])
    pixels = ops.round(ops.cast(normalised, "float64") * scale
                       + np.array([0.0, 0.0, 1.0, 1.0]))
    return ops.cast(pixels, "int32")


def paste_masks(masks, boxes, image_height, image_width, threshold=MASK_THRESHOLD):
    """Paste mask-head outputs into the image at their boxes (:func:`mrcnn.utils.unmold_mask`).

    Each mask is resampled bilinearly onto the pixels of its box (pixel centres,
    edges extended); pixels outside the box (or the image) are False.

    Args:
        masks: float [N, mh, mw] probabilities (28x28 from the mask head).
        boxes: int [N, 4] pixel boxes (y1, x1, y2, x2), y2/x2 exclusive, in the image.
        image_height, image_width: scalars, the image size.
        threshold: probability at or above which a pixel is inside.
    Returns:
        bool [N, image_height, image_width].
    """
    masks = ops.cast(masks, "float64")
    mh, mw = masks.shape[1], masks.shape[2]
    boxes = ops.cast(boxes, "float64")
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    mask_h = ops.full_like(heights, float(mh))
    mask_w = ops.full_like(widths, float(mw))
    rows = _sample_grid(image_height, boxes[:, 0], heights, mask_h)
    cols = _sample_grid(image_width, boxes[:, 1], widths, mask_w)
    values = resample(masks[..., None], rows, cols)[..., 0]
    inside = rows[3][:, :, None] & cols[3][:, None, :]
    return (values >= threshold) & inside


# ---------------------------------------------------------------- the serving graph
def check_exportable(config):
    """Raise :class:`ExportError` when the configuration cannot be exported."""
    if config.IMAGE_RESIZE_MODE != "square":
        raise ExportError(f"export needs IMAGE_RESIZE_MODE 'square' (a fixed molded size), "
                          f"got {config.IMAGE_RESIZE_MODE!r}")
    resampling = getattr(config, "RESAMPLING", "corrected")
    if resampling != "corrected":
        raise ExportError(f"export implements RESAMPLING 'corrected' only, got "
                          f"{resampling!r}; set RESAMPLING = 'corrected'")
    if config.IMAGE_CHANNEL_COUNT != 3:
        raise ExportError(f"the serving signature takes RGB images: IMAGE_CHANNEL_COUNT must "
                          f"be 3, got {config.IMAGE_CHANNEL_COUNT}")
    if getattr(config, "DTYPE_POLICY", "float32") != "float32":
        raise ExportError(f"export needs DTYPE_POLICY 'float32', got {config.DTYPE_POLICY!r}")


class SiameseServing(keras.Model):
    """The serving graph of a Siamese Mask R-CNN in inference mode (module docstring).

    ``SiameseServing(model)(image, references)`` returns the output dict of the
    serving signature; ``reference_sizes`` (int32 [S, 2]) may follow for crops
    padded to one size. It reuses the model's own layers (``resnet_model``,
    ``fpn_model``, the matching and heads sub-model), so its weights are the
    model's.

    Args:
        model: a :class:`siamese_mrcnn.model.SiameseMaskRCNN` built with
            mode="inference".
    """

    def __init__(self, model, **kwargs):
        super().__init__(name="siamese_mrcnn_serving", **kwargs)
        if model.mode != "inference":
            raise ExportError("export needs a model built in mode='inference'")
        check_exportable(model.config)
        config = model.config
        self.query_size = int(config.IMAGE_MAX_DIM)
        self.query_min_dim = int(config.IMAGE_MIN_DIM or 0)
        self.query_min_scale = float(config.IMAGE_MIN_SCALE or 0)
        self.reference_size = int(config.TARGET_MAX_DIM)
        self.reference_min_dim = int(config.TARGET_MIN_DIM or 0)
        self.mean_pixel = np.asarray(config.MEAN_PIXEL, np.float32)
        self.num_classes = int(config.NUM_CLASSES)
        self.resnet = model.keras_model.get_layer("resnet_model")
        self.fpn = model.keras_model.get_layer("fpn_model")
        self.query_features = model.query_model
        self.heads = model.head_model
        self.built = True  # every layer it calls is built already

    def call(self, image, references, reference_sizes=None):
        image = ops.convert_to_tensor(image)
        references = ops.convert_to_tensor(references)
        image_shape = ops.shape(image)
        height, width = image_shape[0], image_shape[1]
        if reference_sizes is None:
            ref_shape = ops.shape(references)
            reference_sizes = ops.tile(
                ops.reshape(ops.stack([ref_shape[1], ref_shape[2]]), (1, 2)),
                (ref_shape[0], 1))
        query_size = ops.reshape(ops.stack([height, width]), (1, 2))

        # 1. Query: resize "square", pad, subtract the mean pixel.
        molded, window, scale = resize_square(image[None], query_size, self.query_min_dim,
                                              self.query_size, self.query_min_scale)
        molded = molded - self.mean_pixel
        # 2. References: the reference rule, pad, subtract the mean pixel.
        molded_refs, _, _ = resize_square(references, reference_sizes,
                                          self.reference_min_dim, self.reference_size)
        molded_refs = molded_refs - self.mean_pixel

        # 3. The network: query pyramid, reference vectors (mean over shots and
        # locations: ReferencePooling for any number of shots), matching heads.
        pyramid = self.query_features(molded)
        ref_pyramid = self.fpn(self.resnet(molded_refs))
        vectors = [ops.mean(ops.cast(level, "float32"), axis=(0, 1, 2))[None, :]
                   for level in ref_pyramid]
        meta = self._image_meta(height, width, window[0], scale[0])
        outputs = self.heads(list(pyramid) + vectors + [meta])
        detections = outputs["detections"][0]  # [D, 6]

        # 4. Boxes into the query's pixels; keep real, non-empty detections, in order.
        class_ids = ops.cast(detections[:, 4], "int32")
        boxes = unmold_boxes(detections[:, :4], window[0], self.query_size, height, width)
        keep = ((class_ids > 0) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        slots = ops.shape(detections)[0]
        position = ops.arange(slots, dtype="int32")
        order = ops.argsort(ops.where(keep, position, position + slots))
        count = ops.sum(ops.cast(keep, "int32"))
        rows = order[:count]
        boxes = ops.take(boxes, rows, axis=0)
        class_ids = ops.take(class_ids, rows, axis=0)
        scores = ops.take(detections[:, 5], rows, axis=0)

        # 5. Masks: the class's 28x28 probabilities pasted into the query's pixels.
        if "mrcnn_mask" in outputs:
            small = ops.take(outputs["mrcnn_mask"][0], rows, axis=0)  # [N, mh, mw, K]
            # Picking channel class_id by a one-hot sum: exact (x * 1 + 0 * y).
            pick = ops.one_hot(class_ids, self.num_classes, dtype=small.dtype)
            small = ops.sum(small * pick[:, None, None, :], axis=-1)
            masks = paste_masks(small, boxes, height, width)
        else:
            masks = ops.zeros((count, height, width), dtype="bool")
        return {"boxes": boxes, "class_ids": class_ids, "scores": scores, "masks": masks,
                "count": count}

    def _image_meta(self, height, width, window, scale):
        """[1, 12 + K] float32, :func:`mrcnn.data.compose_image_meta`'s layout."""
        size = float(self.query_size)
        parts = [ops.zeros((1,), "float32"),
                 ops.cast(ops.stack([height, width]), "float32"),
                 ops.convert_to_tensor(np.array([3.0, size, size, 3.0], np.float32)),
                 ops.cast(window, "float32"), ops.cast(scale, "float32")[None],
                 ops.zeros((self.num_classes,), "float32")]
        return ops.concatenate(parts, axis=0)[None, :]


# ---------------------------------------------------------------- writing
def input_specs(padded=False):
    """The serving signature's inputs as ``keras.InputSpec``s (see module docstring)."""
    specs = [keras.InputSpec(shape=(None, None, 3), dtype="uint8", name="image"),
             keras.InputSpec(shape=(None, None, None, 3), dtype="uint8", name="references")]
    if padded:
        specs.append(keras.InputSpec(shape=(None, 2), dtype="int32", name="reference_sizes"))
    return specs


def _require_tensorflow(what):
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ExportError(f"{what} runs on the TensorFlow backend (a SavedModel is a "
                          f"TensorFlow graph; the ONNX file is converted from it), but Keras "
                          f"runs on {backend!r}: set KERAS_BACKEND=tensorflow (or --backend "
                          f"tensorflow)")


def export_savedmodel(model, path, verbose=False):
    """Write ``model``'s serving graph as a TensorFlow SavedModel folder ``path``.

    Endpoints ``serve`` (also ``serving_default``) and ``serve_padded`` (module
    docstring). Load it with ``tf.saved_model.load(path)`` and call
    ``loaded.serve(image, references)``; no import of this project is needed.
    Returns ``path``.
    """
    _require_tensorflow("export to a SavedModel")
    serving = SiameseServing(model)
    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint("serve", lambda image, references: serving(image, references),
                         input_signature=input_specs())
    archive.add_endpoint("serve_padded",
                         lambda image, references, reference_sizes: serving(
                             image, references, reference_sizes),
                         input_signature=input_specs(padded=True))
    archive.write_out(str(path), verbose=verbose)
    return path


def export_onnx(model, path, opset=None, verbose=False):
    """Write ``model``'s serving graph (the ``serve`` signature) as an ONNX file.

    Keras' ONNX export (``Model.export(format="onnx")``), which on TensorFlow
    converts the traced graph with tf2onnx (``pip install -e ".[export]"``).
    Run it with ``onnxruntime.InferenceSession(path).run(None, {"image": ...,
    "references": ...})``. Returns ``path``.
    """
    _require_tensorflow("export to ONNX")
    try:
        import tf2onnx  # noqa: F401 - checked here for a clear error
    except ImportError:
        raise ExportError("export to ONNX needs tf2onnx and onnx: pip install -e "
                          "'.[export]'") from None
    serving = SiameseServing(model)
    serving.export(str(path), format="onnx", input_signature=input_specs(),
                   opset_version=opset, verbose=verbose)
    return path


def export(model, path, format="savedmodel", verbose=False):
    """Export ``model`` (a SiameseMaskRCNN in inference mode) for serving.

    ``format``: "savedmodel" (a folder) or "onnx" (a file). Returns ``path``.
    """
    if format == "savedmodel":
        return export_savedmodel(model, path, verbose=verbose)
    if format == "onnx":
        return export_onnx(model, path, verbose=verbose)
    raise ExportError(f"format must be one of {FORMATS}, got {format!r}")
