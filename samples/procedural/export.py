"""COCO export and preview figures for the procedural one-shot benchmark.

:func:`export_coco` writes any Matterport-style dataset (it only calls
``load_image``, ``load_mask`` and ``image_reference``) as COCO files:

    out_dir/images/000001.png ...
    out_dir/annotations.json      # categories, images, annotations (RLE masks)

COCO ids: category id = internal class id (1..K-1, so a loader that numbers the
sorted COCO category ids 1..K-1 gets the same ids back); image id = internal image
id + 1 (COCO tools treat id 0 as missing in places). Masks are RLE
(``pycocotools.mask.encode``, counts as str), bbox ``[x, y, width, height]`` in
pixels with the box's exclusive end minus its start as size, area the mask's pixel
count; a negative class id (crowd region) becomes ``iscrowd`` 1 of category ``-id``.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances.
"""

import os

import numpy as np
import PIL.Image
import skimage.segmentation

from mrcnn.files import atomic_open, write_json
from siamese_mrcnn.coco import encode_masks

ANNOTATION_FILE = "annotations.json"
IMAGE_DIR = "images"


def _coco_bbox(mask):
    """[x, y, width, height] of a non-empty bool mask [H, W], pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] + 1 - cols[0]),
            int(rows[-1] + 1 - rows[0])]


def export_coco(dataset, out_dir, image_ids=None):
    """Write ``dataset`` as COCO: ``out_dir/images/*.png`` and ``out_dir/annotations.json``.

    Args:
        dataset: a prepared ``mrcnn.utils.Dataset`` (e.g. ProceduralOneShotDataset).
        out_dir: directory, created if missing; existing files of the same names are
            replaced.
        image_ids: internal image ids to export; default all.

    Returns:
        Path of the annotation file. Instances with empty masks are left out (they
        have no box).
    """
    if "num_classes" not in vars(dataset):
        raise ValueError(f"export_coco: call prepare() on the {type(dataset).__name__} "
                         f"before exporting it")
    image_ids = dataset.image_ids if image_ids is None else image_ids
    image_dir = os.path.join(out_dir, IMAGE_DIR)
    os.makedirs(image_dir, exist_ok=True)

    templates = getattr(dataset, "templates", None)
    categories = []
    for class_id in dataset.class_ids[1:]:
        family = "shape"
        info = dataset.class_info[class_id]
        if templates is not None and info["source"] == "procedural":
            family = templates[info["id"] - 1].family
        categories.append({"id": int(class_id), "name": dataset.class_names[class_id],
                           "supercategory": family})

    images, annotations = [], []
    for image_id in image_ids:
        image_id = int(image_id)
        if not 0 <= image_id < dataset.num_images:
            raise ValueError(f"export_coco: image id {image_id} out of range "
                             f"(dataset has {dataset.num_images} images)")
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        coco_id = image_id + 1
        file_name = f"{coco_id:06d}.png"
        with atomic_open(os.path.join(image_dir, file_name), "wb") as f:
            PIL.Image.fromarray(image).save(f, format="PNG")
        images.append({"id": coco_id, "file_name": file_name,
                       "height": int(image.shape[0]), "width": int(image.shape[1]),
                       "source": dataset.image_reference(image_id)})
        if masks.shape[-1] == 0:
            continue
        for k, rle in enumerate(encode_masks(masks)):
            if not masks[..., k].any():
                continue
            class_id = int(class_ids[k])
            annotations.append({
                "id": len(annotations) + 1, "image_id": coco_id,
                "category_id": abs(class_id),
                "segmentation": rle,
                "area": int(masks[..., k].sum()), "bbox": _coco_bbox(masks[..., k]),
                "iscrowd": int(class_id < 0)})

    info = {"description": f"exported from {type(dataset).__name__}",
            "num_images": len(images)}
    if getattr(dataset, "_template_key", None) is not None:
        num_categories, template_seed, max_iou = dataset._template_key
        seeds = sorted({dataset.image_info[int(i)].get("seed") for i in image_ids} - {None})
        info.update(num_categories=num_categories, template_seed=template_seed,
                    max_iou=max_iou, image_seeds=seeds)
    document = {"info": info, "licenses": [], "categories": categories,
                "images": images, "annotations": annotations}
    path = os.path.join(out_dir, ANNOTATION_FILE)
    write_json(path, document, indent=None, sort_keys=False)
    return path


# ---------------------------------------------------------------------- preview
def template_gallery(templates, columns=20, tile=32, unseen=()):
    """Thumbnails of ``templates`` as one RGB uint8 image, ``columns`` per row.

    Template i (class id i + 1) sits at row i // columns; shapes are white, those
    whose class id is in ``unseen`` orange, on a dark grey ground with 2-pixel gaps.
    """
    unseen = set(int(c) for c in unseen)
    rows = -(-len(templates) // columns)
    pitch = tile + 2
    gallery = np.full((rows * pitch + 2, columns * pitch + 2, 3), 40, np.uint8)
    for i, template in enumerate(templates):
        r, c = divmod(i, columns)
        y, x = 2 + r * pitch, 2 + c * pitch
        cell = gallery[y:y + tile, x:x + tile]
        cell[:] = 0
        cell[template.thumbnail(tile)] = (255, 150, 0) if i + 1 in unseen else (255, 255, 255)
    return gallery


def render_preview(dataset, path, num_images=8, columns=4, num_templates=80, unseen=()):
    """Write a PNG: example images with outlined, named instances above a template gallery.

    Args:
        dataset: a prepared ProceduralOneShotDataset.
        path: output PNG path.
        num_images: first images shown (``columns`` per row).
        num_templates: first templates shown in the gallery.
        unseen: class ids drawn orange in the gallery (e.g. from procedural_split).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    num_images = min(int(num_images), dataset.num_images)
    image_rows = -(-num_images // columns)
    fig = Figure(figsize=(2.2 * columns, 2.3 * image_rows + 2.6 * columns / 4 + 0.5))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(image_rows + 1, columns,
                            height_ratios=[1.0] * image_rows + [1.2])
    for i in range(num_images):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        image = dataset.load_image(i)
        masks, class_ids = dataset.load_mask(i)
        labels = np.zeros(image.shape[:2], np.int32)
        for k in range(masks.shape[-1]):
            labels[masks[..., k]] = k + 1
        outlined = image.copy()
        outlined[skimage.segmentation.find_boundaries(labels, mode="inner")] = 255
        ax.imshow(outlined, interpolation="nearest")
        for k in range(masks.shape[-1]):
            rows, cols = np.nonzero(masks[..., k])
            ax.text(cols.mean(), rows.min() - 1, dataset.class_names[class_ids[k]],
                    fontsize=5, color="white", ha="center", va="bottom",
                    bbox={"facecolor": "black", "alpha": 0.6, "pad": 0.5, "lw": 0})
        ax.set_axis_off()
    ax = fig.add_subplot(grid[image_rows, :])
    templates = dataset.templates[:int(num_templates)]
    ax.imshow(template_gallery(templates, columns=min(20, len(templates)), unseen=unseen),
              interpolation="nearest")
    ax.set_title(f"first {len(templates)} of {len(dataset.templates)} categories"
                 + (" (orange: unseen)" if len(unseen) else ""), fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return path
