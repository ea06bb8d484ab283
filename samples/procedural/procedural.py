"""Procedural one-shot benchmark: hundreds of shape categories, no downloads, CPU-sized.

Every category is a shape template (:mod:`samples.procedural.templates`); an image
shows 2-3 categories with 1-3 instances each, in random colours, sizes and positions,
over a flat, gradient or noisy background with small unannotated clutter. Shape is
the only cue that tells categories apart, so a Siamese Mask R-CNN trained on the
*seen* categories can be tested one-shot on *unseen* ones::

    seen, unseen = procedural_split(200)                 # every 4th category unseen
    train = ProceduralOneShotDataset()
    train.load_procedural(2000, seed=1, categories=seen)
    train.prepare()
    test = ProceduralOneShotDataset()
    test.load_procedural(500, seed=2)                    # all categories
    test.prepare()
    export_coco(test, "/tmp/procedural_test")            # COCO files for the COCO path

or from the shell: ``python -m samples.procedural.procedural --out DIR --images N``.

Determinism: the categories depend only on ``(num_categories, template_seed,
max_iou)``, so datasets built with different image ``seed`` share them (train, val
and test must use the same ``template_seed``). Image ``i`` depends only on ``(seed,
i)`` and the layout arguments. Layouts (a few numbers per instance) are drawn when
the images are registered; pixels are drawn on demand by ``load_image`` and
``load_mask``, so nothing is stored on disk.

Design choices, for learnability at 128x128 pixels:

- Instance size (the template's longer side) is log-uniform in 16-40 pixels by
  default, rotation is uniform in +-10 degrees: enough jitter that matching is not
  pixel copying, small enough that orientation stays part of a category's shape
  (templates are deduplicated under +-20 degrees of relative rotation).
- Colours are random per instance (at least 120 apart from the background in L1
  over RGB), so colour never identifies a category.
- Instances are placed with box IoU <= 0.2 among themselves when possible (20 tries);
  later instances occlude earlier ones, and an instance with less than 40% of its
  pixels visible is removed from the image altogether (never drawn, never
  annotated). Masks are the visible parts.
- Clutter (small blobs at most 8 pixels across, thin lines) is drawn first, under
  the instances, and is not annotated; it is smaller than any instance.

Speed (measured on a shared, busy 2-core machine; 128x128, default arguments): the
200 templates take 1-4 s (once per process, cached); registering 1000 images takes
1-3 s (layouts, including the occlusion check); ``load_image`` takes about 1.8 ms and
``load_mask`` about 1.3 ms per image.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances.
Coordinates are pixels ``(row, col)``, pixel centres at integers.
"""

import argparse
import sys

import numpy as np
import skimage.draw

from mrcnn import utils
from samples.procedural.templates import make_templates

SOURCE = "procedural"
# An instance's colour differs from every background colour by at least this (L1, RGB).
_MIN_CONTRAST = 120
_PLACEMENT_TRIES = 20
_MAX_PLACEMENT_IOU = 0.2


def procedural_split(num_categories, unseen_every=4, offset=1):
    """Seen/unseen class ids, COCO style: every ``unseen_every``-th category is unseen.

    Class ids are 1..num_categories. Unseen are ``{unseen_every * k + offset}``, so
    with the defaults ids 1, 5, 9, ... are unseen (like COCO split 1) and offsets
    1..unseen_every give the analogues of COCO splits 1..4.

    Returns:
        (seen, unseen): sorted lists of int class ids, disjoint, together 1..num_categories.
    """
    num_categories, unseen_every, offset = int(num_categories), int(unseen_every), int(offset)
    if num_categories < 1:
        raise ValueError(f"procedural_split: num_categories must be >= 1, got {num_categories}")
    if unseen_every < 2 or not 1 <= offset <= unseen_every:
        raise ValueError(f"procedural_split: need unseen_every >= 2 and 1 <= offset <= "
                         f"unseen_every, got unseen_every={unseen_every}, offset={offset}")
    ids = np.arange(1, num_categories + 1)
    unseen = (ids - offset) % unseen_every == 0
    return ids[~unseen].tolist(), ids[unseen].tolist()


def _check_range(name, value, low=0):
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"load_procedural: {name} must be a (min, max) pair of ints, "
                         f"got {value!r}") from None
    if not low <= lo <= hi:
        raise ValueError(f"load_procedural: {name} must satisfy {low} <= min <= max, "
                         f"got {value!r}")
    return lo, hi


