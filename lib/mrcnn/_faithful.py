"""The original's resampling ("faithful" mode), as scikit-image and SciPy compute it.

The original Siamese Mask R-CNN (its Matterport copy, 2018) resampled with library
calls whose edge handling differs from ours (SPEC section 9); this module makes
the same calls, so a faithful-mode run sees the same pixels:

* images and reference crops: ``skimage.transform.resize(order=1, mode="constant",
  preserve_range=True)`` with no anti-aliasing, zero padding, then a cast back to
  the input dtype that *truncates* (254.97 -> 254). ``mode="constant"`` samples
  zeros beyond the border, so an up-scaled crop gets a dark rim;
* instance masks of a resized image: ``scipy.ndimage.zoom(order=0)`` (nearest,
  corner-aligned grid) before padding or cropping;
* mini masks (and their expansion): the box crop resized by the same scikit-image
  call (as float 0/1), then ``np.around`` (half to even: exactly 0.5 -> False);
* mask-head outputs: resized by that call into the box, then ``>= 0.5``; masks thin
  out at the box edges, where zeros beyond the 28x28 grid are blended in.

Anti-aliasing is passed as False: the scikit-image of 2018 had none. Since SciPy 1.6,
scikit-image maps ``mode="constant"`` to SciPy's ``grid-constant`` (zeros blended in
by the interpolation weights); that is the behaviour reproduced and tested here.

Shape shorthand: ``H, W`` image height and width in pixels, ``C`` channels, ``N``
instances, ``mh, mw`` mini-mask (or mask-head output) size. Boxes are pixel
``(y1, x1, y2, x2)``, y2/x2 exclusive.
"""

import numpy as np
import scipy.ndimage
import skimage.transform


def _resize_constant(array, out_shape, preserve_range):
    """The original's bilinear call: zeros beyond the border, no anti-aliasing.

    ``array`` float or integer; bool must be cast first (scikit-image no longer
    interpolates bool, which it used to read as 0.0/1.0 floats). Returns float64
    (float32 stays float32).
    """
    return skimage.transform.resize(array, out_shape, order=1, mode="constant",
                                    preserve_range=preserve_range, anti_aliasing=False)


def resize_pixels(image, out_height, out_width):
    """Resize an image [H, W] or [H, W, C] to the given size, the original's way.

    Returns float64 values in the input's range (not yet cast back: the caller pads
    first, as the original did, and then truncates with :func:`cast_truncating`).
    """
    source = image.astype(np.float64) if image.dtype == np.bool_ else image
    out_shape = (int(out_height), int(out_width)) + tuple(image.shape[2:])
    return _resize_constant(source, out_shape, preserve_range=True)


def cast_truncating(array, dtype):
    """``array.astype(dtype)``: floats to integers are truncated toward zero."""
    return np.asarray(array).astype(dtype)


def zoom_masks(mask, scale):
    """Nearest-neighbour zoom of masks [H, W] or [H, W, N] by ``scale`` (H and W only).

    Output size ``round(H * scale) x round(W * scale)`` (SciPy rounds each axis).
    """
    zoom = [scale, scale] + [1] * (mask.ndim - 2)
    return scipy.ndimage.zoom(mask, zoom=zoom, order=0)


def minimize_masks(boxes, mask, mini_shape):
    """Mini masks bool [mh, mw, N] of full masks bool [H, W, N] in pixel boxes int [N, 4].

    One scikit-image call per instance (the boxes differ in size; the call is what
    is being reproduced), then ``np.around``.
    """
    count = mask.shape[-1]
    mini = np.zeros(tuple(mini_shape) + (count,), dtype=bool)
    for i in range(count):
        y1, x1, y2, x2 = (int(v) for v in boxes[i])
        crop = mask[y1:y2, x1:x2, i].astype(np.float64)
        if crop.size == 0:
            raise ValueError(f"minimize_mask: instance {i} has box {[y1, x1, y2, x2]} "
                             f"with zero area")
        mini[:, :, i] = np.around(_resize_constant(crop, tuple(mini_shape), False)) > 0
    return mini


def paste_mask(small, box, height, width, rounding):
    """Resize float [mh, mw] ``small`` to the pixel box and paste it into a bool
    [height, width] canvas; parts of the box outside the canvas are dropped.

    rounding: "threshold" (``>= 0.5``, mask-head outputs) or "around" (``np.around``,
    expanded mini masks).
    """
    y1, x1, y2, x2 = (int(v) for v in box)
    canvas = np.zeros((height, width), dtype=bool)
    if y2 <= y1 or x2 <= x1:
        return canvas
    small = np.asarray(small)
    if not np.issubdtype(small.dtype, np.floating):
        small = small.astype(np.float64)  # bool mini masks, as 0.0 / 1.0
    # Float32 network outputs stay float32, as the original passed them.
    resized = _resize_constant(small, (y2 - y1, x2 - x1), False)
    values = resized >= 0.5 if rounding == "threshold" else np.around(resized) > 0
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y2, height), min(x2, width)
    if bottom > top and right > left:
        canvas[top:bottom, left:right] = values[top - y1:bottom - y1, left - x1:right - x1]
    return canvas
