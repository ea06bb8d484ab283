"""Image resizing and instance-mask helpers (numpy); re-exported by :mod:`mrcnn.utils`.

Shape shorthand: ``H, W`` image height and width in pixels, ``C`` channels, ``N``
instances, ``mh, mw`` mini-mask (or mask-head output) height and width.

Boxes are pixel ``(y1, x1, y2, x2)`` with y2/x2 exclusive: ``(0, 0, 10, 10)`` covers
pixels 0..9. Resampling is pixel-centre aligned everywhere: output pixel ``i`` of an
axis resized from ``n`` to ``m`` samples input coordinate ``(i + 0.5) * n / m - 0.5``.
Images are resized bilinearly by scikit-image; masks use the same geometry, with
nearest-neighbour sampling (:func:`resize_mask`) or bilinear sampling followed by a
0.5 threshold (mini masks), so a mask resized with the outputs of :func:`resize_image`
lies on the same pixels as the image content it marks.

Every resampling function takes ``resampling``: ``"corrected"`` (the default, the
above) or ``"faithful"``, the original project's scikit-image / SciPy calls
(:mod:`mrcnn._faithful`; ``Config.RESAMPLING`` selects it for a whole model).
"""

import numpy as np
import skimage.transform

from mrcnn import _faithful

RESIZE_MODES = ("none", "square", "pad64", "crop")
RESAMPLING_MODES = ("corrected", "faithful")


def check_resampling(resampling):
    """``resampling`` if it is one of RESAMPLING_MODES, else ValueError."""
    if resampling not in RESAMPLING_MODES:
        raise ValueError(f"resampling must be one of {RESAMPLING_MODES}, got {resampling!r}")
    return resampling


def config_resampling(config):
    """A config's RESAMPLING ("corrected" when it has none, e.g. a duck-typed config)."""
    return check_resampling(getattr(config, "RESAMPLING", "corrected"))


# ---------------------------------------------------------------------------- boxes
def extract_bboxes(mask):
    """Tight pixel boxes of instance masks.

    Args:
        mask: bool (or 0/1) [H, W, N] instance masks.
    Returns:
        int32 [N, 4] pixel boxes (y1, x1, y2, x2), y2/x2 exclusive. An all-zero mask
        gives the box (0, 0, 0, 0).
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"extract_bboxes: mask must be [H, W, N], got shape {mask.shape}")
    mask = mask.astype(bool)
    height, width, _ = mask.shape
    rows = mask.any(axis=1)  # [H, N]: instance present in row y
    cols = mask.any(axis=0)  # [W, N]
    present = rows.any(axis=0)
    # First True from the top/left via argmax, last True via argmax on the flipped axis.
    y1 = rows.argmax(axis=0)
    y2 = height - rows[::-1].argmax(axis=0)
    x1 = cols.argmax(axis=0)
    x2 = width - cols[::-1].argmax(axis=0)
    boxes = np.stack([y1, x1, y2, x2], axis=1)
    boxes[~present] = 0
    return boxes.astype(np.int32)


# -------------------------------------------------------------------- resampling
def _sample_positions(start, length, out_size):
    """Pixel-centre aligned sample coordinates of ``out_size`` outputs over an extent.

    start, length: scalars or [N] arrays (pixels). Returns float64 [..., out_size]
    coordinates clamped to the first/last input pixel (edge extension).
    """
    start = np.asarray(start, dtype=np.float64)[..., None]
    length = np.asarray(length, dtype=np.float64)[..., None]
    step = length / out_size
    pos = start + (np.arange(out_size, dtype=np.float64) + 0.5) * step - 0.5
    return np.clip(pos, start, start + length - 1)


def _bilinear_gather(src, ys, xs, channel):
    """Bilinear samples of ``src`` at the grid ys x xs of each instance.

    src: [H, W, N] float. ys: [K, oh], xs: [K, ow] coordinates inside the image;
    channel: [K] instance index into the last axis of ``src``.
    Returns float64 [K, oh, ow].
    """
    height, width = src.shape[:2]
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    wy = (ys - y0)[:, :, None]
    wx = (xs - x0)[:, None, :]
    y1 = np.minimum(y0 + 1, height - 1)
    x1 = np.minimum(x0 + 1, width - 1)
    c = np.asarray(channel)[:, None, None]

    def at(yy, xx):
        return src[yy[:, :, None], xx[:, None, :], c].astype(np.float64)

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def _resize_bilinear_2d(array, out_height, out_width):
    """Resize one float [h, w] array to [out_height, out_width] (bilinear, edge clamped)."""
    ys = _sample_positions(0, array.shape[0], out_height)[None]
    xs = _sample_positions(0, array.shape[1], out_width)[None]
    return _bilinear_gather(array[:, :, None], ys, xs, [0])[0]


def _scaled_size(size, scale):
    # Python's round(), as Matterport uses, so image and mask sizes always agree.
    return int(round(size * scale))


def _cast_like(resized, dtype):
    """Cast a float resampling result back to ``dtype``; integers are rounded and clipped."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(resized), info.min, info.max).astype(dtype)
    if dtype == np.bool_:
        return resized >= 0.5
    return resized.astype(dtype)


