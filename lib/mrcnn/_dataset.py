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
import skimage.color
import skimage.io

logger = logging.getLogger(__name__)

# Attributes that exist only after prepare(); reading one earlier gets a clear error.
_PREPARED_ATTRIBUTES = frozenset({
    "num_classes", "class_ids", "class_names", "num_images", "_image_ids",
    "class_from_source_map", "image_from_source_map", "sources"})


class ImageLoadError(IOError):
    """An image file is missing or cannot be decoded."""

    def __init__(self, message, image_id=None, path=None):
        super().__init__(message)
        self.image_id = image_id
        self.path = path


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
        """Read the image of internal id ``image_id`` as RGB [H, W, 3].

        Grayscale is replicated to three channels and an alpha channel is dropped; the
        dtype is the file's (uint8 for ordinary PNG/JPEG).

        Raises:
            ImageLoadError: the file is missing or cannot be decoded (names the image
                id and path).
        """
        path = self._info(image_id)["path"]
        if not os.path.exists(path):
            raise ImageLoadError(f"image {image_id}: file not found: {path}",
                                 image_id=image_id, path=path)
        try:
            image = skimage.io.imread(path)
        except Exception as e:  # decoders raise OSError, ValueError, SyntaxError, ...
            raise ImageLoadError(f"image {image_id}: cannot decode {path}: {e}",
                                 image_id=image_id, path=path) from e
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 2:  # grayscale + alpha
            image = image[..., 0]
        if image.ndim == 2:
            image = skimage.color.gray2rgb(image)
        if image.ndim != 3 or image.shape[-1] not in (3, 4):
            raise ImageLoadError(f"image {image_id}: {path} decoded to unsupported shape "
                                 f"{image.shape}", image_id=image_id, path=path)
        return image[..., :3]

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
