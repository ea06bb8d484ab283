"""The ``Dataset`` base class (Matterport's API); re-exported by :mod:`mrcnn.utils`.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances.

A dataset registers classes and images from one or more *sources* (e.g. "coco"),
then :meth:`Dataset.prepare` numbers them internally: internal class ids are
0..num_classes-1 with 0 the background "BG", internal image ids are
0..num_images-1. Subclasses override :meth:`Dataset.load_mask` (and usually
:meth:`Dataset.load_image` and :meth:`Dataset.image_reference`)::

    class ShapesDataset(Dataset):
        def load_mask(self, image_id):
            ...
            return masks, class_ids  # bool [H, W, N], int32 [N]
"""

import logging
import os

import numpy as np
import skimage.io
from PIL import Image

logger = logging.getLogger(__name__)

# Attributes that exist only after prepare(); reading one earlier gets a clear error.
_PREPARED_ATTRIBUTES = frozenset({
    "num_classes", "class_ids", "class_names", "num_images", "_image_ids",
    "class_from_source_map", "image_from_source_map", "sources"})


class ImageLoadError(IOError):
    """An image file is missing, cannot be decoded, or has a mode or value range
    without a defined 8-bit conversion.

    ``kind`` is "missing", "undecodable" or "refused"; ``reason`` the cause alone,
    without image id and path (for callers that name the file their own way).
    """

    def __init__(self, message, image_id=None, path=None, kind=None, reason=None):
        super().__init__(message)
        self.image_id = image_id
        self.path = path
        self.kind = kind
        self.reason = reason if reason is not None else message


# ====================================================================== image files
def read_image_file(path, image_id=None):
    """Read an image file as RGB uint8 [H, W, 3], whatever its mode: the one image
    loader of the project (``Dataset.load_image``, hence training and evaluation,
    and the ``siamese-mrcnn`` commands all read files through it).

    Conversion rules (Pillow decodes; TIFF files Pillow cannot open, such as
    multi-channel float ones, are read by scikit-image/tifffile):

    - 8-bit RGB and grayscale as stored; grayscale is replicated to 3 channels;
    - alpha (RGBA, LA, palette transparency) is dropped, not composited;
    - palette (P), CMYK, YCbCr, LAB and 1-bit images are converted to RGB by Pillow
      (a CMYK file is not read as RGB plus a fourth channel);
    - 16-bit images (grayscale or colour) keep their high byte, ``v >> 8``
      (0..65535 -> 0..255), as Pillow itself reads 16-bit colour PNGs;
    - floating-point images: values in [0, 1] are scaled by 255, values in
      [0, 255] are taken as 8-bit levels; both rounded. NaN, infinite or negative
      values, or values above 255, are refused;
    - 32-bit integer images (other than Pillow's reading of a 16-bit PNG) have no
      defined range and are refused.

    Raises:
        ImageLoadError naming ``image_id`` (when given) and the path: missing file,
        undecodable file, or a mode or value range it refuses.
    """
    where = f"image {image_id}: " if image_id is not None else ""
    path = os.fspath(path)

    def undecodable(e):
        return ImageLoadError(f"{where}cannot decode {path}: {_first_line(e)}",
                              image_id=image_id, path=path, kind="undecodable",
                              reason=_first_line(e))

    def refused(e):
        return ImageLoadError(f"{where}{path}: {e}", image_id=image_id, path=path,
                              kind="refused", reason=str(e))

    if not os.path.exists(path):
        raise ImageLoadError(f"{where}file not found: {path}", image_id=image_id,
                             path=path, kind="missing", reason="file not found")
    try:
        array = _decode_with_pillow(path)
    except _NotForPillow:
        try:
            array = np.asarray(skimage.io.imread(path))
        except Exception as e:  # decoders raise OSError, ValueError, SyntaxError, ...
            raise undecodable(e) from e
    except _Refused as e:
        raise refused(e) from None
    except Exception as e:  # truncated or corrupt data: OSError, SyntaxError, ...
        raise undecodable(e) from e
    try:
        return _to_rgb_uint8(array)
    except _Refused as e:
        raise refused(e) from None