# ------------------------------------------------------------------ resize_image
def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square", rng=None,
                 resampling="corrected"):
    """Resize and pad (or crop) an image for the network, keeping its aspect ratio.

    Modes (Matterport's):
      * ``"none"``: unchanged.
      * ``"square"``: scale = max(1, min_dim / short side) (up-scaling only), raised
        to ``min_scale``, then lowered so the long side is at most ``max_dim``;
        zero-pad (centred) to ``max_dim x max_dim``.
      * ``"pad64"``: scale as above without the ``max_dim`` cap; zero-pad each side
        (centred) up to a multiple of 64. ``min_dim`` must be a multiple of 64.
      * ``"crop"``: scale as above; take a random ``min_dim x min_dim`` crop.

    Args:
        image: [H, W] or [H, W, C] array (uint8 RGB usually).
        min_dim, max_dim: pixels; ``max_dim`` is required by "square", ``min_dim`` by
            "crop".
        min_scale: lower bound on the scale (e.g. 2 doubles every image).
        mode: one of ``RESIZE_MODES``.
        rng: numpy Generator (or RandomState) for the "crop" offset; None uses the
            global ``np.random`` state.
        resampling: "corrected" (bilinear, edges extended, integers rounded) or
            "faithful" (the original's: zeros blended in at the border, integers
            truncated after padding; see :mod:`mrcnn._faithful`). Same geometry,
            window, scale and padding in both.
    Returns:
        image: the resized image, same dtype (value range kept).
        window: (y1, x1, y2, x2) pixel box, y2/x2 exclusive, of the resized image
            content inside the returned (padded) image.
        scale: float factor applied to the original image.
        padding: [(top, bottom), (left, right), (0, 0)...] one pair per image axis.
        crop: (y, x, height, width) of the crop in the scaled image, or None.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"resize_image: image must be [H, W] or [H, W, C], got {image.shape}")
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_image: mode must be one of {RESIZE_MODES}, got {mode!r}")
    check_resampling(resampling)
    dtype = image.dtype
    height, width = image.shape[:2]
    window = (0, 0, height, width)
    padding = [(0, 0)] * image.ndim
    if mode == "none":
        return image, window, 1.0, padding, None
    if mode == "square" and not max_dim:
        raise ValueError("resize_image: mode 'square' needs max_dim")
    if mode == "crop" and not min_dim:
        raise ValueError("resize_image: mode 'crop' needs min_dim")
    if mode == "pad64" and min_dim and min_dim % 64:
        raise ValueError(f"resize_image: mode 'pad64' needs min_dim divisible by 64, "
                         f"got {min_dim}")
    if height < 1 or width < 1:
        raise ValueError(f"resize_image: empty image of shape {image.shape}")

    scale = 1.0
    if min_dim:
        scale = max(1.0, min_dim / min(height, width))
    if min_scale and scale < min_scale:
        scale = float(min_scale)
    if mode == "square":
        long_side = max(height, width)
        if _scaled_size(long_side, scale) > max_dim:
            scale = max_dim / long_side

    faithful = resampling == "faithful"
    if scale != 1 and faithful:
        # Float until after padding, then truncated, as the original cast once at the end.
        image = _faithful.resize_pixels(image, _scaled_size(height, scale),
                                        _scaled_size(width, scale))
    elif scale != 1:
        out_shape = (_scaled_size(height, scale), _scaled_size(width, scale)) + image.shape[2:]
        # skimage refuses to interpolate bool data; resample it as 0/1 floats.
        source = image.astype(np.float32) if dtype == np.bool_ else image
        resized = skimage.transform.resize(
            source, out_shape, order=1, mode="edge", preserve_range=True,
            anti_aliasing=False, clip=True)
        image = _cast_like(resized, dtype)
    height, width = image.shape[:2]

    crop = None
    if mode == "square":
        top = (max_dim - height) // 2
        left = (max_dim - width) // 2
        padding = [(top, max_dim - height - top), (left, max_dim - width - left)]
    elif mode == "pad64":
        pad_h = -height % 64
        pad_w = -width % 64
        top, left = pad_h // 2, pad_w // 2
        padding = [(top, pad_h - top), (left, pad_w - left)]
    else:  # crop
        if height < min_dim or width < min_dim:
            raise ValueError(f"resize_image: scaled image {height}x{width} is smaller than "
                             f"the {min_dim}x{min_dim} crop")
        # np.random (seedable with np.random.seed), a Generator or a RandomState.
        random_source = np.random if rng is None else rng
        draw = getattr(random_source, "integers", None) or random_source.randint
        y = int(draw(0, height - min_dim + 1))
        x = int(draw(0, width - min_dim + 1))
        crop = (y, x, int(min_dim), int(min_dim))
        image = _faithful.cast_truncating(image[y:y + min_dim, x:x + min_dim], dtype)
        return image, (0, 0, int(min_dim), int(min_dim)), float(scale), \
            [(0, 0)] * image.ndim, crop

    padding = [(int(a), int(b)) for a, b in padding] + [(0, 0)] * (image.ndim - 2)
    image = np.pad(image, padding, mode="constant", constant_values=0)
    if faithful:
        image = _faithful.cast_truncating(image, dtype)
    top, left = padding[0][0], padding[1][0]
    window = (top, left, top + height, left + width)
    return image, window, float(scale), padding, crop


def resize_mask(mask, scale, padding, crop=None, resampling="corrected"):
    """Apply :func:`resize_image`'s scale, padding and crop to instance masks.

    Nearest-neighbour with the same pixel-centre geometry and output size
    (``round(side * scale)``) as the image, so masks stay bool and aligned. With
    ``resampling="faithful"``: the original's ``scipy.ndimage.zoom(order=0)``, whose
    grid is corner-aligned (up to half a pixel off the image content), so a
    one-pixel instance can vanish where the corrected rule keeps it, and vice versa.

    Args:
        mask: bool [H, W, N] (or [H, W]) masks of the original image.
        scale, padding, crop: as returned by :func:`resize_image`.
        resampling: "corrected" or "faithful".
    Returns:
        bool masks of the resized image's shape (N kept).
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"resize_mask: mask must be [H, W, N], got shape {mask.shape}")
    height, width = mask.shape[:2]
    if scale != 1 and check_resampling(resampling) == "faithful":
        mask = _faithful.zoom_masks(mask.astype(bool), scale)
    elif scale != 1:
        out_h, out_w = _scaled_size(height, scale), _scaled_size(width, scale)
        # Nearest input pixel of each output pixel centre: floor((i + 0.5) * n / m).
        rows = np.minimum(((np.arange(out_h) + 0.5) * height / out_h).astype(np.int64),
                          height - 1)
        cols = np.minimum(((np.arange(out_w) + 0.5) * width / out_w).astype(np.int64),
                          width - 1)
        mask = mask[rows][:, cols]
    if crop is not None:
        y, x, h, w = crop
        mask = mask[y:y + h, x:x + w]
    else:
        pads = [tuple(p) for p in padding][:2] + [(0, 0)] * (mask.ndim - 2)
        mask = np.pad(mask, pads, mode="constant", constant_values=0)
    return mask.astype(bool)


