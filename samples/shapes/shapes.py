"""Synthetic shapes: squares, circles and triangles on a plain background.

A dataset that needs no files: every image is described by a background colour and a
list of shapes and drawn on demand, so it is the quickest way to check that Mask
R-CNN trains end to end (the classic "train_shapes" demo)::

    config = ShapesConfig()
    train = ShapesDataset()
    train.load_shapes(500, config.IMAGE_SHAPE[0], config.IMAGE_SHAPE[1], seed=1)
    train.prepare()

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` shapes of an image.
A shape is ``(kind, colour, (cy, cx, size))``: centre pixel (row, column), ``size``
the half side of a square, the radius of a circle, the circumradius of an upright
equilateral triangle. Shapes are drawn in list order, so later shapes occlude
earlier ones, and the instance masks are the visible parts.

``load_shapes(..., class_colours=CLASS_COLOURS)`` is an easier variant for training
from random weights on a CPU: every shape of a kind has that kind's colour, on a grey
background. The classic random colours leave shape as the only cue, which a network
without pretrained weights takes far longer to learn (measured in
tests/mrcnn/test_learning.py).
"""

import numpy as np
import skimage.draw

from mrcnn import utils
from mrcnn.config import Config

SHAPE_KINDS = ("square", "circle", "triangle")

# Boxes of shapes in one image overlap with IoU below this (greedy, in drawing order).
_MAX_SHAPE_IOU = 0.3
# A shape's colour differs from the background by at least this (sum over RGB).
_MIN_CONTRAST = 90
# One colour per kind for the colour-coded variant (see the module docstring).
CLASS_COLOURS = {"square": (220, 50, 50), "circle": (40, 190, 60), "triangle": (50, 90, 230)}


class ShapesConfig(Config):
    """Small images and anchors for the shapes dataset (Matterport's demo settings)."""

    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 8
    NUM_CLASSES = 1 + len(SHAPE_KINDS)
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    # Shapes are 16-64 pixels across: anchors one level smaller than COCO's.
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    # Few objects per image, so few ROIs are needed to find them.
    TRAIN_ROIS_PER_IMAGE = 32
    STEPS_PER_EPOCH = 100
    VALIDATION_STEPS = 5


def shape_mask(kind, dims, height, width):
    """Pixels covered by one shape, bool [H, W] (clipped to the image).

    Args:
        kind: "square", "circle" or "triangle".
        dims: (cy, cx, size) in pixels; see the module docstring.
    """
    cy, cx, size = (int(v) for v in dims)
    mask = np.zeros((height, width), dtype=bool)
    if kind == "square":
        mask[max(cy - size, 0):cy + size + 1, max(cx - size, 0):cx + size + 1] = True
    elif kind == "circle":
        rows, cols = skimage.draw.disk((cy, cx), size + 0.5, shape=(height, width))
        mask[rows, cols] = True
    elif kind == "triangle":
        # Vertices on the circumcircle at 90, 210 and 330 degrees (apex up).
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        rows = cy + size * np.sin(angles)
        cols = cx + size * np.cos(angles)
        rr, cc = skimage.draw.polygon(rows, cols, shape=(height, width))
        mask[rr, cc] = True
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {SHAPE_KINDS}")
    return mask


def _box_of(dims):
    cy, cx, size = dims
    return [cy - size, cx - size, cy + size + 1, cx + size + 1]


class ShapesDataset(utils.Dataset):
    """Randomly generated shape images; class ids 1 square, 2 circle, 3 triangle."""

    def load_shapes(self, count, height, width, seed=None, class_colours=None):
        """Register ``count`` random images of ``height`` x ``width`` pixels.

        Each has a random background colour and 1-4 shapes of random kind, colour,
        position and size; shapes whose boxes overlap an earlier kept shape with IoU
        >= 0.3 are dropped. The same ``seed`` gives the same images.

        ``class_colours`` ({kind: (r, g, b)} for every kind, e.g. CLASS_COLOURS)
        colours each shape by its kind instead, on a grey background (level 90-169).
        """
        if int(count) < 0 or int(height) < 16 or int(width) < 16:
            raise ValueError(f"load_shapes: need count >= 0 and images of at least 16x16 "
                             f"pixels, got count={count}, {height}x{width}")
        if class_colours is not None:
            missing = [kind for kind in SHAPE_KINDS if kind not in class_colours]
            if missing:
                raise ValueError(f"load_shapes: class_colours has no colour for {missing}")
        for class_id, kind in enumerate(SHAPE_KINDS, start=1):
            self.add_class("shapes", class_id, kind)
        rng = np.random.default_rng(seed)
        for i in range(int(count)):
            background, shapes = self.random_image(rng, int(height), int(width))
            if class_colours is not None:
                grey = int(rng.integers(90, 170))
                background = (grey, grey, grey)
                shapes = [(kind, tuple(int(v) for v in class_colours[kind]), dims)
                          for kind, _, dims in shapes]
            self.add_image("shapes", image_id=i, path=None, width=int(width),
                           height=int(height), bg_color=background, shapes=shapes)

    @staticmethod
    def random_image(rng, height, width):
        """Draw one image description: (background RGB tuple, list of shapes)."""
        background = tuple(int(v) for v in rng.integers(0, 256, size=3))
        smallest = min(height, width)
        min_size, max_size = max(3, smallest // 8), max(4, smallest // 4)
        shapes = []
        for _ in range(int(rng.integers(1, 5))):
            kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
            for _ in range(20):  # bounded: any colour will do after that
                colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
                if sum(abs(a - b) for a, b in zip(colour, background)) >= _MIN_CONTRAST:
                    break
            size = int(rng.integers(min_size, max_size + 1))
            cy = int(rng.integers(size, height - size))
            cx = int(rng.integers(size, width - size))
            shapes.append((kind, colour, (cy, cx, size)))
        # Greedy suppression in drawing order keeps every shape mostly visible.
        kept = []
        for shape in shapes:
            if kept:
                iou = utils.compute_overlaps(np.array([_box_of(shape[2])], np.float64),
                                             np.array([_box_of(s[2]) for s in kept],
                                                      np.float64))
                if np.max(iou) >= _MAX_SHAPE_IOU:
                    continue
            kept.append(shape)
        return background, kept

    def load_image(self, image_id):
        """Draw the image, RGB uint8 [H, W, 3]."""
        info = self.image_info[image_id]
        height, width = info["height"], info["width"]
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = info["bg_color"]
        for kind, colour, dims in info["shapes"]:
            image[shape_mask(kind, dims, height, width)] = colour
        return image

    def load_mask(self, image_id):
        """Visible part of each shape: (bool [H, W, N], int32 class ids [N]).

        Later shapes occlude earlier ones; a shape hidden entirely is left out.
        """
        info = self.image_info[image_id]
        height, width = info["height"], info["width"]
        covered = np.zeros((height, width), dtype=bool)
        masks, class_ids = [], []
        for kind, _, dims in reversed(info["shapes"]):
            visible = shape_mask(kind, dims, height, width) & ~covered
            covered |= visible
            if visible.any():
                masks.append(visible)
                class_ids.append(self.class_names.index(kind))
        masks.reverse()
        class_ids.reverse()
        if not masks:
            return np.zeros((height, width, 0), dtype=bool), np.zeros(0, dtype=np.int32)
        return np.stack(masks, axis=-1), np.array(class_ids, dtype=np.int32)

    def image_reference(self, image_id):
        """The image's shapes, [(kind, colour, (cy, cx, size)), ...]."""
        info = self.image_info[image_id]
        if info["source"] == "shapes":
            return info["shapes"]
        return super().image_reference(image_id)