class _NotForPillow(Exception):
    """Pillow does not recognise the file; another decoder may."""


class _Refused(ValueError):
    """The file decodes, but to a mode or range with no defined 8-bit conversion."""


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# The first bytes of a TIFF file (little- and big-endian).
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
# Pillow modes holding 16 bits per sample (one channel).
_PILLOW_16_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _decode_with_pillow(path):
    """The pixels as an array: uint8 RGB for Pillow's 8-bit modes, uint16 / float32
    [H, W] for 16-bit and float modes (converted by :func:`_to_rgb_uint8`)."""
    try:
        image = Image.open(path)
    except Image.UnidentifiedImageError:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic in _TIFF_MAGIC:  # e.g. multi-channel float: tifffile reads those
            raise _NotForPillow() from None
        raise
    with image:
        image.load()  # decode now: a truncated file fails here
        mode = image.mode
        if mode in _PILLOW_16_BIT:
            return np.asarray(image).astype(np.uint16)
        if mode == "I":
            # Pillow reads some 16-bit grayscale PNGs as 32-bit "I"; PNG has no 32-bit
            # samples, so there the values are 16-bit. Elsewhere the range is unknown.
            if image.format != "PNG":
                raise _Refused(f"32-bit integer {image.format} image: its value range is "
                               f"undefined; save it with 8 or 16 bits")
            return np.asarray(image).astype(np.uint16)
        if mode == "F":
            return np.asarray(image, dtype=np.float32)
        if mode == "PA" or mode == "P" and "transparency" in image.info:
            return np.asarray(image.convert("RGBA"))[..., :3]
        try:
            return np.asarray(image.convert("RGB"))
        except ValueError as e:
            raise _Refused(f"unsupported image mode {mode!r}: {e}") from None


