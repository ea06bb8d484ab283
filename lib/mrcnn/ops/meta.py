"""Parse the image meta rows fed to the model (keras.ops).

Shape shorthand: ``B`` batch, ``K`` classes including background.

One float32 row per image, length 12 + K:
``[image_id, original_image_shape(3), image_shape(3), window(4), scale,
active_class_ids(K)]``. ``image_shape`` is the molded (resized and padded) shape;
``window`` is (y1, x1, y2, x2) of the real image inside it, in molded pixels.
The numpy twin is ``mrcnn.data.parse_image_meta``.
"""

from keras import ops

META_FIXED_SIZE = 12


def parse_image_meta(meta):
    """Split image meta rows into their fields.

    Args:
        meta: float [B, 12 + K] (or [12 + K] for one image; leading dims are kept).

    Returns:
        dict of float32 tensors: ``image_id`` [B], ``original_image_shape`` [B, 3],
        ``image_shape`` [B, 3], ``window`` [B, 4] (molded pixels), ``scale`` [B],
        ``active_class_ids`` [B, K].
    """
    meta = ops.cast(meta, "float32")
    size = meta.shape[-1]
    if size is not None and size < META_FIXED_SIZE + 1:
        raise ValueError(
            f"parse_image_meta: meta rows need 12 + NUM_CLASSES (>= 13) values, got {size}")
    return {
        "image_id": meta[..., 0],
        "original_image_shape": meta[..., 1:4],
        "image_shape": meta[..., 4:7],
        "window": meta[..., 7:11],
        "scale": meta[..., 11],
        "active_class_ids": meta[..., 12:],
    }