def _box_iou(box, boxes):
    """IoU of one (y1, x1, y2, x2) box with an array [M, 4] of boxes."""
    if len(boxes) == 0:
        return np.zeros(0)
    boxes = np.asarray(boxes, np.float64)
    inter_h = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    inter_w = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = inter_h * inter_w
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def _random_colour(rng, avoid):
    """An RGB colour at least _MIN_CONTRAST (L1) from every colour in ``avoid`` if possible."""
    avoid = np.asarray(avoid, np.int64)
    best, best_distance = None, -1
    for _ in range(30):
        colour = rng.integers(0, 256, size=3)
        distance = int(np.abs(avoid - colour).sum(axis=1).min())
        if distance >= _MIN_CONTRAST:
            return colour.tolist()
        if distance > best_distance:
            best, best_distance = colour, distance
    return best.tolist()


def _draw_background(spec, height, width):
    """Background pixels, uint8 [H, W, 3], from a layout's background spec."""
    first, second = (np.asarray(c, np.float32) for c in spec["colours"])
    if spec["kind"] == "gradient":
        # Linear ramp from ``first`` to ``second`` along the direction ``angle``.
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        along = rows * np.sin(spec["angle"]) + cols * np.cos(spec["angle"])
        t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
        image = first + t[..., None] * (second - first)
    else:
        image = np.broadcast_to(first, (height, width, 3)).astype(np.float32)
    if spec["kind"] == "noise":
        noise = np.random.default_rng(spec["noise_seed"]).normal(
            0.0, spec["noise"], size=(height, width, 1)).astype(np.float32)
        image = image + noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _draw_clutter(image, clutter):
    """Paint unannotated clutter polygons into ``image`` [H, W, 3] in place."""
    for item in clutter:
        verts = np.asarray(item["polygon"], np.float64)
        rr, cc = skimage.draw.polygon(verts[:, 0], verts[:, 1], shape=image.shape[:2])
        image[rr, cc] = item["colour"]


def _clutter_item(rng, height, width):
    centre = rng.uniform([0, 0], [height - 1, width - 1])
    if rng.random() < 0.5:
        # Small blob: a random polygon at most 8 pixels across.
        count = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=count))
        radius = rng.uniform(1.5, 4.0, size=count)
        polygon = centre + np.stack([radius * np.sin(angles), radius * np.cos(angles)], 1)
    else:
        # Thin line, 1-2 pixels wide and 8-30 long, as a rotated rectangle.
        half_length, half_width = rng.uniform(4, 15), rng.uniform(0.5, 1.0)
        angle = rng.uniform(0, np.pi)
        along = np.array([np.sin(angle), np.cos(angle)])
        across = np.array([np.cos(angle), -np.sin(angle)])
        polygon = centre + np.array([s * half_length * along + t * half_width * across
                                     for s, t in ((-1, -1), (-1, 1), (1, 1), (1, -1))])
    return {"polygon": polygon.round(3).tolist(),
            "colour": rng.integers(0, 256, size=3).tolist()}


def instance_owner_map(instances, templates, height, width):
    """Which instance each pixel shows: int32 [H, W], 0 background, k + 1 instance k.

    Instances are painted in list order, so later ones occlude earlier ones; a
    template's holes leave what was underneath. ``templates[class_id - 1]`` draws
    an instance of ``class_id``. Also returns each instance's full (unoccluded)
    pixel count, int64 [N].
    """
    owner = np.zeros((height, width), np.int32)
    full_area = np.zeros(len(instances), np.int64)
    for k, inst in enumerate(instances):
        mask = templates[inst["class_id"] - 1].rasterize(
            inst["center"], inst["scale"], inst["rotation"], (height, width))
        owner[mask] = k + 1
        full_area[k] = mask.sum()
    return owner, full_area