# -------------------------------------------------------------------- mini masks
def _check_boxes(name, bbox, count):
    bbox = np.asarray(bbox)
    if bbox.ndim != 2 or bbox.shape[1] < 4 or bbox.shape[0] != count:
        raise ValueError(f"{name}: bbox must be [N, 4] with N = {count} masks, "
                         f"got shape {bbox.shape}")
    return np.rint(bbox[:, :4]).astype(np.int64)


def minimize_mask(bbox, mask, mini_shape, resampling="corrected"):
    """Crop each instance mask to its box and resize it to ``mini_shape`` (saves memory).

    Bilinear, pixel-centre aligned, threshold 0.5; vectorised over instances. With
    ``resampling="faithful"``: the original's scikit-image call (zeros beyond the
    crop's border) and ``np.around`` (a value of exactly 0.5 is False).

    Args:
        bbox: [N, 4] pixel boxes (y1, x1, y2, x2), y2/x2 exclusive, of the full image;
            parts outside the image are ignored.
        mask: bool [H, W, N] full-size masks.
        mini_shape: (mh, mw).
        resampling: "corrected" or "faithful".
    Returns:
        bool [mh, mw, N] mini masks.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"minimize_mask: mask must be [H, W, N], got shape {mask.shape}")
    height, width, count = mask.shape
    boxes = _check_boxes("minimize_mask", bbox, count)
    mh, mw = int(mini_shape[0]), int(mini_shape[1])
    if count == 0:
        return np.zeros((mh, mw, 0), bool)
    y1 = np.clip(boxes[:, 0], 0, height)
    x1 = np.clip(boxes[:, 1], 0, width)
    y2 = np.clip(boxes[:, 2], 0, height)
    x2 = np.clip(boxes[:, 3], 0, width)
    empty = np.where((y2 <= y1) | (x2 <= x1))[0]
    if empty.size:
        i = int(empty[0])
        raise ValueError(f"minimize_mask: instance {i} has box {boxes[i].tolist()} with zero "
                         f"area inside the {height}x{width} image")
    if check_resampling(resampling) == "faithful":
        return _faithful.minimize_masks(np.stack([y1, x1, y2, x2], axis=1), mask, (mh, mw))
    ys = _sample_positions(y1, y2 - y1, mh)
    xs = _sample_positions(x1, x2 - x1, mw)
    mini = _bilinear_gather(mask.astype(np.float32), ys, xs, np.arange(count))
    return np.transpose(mini >= 0.5, (1, 2, 0))


def _paste(small, box, height, width, threshold):
    """Resize float [h, w] ``small`` to the pixel box and paste it into a bool canvas.

    Parts of the box outside the [height, width] image are dropped; an empty box
    gives an all-False canvas.
    """
    y1, x1, y2, x2 = (int(v) for v in box)
    canvas = np.zeros((height, width), bool)
    if y2 <= y1 or x2 <= x1:
        return canvas
    top, bottom = max(y1, 0), min(y2, height)
    left, right = max(x1, 0), min(x2, width)
    if bottom <= top or right <= left:
        return canvas
    # Sample the whole box's grid but only at the rows/columns inside the image.
    ys = _sample_positions(0, small.shape[0], y2 - y1)[top - y1:bottom - y1]
    xs = _sample_positions(0, small.shape[1], x2 - x1)[left - x1:right - x1]
    values = _bilinear_gather(small[:, :, None], ys[None], xs[None], [0])[0]
    canvas[top:bottom, left:right] = values >= threshold
    return canvas


def expand_mask(bbox, mini_mask, image_shape, resampling="corrected"):
    """Inverse of :func:`minimize_mask`: resize mini masks into their boxes.

    Args:
        bbox: [N, 4] pixel boxes (y1, x1, y2, x2), y2/x2 exclusive.
        mini_mask: bool [mh, mw, N].
        image_shape: (H, W[, C]) of the full image.
        resampling: "corrected" or "faithful" (the original's call, ``np.around``).
    Returns:
        bool [H, W, N] full-size masks (bilinear, threshold 0.5).
    """
    mini_mask = np.asarray(mini_mask)
    if mini_mask.ndim != 3:
        raise ValueError(f"expand_mask: mini_mask must be [mh, mw, N], got {mini_mask.shape}")
    count = mini_mask.shape[-1]
    boxes = _check_boxes("expand_mask", bbox, count)
    height, width = int(image_shape[0]), int(image_shape[1])
    full = np.zeros((height, width, count), bool)
    faithful = check_resampling(resampling) == "faithful"
    small = mini_mask.astype(np.float32)
    # Boxes differ in size, so each instance is resampled on its own (vectorised inside).
    for i in range(count):
        if faithful:
            full[:, :, i] = _faithful.paste_mask(mini_mask[:, :, i].astype(np.float64),
                                                 boxes[i], height, width, "around")
        else:
            full[:, :, i] = _paste(small[:, :, i], boxes[i], height, width, 0.5)
    return full


def unmold_mask(mask, bbox, image_shape, resampling="corrected"):
    """Paste one mask-head output into the full image.

    Args:
        mask: float [mh, mw] mask probabilities (e.g. 28x28 sigmoid output).
        bbox: (y1, x1, y2, x2) pixel box, y2/x2 exclusive, in the image of
            ``image_shape``; parts outside the image are dropped.
        image_shape: (H, W[, C]).
        resampling: "corrected" (edges extended) or "faithful" (the original's
            call: zeros blended in beyond the 28x28 grid, so masks thin out at the
            box edges).
    Returns:
        bool [H, W] mask: the probabilities resized bilinearly to the box, >= 0.5.
    """
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 2:
        raise ValueError(f"unmold_mask: mask must be [mh, mw], got shape {mask.shape}")
    box = np.rint(np.asarray(bbox, dtype=np.float64).reshape(-1)[:4]).astype(np.int64)
    if check_resampling(resampling) == "faithful":
        return _faithful.paste_mask(mask, box, int(image_shape[0]), int(image_shape[1]),
                                    "threshold")
    return _paste(mask, box, int(image_shape[0]), int(image_shape[1]), 0.5)