def _to_rgb_uint8(array):
    """Apply the rules of :func:`read_image_file` to a decoded array."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (1, 2):  # grayscale (+ alpha)
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] == 4:  # RGBA from the fallback decoder
        array = array[..., :3]
    if not (array.ndim == 2 or array.ndim == 3 and array.shape[-1] == 3) \
            or min(array.shape[:2]) < 1:
        raise _Refused(f"decoded to unsupported shape {array.shape}")
    if array.dtype == np.uint8:
        pass
    elif array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise _Refused("floating-point image with NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise _Refused(f"floating-point image with values in [{low:g}, {high:g}]; "
                           f"expected [0, 1] or [0, 255]")
        scale = 255.0 if high <= 1.0 else 1.0
        array = np.round(array.astype(np.float64) * scale).astype(np.uint8)
    else:
        raise _Refused(f"{array.dtype} pixels have no defined 8-bit conversion; save the "
                       f"image with 8 or 16 bits")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    return np.ascontiguousarray(array)


class Dataset:
    """Base class for datasets: class and image registries plus image/mask loading.

    Before :meth:`prepare`: ``class_info`` (list of dicts source/id/name, entry 0 is
    background) and ``image_info`` (list of dicts id/source/path plus any extra
    keyword given to :meth:`add_image`). After :meth:`prepare`: ``num_classes``,
    ``class_ids``, ``class_names``, ``num_images``, ``image_ids``, ``sources``,
    ``source_class_ids``, ``class_from_source_map``, ``image_from_source_map``.
    """

    def __init__(self, class_map=None):
        # class_map is accepted for Matterport compatibility and is unused there too.
        self._image_ids = []
        self.image_info = []
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for prepared attributes read
        # before prepare().
        if name in _PREPARED_ATTRIBUTES:
            raise AttributeError(f"{type(self).__name__}.{name} is set by prepare(); "
                                 f"call prepare() after adding classes and images")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ registration
    def add_class(self, source, class_id, class_name):
        """Register class ``class_id`` of ``source`` (no dots in source); repeats are ignored."""
        if "." in source:
            raise ValueError(f"add_class: source name {source!r} may not contain a dot "
                             f"(it separates source and id in 'source.id' keys)")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        """Register an image: its id within ``source``, its file path and any extra fields."""
        info = {"id": image_id, "source": source, "path": path}
        info.update(kwargs)
        self.image_info.append(info)

    def image_reference(self, image_id):
        """A string locating the image (URL, file); subclasses override. Base: ""."""
        return ""

    def prepare(self, class_map=None):
        """Number classes and images internally and build the lookup tables.

        Class names are cleaned to their first comma-separated part. Call again after
        adding more classes or images.
        """
        def clean_name(name):
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)

        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": int(i)
            for info, i in zip(self.class_info, self.class_ids)}
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": int(i)
            for info, i in zip(self.image_info, self._image_ids)}

        # Sorted for a deterministic order; background (0) belongs to every source.
        self.sources = sorted({info["source"] for info in self.class_info})
        self.source_class_ids = {
            source: [i for i, info in enumerate(self.class_info)
                     if i == 0 or info["source"] == source]
            for source in self.sources}

    # ------------------------------------------------------------------ id mapping
    def map_source_class_id(self, source_class_id):
        """Internal class id of a ``"source.id"`` key, e.g. ``"coco.12"`` -> 11."""
        try:
            return self.class_from_source_map[source_class_id]
        except KeyError:
            example = next(iter(self.class_from_source_map))
            raise KeyError(f"map_source_class_id: unknown class {source_class_id!r}; keys "
                           f"look like 'source.id' (e.g. {example!r})") from None

    def get_source_class_id(self, class_id, source):
        """The id that internal class ``class_id`` has in ``source``."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"get_source_class_id: class {class_id} ({info['name']!r}) "
                             f"belongs to source {info['source']!r}, not {source!r}")
        return info["id"]

    @property
    def image_ids(self):
        """Internal image ids, int [num_images] (after prepare())."""
        return self._image_ids

    def source_image_link(self, image_id):
        """Path or URL of the image file."""
        return self._info(image_id)["path"]

    # ------------------------------------------------------------------ loading
    def _info(self, image_id):
        try:
            return self.image_info[image_id]
        except (IndexError, TypeError):
            raise IndexError(f"{type(self).__name__}: image id {image_id!r} out of range "
                             f"(dataset has {len(self.image_info)} images)") from None

    def load_image(self, image_id):
        """Read the image of internal id ``image_id`` as RGB uint8 [H, W, 3].

        Any file mode is converted by :func:`read_image_file`: grayscale is
        replicated to three channels, alpha is dropped, palette and CMYK become RGB,
        16-bit images keep their high byte, float images in [0, 1] are scaled by 255.

        Raises:
            ImageLoadError: the file is missing, cannot be decoded or has a mode or
                value range without a defined 8-bit conversion (names the image id
                and path).
        """
        return read_image_file(self._info(image_id)["path"], image_id=image_id)

    def load_mask(self, image_id):
        """Instance masks of an image: (bool [H, W, N], int32 class_ids [N]).

        Override this in a subclass. The base version logs a warning and returns an
        empty mask [0, 0, 0] and no class ids.
        """
        logger.warning("%s.load_mask() is the base version and returns no instances; "
                       "override load_mask() for your dataset", type(self).__name__)
        return np.empty([0, 0, 0], dtype=bool), np.empty([0], dtype=np.int32)

    # ------------------------------------------------------------------ extras
    def __len__(self):
        return len(self.image_info)

    def __repr__(self):
        sources = sorted({info["source"] for info in self.class_info[1:]})
        state = "prepared" if "num_classes" in self.__dict__ else "not prepared"
        return (f"<{type(self).__name__}: {len(self.image_info)} images, "
                f"{len(self.class_info)} classes incl. BG, sources {sources}, {state}>")