class ProceduralOneShotDataset(utils.Dataset):
    """The procedural one-shot benchmark as a Matterport ``Dataset`` (source "procedural").

    Class ids 1..num_categories are the templates in order (all registered even when
    only a subset is placed, so ids agree between train and test datasets); names
    are the template names. After :meth:`load_procedural`, ``self.templates`` holds
    the templates.
    """

    def __init__(self, class_map=None):
        super().__init__(class_map)
        self.templates = None
        self._template_key = None
        self.category_image_index = {}
        self.image_category_index = []

    def load_procedural(self, num_images, image_size=128, num_categories=200,
                        categories=None, seed=0, instances=(2, 6),
                        categories_per_image=(2, 3), clutter=(0, 4), scale=(16, 40),
                        rotation=10.0, template_seed=0, max_iou=0.75, min_visible=0.4):
        """Register ``num_images`` procedural images (square, ``image_size`` pixels).

        Args:
            num_images: images to add (>= 0).
            image_size: side in pixels (>= 48).
            num_categories: templates, i.e. classes 1..num_categories.
            categories: class ids that may be placed (e.g. the seen ids of
                :func:`procedural_split`); None places all.
            seed: image seed; image i depends only on (seed, i) and these arguments.
            instances: (min, max) instances per image before occlusion removal.
            categories_per_image: (min, max) categories per image; each gets 1-3
                instances, within ``instances``.
            clutter: (min, max) unannotated clutter items per image.
            scale: (min, max) instance size in pixels (the template's longer side),
                log-uniform.
            rotation: instances turn uniformly within +-rotation degrees.
            template_seed, max_iou: passed to :func:`make_templates`.
            min_visible: instances with a smaller visible fraction are removed.
        """
        num_images, image_size = int(num_images), int(image_size)
        if num_images < 0:
            raise ValueError(f"load_procedural: num_images must be >= 0, got {num_images}")
        if image_size < 48:
            raise ValueError(f"load_procedural: image_size must be >= 48, got {image_size}")
        instances = _check_range("instances", instances, low=1)
        per_image = _check_range("categories_per_image", categories_per_image, low=1)
        clutter = _check_range("clutter", clutter)
        scale = tuple(float(s) for s in scale)
        if not 4.0 <= scale[0] <= scale[1] <= image_size - 1:
            raise ValueError(f"load_procedural: scale must satisfy 4 <= min <= max <= "
                             f"image_size - 1 ({image_size - 1}), got {scale}")
        key = (int(num_categories), int(template_seed), float(max_iou))
        if self._template_key not in (None, key):
            raise ValueError(f"load_procedural: this dataset already holds templates "
                             f"{self._template_key} (num_categories, template_seed, "
                             f"max_iou); got {key}")
        self.templates = make_templates(*key)
        self._template_key = key
        for class_id, template in enumerate(self.templates, start=1):
            self.add_class(SOURCE, class_id, template.name)
        if categories is None:
            categories = range(1, key[0] + 1)
        categories = np.unique(np.asarray(list(categories), np.int64))
        if categories.size == 0 or categories.min() < 1 or categories.max() > key[0]:
            raise ValueError(f"load_procedural: categories must be a non-empty subset of "
                             f"1..{key[0]}, got {categories.tolist()[:10]}...")

        options = dict(instances=instances, per_image=per_image, clutter=clutter,
                       scale=scale, rotation=float(rotation), min_visible=float(min_visible))
        start = sum(1 for info in self.image_info if info["source"] == SOURCE)
        for index in range(num_images):
            layout = self.random_layout(np.random.default_rng([int(seed), index]),
                                        image_size, categories, **options)
            self.add_image(SOURCE, image_id=start + index,
                           path=f"{SOURCE}://seed={int(seed)}/{index}", seed=int(seed),
                           index=index, height=image_size, width=image_size, **layout)

    def random_layout(self, rng, size, categories, instances, per_image, clutter, scale,
                      rotation, min_visible):
        """Draw one image's layout: dict with ``background``, ``clutter``, ``instances``.

        Instance entries are dicts ``class_id, center (row, col), scale (pixels),
        rotation (degrees), colour (RGB)``, in drawing order, after removing those
        less than ``min_visible`` visible.
        """
        kind = ("flat", "gradient", "noise")[int(rng.integers(3))]
        colours = rng.integers(0, 256, size=(2, 3))
        if kind != "gradient":
            colours[1] = colours[0]
        background = {"kind": kind, "colours": colours.tolist(),
                      "angle": float(rng.uniform(0, 2 * np.pi)),
                      "noise": float(rng.uniform(4, 16)),
                      "noise_seed": int(rng.integers(2 ** 31))}
        clutter_items = [_clutter_item(rng, size, size)
                         for _ in range(int(rng.integers(clutter[0], clutter[1] + 1)))]

        n_categories = min(int(rng.integers(per_image[0], per_image[1] + 1)), len(categories))
        chosen = rng.choice(categories, size=n_categories, replace=False)
        # 1..3 instances per category, totalling within ``instances`` where possible.
        high = max(min(instances[1], 3 * n_categories), n_categories)
        low = min(max(instances[0], n_categories), high)
        total = int(rng.integers(low, high + 1))
        counts = np.ones(n_categories, np.int64)
        while counts.sum() < total:
            open_slots = np.flatnonzero(counts < 3)
            counts[rng.choice(open_slots)] += 1
        class_ids = np.repeat(chosen, counts)
        class_ids = class_ids[rng.permutation(len(class_ids))]

        placed, boxes = [], []
        for class_id in class_ids:
            size_px = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
            half = size_px / 2.0
            best = None
            for _ in range(_PLACEMENT_TRIES):
                center = rng.uniform(half, size - 1 - half, size=2)
                box = np.concatenate([center - half, center + half])
                overlap = float(_box_iou(box, boxes).max(initial=0.0))
                if best is None or overlap < best[0]:
                    best = (overlap, center, box)
                if overlap <= _MAX_PLACEMENT_IOU:
                    break
            boxes.append(best[2])
            placed.append({"class_id": int(class_id),
                           "center": best[1].round(3).tolist(),
                           "scale": round(size_px, 3),
                           "rotation": round(float(rng.uniform(-rotation, rotation)), 3),
                           "colour": _random_colour(rng, colours)})
        # Removing an instance can only uncover others, so one pass suffices.
        owner, full_area = instance_owner_map(placed, self.templates, size, size)
        visible = np.bincount(owner.ravel(), minlength=len(placed) + 1)[1:]
        keep = visible >= min_visible * np.maximum(full_area, 1)
        placed = [inst for inst, k in zip(placed, keep) if k]
        return {"background": background, "clutter": clutter_items, "instances": placed}

    # ------------------------------------------------------------------ loading
    def load_image(self, image_id):
        """Draw image ``image_id``: RGB uint8 [H, W, 3]."""
        info = self._info(image_id)
        if info["source"] != SOURCE:
            return super().load_image(image_id)
        height, width = info["height"], info["width"]
        image = _draw_background(info["background"], height, width)
        _draw_clutter(image, info["clutter"])
        owner, _ = instance_owner_map(info["instances"], self.templates, height, width)
        palette = np.array([[0, 0, 0]] + [inst["colour"] for inst in info["instances"]],
                           np.uint8)
        shown = owner > 0
        image[shown] = palette[owner[shown]]
        return image

    def load_mask(self, image_id):
        """Visible instance masks: (bool [H, W, N], int32 class ids [N]), drawing order."""
        info = self._info(image_id)
        if info["source"] != SOURCE:
            return super().load_mask(image_id)
        height, width = info["height"], info["width"]
        owner, _ = instance_owner_map(info["instances"], self.templates, height, width)
        n = len(info["instances"])
        masks = owner[..., None] == np.arange(1, n + 1, dtype=np.int32)
        class_ids = np.array([inst["class_id"] for inst in info["instances"]], np.int32)
        # Source class ids equal internal ids unless other sources were added first.
        if getattr(self, "class_from_source_map", None) is not None:
            class_ids = np.array([self.map_source_class_id(f"{SOURCE}.{c}")
                                  for c in class_ids], np.int32)
        return masks, class_ids

    def image_reference(self, image_id):
        """``procedural://seed=S/i``: the seed and index that regenerate the image."""
        return self._info(image_id)["path"]

    def prepare(self, class_map=None):
        """Number classes and images (``mrcnn.utils.Dataset.prepare``) and build the
        one-shot indices, with the same types as ``siamese_mrcnn.coco.CocoDataset``:

        * ``category_image_index``: {class id 1..K: int64 [M] ascending image ids
          showing the class};
        * ``image_category_index``: list over image ids of int32 ascending class ids
          shown in the image.

        Built from the layouts (no drawing).
        """
        super().prepare(class_map)
        from siamese_mrcnn.references import index_categories

        def present(image_id):
            info = self.image_info[image_id]
            if info["source"] != SOURCE:
                return ()
            return {self.map_source_class_id(f"{SOURCE}.{inst['class_id']}")
                    for inst in info["instances"]}

        index_categories(self, present)


# ---------------------------------------------------------------------- CLI
def main(argv=None):
    """Export a procedural dataset to COCO files (and optionally a preview PNG)."""
    from samples.procedural.export import export_coco, render_preview

    parser = argparse.ArgumentParser(
        prog="python -m samples.procedural.procedural",
        description="Generate the procedural one-shot benchmark and write it in COCO "
                    "format: DIR/images/*.png and DIR/annotations.json.")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--images", type=int, default=1000, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="image seed")
    parser.add_argument("--categories", type=int, default=200, help="number of categories")
    parser.add_argument("--template-seed", type=int, default=0,
                        help="category seed; keep it equal across train/val/test")
    parser.add_argument("--image-size", type=int, default=128, help="image side, pixels")
    parser.add_argument("--split", choices=("all", "seen", "unseen"), default="all",
                        help="which categories to place (every 4th is unseen)")
    parser.add_argument("--split-offset", type=int, default=1,
                        help="unseen ids are 4k + offset (1..4, like COCO splits)")
    parser.add_argument("--preview", help="also write a preview PNG to this path")
    args = parser.parse_args(argv)

    seen, unseen = procedural_split(args.categories, offset=args.split_offset)
    placed = {"all": None, "seen": seen, "unseen": unseen}[args.split]
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(args.images, image_size=args.image_size,
                            num_categories=args.categories, categories=placed,
                            seed=args.seed, template_seed=args.template_seed)
    dataset.prepare()
    path = export_coco(dataset, args.out)
    print(f"wrote {dataset.num_images} images and {path}")
    if args.preview:
        render_preview(dataset, args.preview, unseen=unseen)
        print(f"wrote {args.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
