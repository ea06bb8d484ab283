"""Figures of one-shot results (reference | query with the predicted masks) and of
the procedural benchmark's data (images with their masks, category templates).

Used by the demo (scripts/demo.py) and scripts/make_figures.py. Shape shorthand:
``H, W`` image height and width in pixels, ``N`` instances. Images are
``[H, W, 3]`` uint8, masks bool ``[H, W, N]``; boxes are pixel ``(y1, x1, y2, x2)``,
y2/x2 exclusive.
"""

import os

import numpy as np


def draw_reference_query_figure(model, dataset, class_ids, config, path, title, seed,
                                count=3, min_score=0.5):
    """Figure of ``count`` rows: reference | query with the predicted masks.

    Rows are the first evaluation images holding a category of ``class_ids`` (a
    different category per row where possible); the reference is drawn by the
    reference rule from another image. Detections scoring below ``min_score`` are
    not drawn (the best one is, if none reaches it).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mrcnn import visualize
    from siamese_mrcnn.references import sample_references

    wanted = set(int(c) for c in class_ids)
    rows, used = [], set()
    for image_id in dataset.image_ids:
        present = [int(c) for c in dataset.image_category_index[image_id] if int(c) in wanted]
        fresh = [c for c in present if c not in used] or present
        if not fresh:
            continue
        class_id = fresh[0]
        rng = np.random.default_rng([seed, int(image_id), class_id])
        try:
            refs, _ = sample_references(dataset, class_id, rng, config, 1,
                                        exclude_image=image_id)
        except ValueError:
            continue  # the only instance of the category is in this image
        rows.append((int(image_id), class_id, refs))
        used.add(class_id)
        if len(rows) == count:
            break
    if not rows:
        raise RuntimeError(f"no evaluation image shows one of the categories {sorted(wanted)}")
    fig = Figure(figsize=(6.4, 3.2 * len(rows)))
    FigureCanvasAgg(fig)
    for r, (image_id, class_id, refs) in enumerate(rows):
        image = dataset.load_image(image_id)
        result = model.detect_multi(image, [refs])[0]
        keep = result["scores"] >= min_score
        if not keep.any() and len(result["scores"]):
            keep[np.argmax(result["scores"])] = True
        name = dataset.class_names[class_id]
        ax_ref = fig.add_subplot(len(rows), 2, 2 * r + 1)
        ax_ref.imshow(refs[0], interpolation="nearest")
        ax_ref.set_title(f"reference: {name}", fontsize=9)
        ax_ref.axis("off")
        ax_query = fig.add_subplot(len(rows), 2, 2 * r + 2)
        count_gt = int(np.sum(dataset.load_mask(image_id)[1] == class_id))
        visualize.display_instances(
            image, result["rois"][keep], result["masks"][:, :, keep],
            np.ones(int(keep.sum()), np.int32), ["BG", name], result["scores"][keep],
            ax=ax_query, seed=0,
            title=f"query: {count_gt} {name}, {int(keep.sum())} detections")
        ax_query.title.set_fontsize(9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------- data figures
# Unseen categories are marked orange, as in samples.procedural.template_gallery.
UNSEEN_COLOUR = (1.0, 0.59, 0.0)
SEEN_COLOUR = (1.0, 1.0, 1.0)


def category_colours(class_ids, seed=0):
    """{class id: RGB colour in [0, 1]}: one distinct colour per category in
    ``class_ids`` (ascending ids get ``mrcnn.visualize.random_colors(n, seed=seed)`` in
    order), so every instance of a category shares its colour."""
    from mrcnn import visualize

    ids = sorted({int(c) for c in np.asarray(class_ids).reshape(-1)})
    return dict(zip(ids, visualize.random_colors(len(ids), seed=seed)))


def overlay_categories(image, masks, class_ids, colours, alpha=0.5):
    """Blend each instance mask into the image in its category's colour and draw the
    mask's inner boundary in that colour, solid.

    Args:
        image: uint8 [H, W, 3].
        masks: bool [H, W, N] instance masks.
        class_ids: int [N] positive class ids.
        colours: {class id: RGB in [0, 1]} holding every id of ``class_ids``.
        alpha: opacity of the blended colour.
    Returns:
        uint8 [H, W, 3], a new image; pixels outside every mask are unchanged.
    """
    import skimage.segmentation

    from mrcnn import visualize

    image = np.asarray(image)
    masks = np.asarray(masks, dtype=bool)
    class_ids = np.asarray(class_ids).reshape(-1)
    if image.ndim != 3 or masks.ndim != 3 or masks.shape[:2] != image.shape[:2]:
        raise ValueError(f"overlay_categories: image must be [H, W, 3] and masks [H, W, N] "
                         f"of the same H, W; got image {image.shape}, masks {masks.shape}")
    if masks.shape[-1] != len(class_ids):
        raise ValueError(f"overlay_categories: {masks.shape[-1]} masks but "
                         f"{len(class_ids)} class ids")
    missing = sorted({int(c) for c in class_ids} - set(colours))
    if missing:
        raise ValueError(f"overlay_categories: no colour for class ids {missing}")
    out = image.copy()
    for k, class_id in enumerate(class_ids):
        colour = colours[int(class_id)][:3]
        out = visualize.apply_mask(out, masks[..., k], colour, alpha)
        # "inner" keeps the outline on the mask's own pixels, never outside it.
        edge = skimage.segmentation.find_boundaries(masks[..., k], mode="inner")
        out[edge & masks[..., k]] = np.rint(255 * np.asarray(colour)).astype(np.uint8)
    return out


def template_tile(template, unseen, size=48):
    """A category's template as uint8 [size, size, 3]: the shape in orange (unseen) or
    white (seen) on black (``template`` has ``thumbnail(size) -> bool [size, size]``)."""
    tile = np.zeros((size, size, 3), np.uint8)
    colour = UNSEEN_COLOUR if unseen else SEEN_COLOUR
    tile[template.thumbnail(size)] = np.rint(255 * np.asarray(colour)).astype(np.uint8)
    return tile


def draw_procedural_examples(dataset, path, unseen, image_ids=None, columns=4,
                             max_templates=24, title=None, seed=0):
    """Figure of procedural benchmark images and the templates of their categories.

    Top rows: the images (``columns`` per row) with each instance's mask blended in
    its category's colour (:func:`overlay_categories`) and named at its top edge;
    names of unseen categories are orange and end in "(unseen)". Bottom rows (up to
    12 per row): the templates of the categories shown (ascending class id, at most
    ``max_templates``), each titled with its name and "seen" or "unseen".

    Args:
        dataset: a prepared procedural dataset (``templates``, ``load_image``,
            ``load_mask``, ``class_names``); class id c draws ``templates[c - 1]``.
        path: output PNG path (folders are created).
        unseen: class ids held out from training (e.g. from ``procedural_split``).
        image_ids: images to show, default the first 8.
    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    templates = getattr(dataset, "templates", None)
    if templates is None:
        raise ValueError(f"draw_procedural_examples: {type(dataset).__name__} has no "
                         f"templates (call load_procedural first)")
    if image_ids is None:
        image_ids = list(range(min(8, dataset.num_images)))
    image_ids = [int(i) for i in image_ids]
    if not image_ids:
        raise ValueError("draw_procedural_examples: no images to draw")
    bad = [i for i in image_ids if not 0 <= i < dataset.num_images]
    if bad:
        raise ValueError(f"draw_procedural_examples: image ids {bad} out of range "
                         f"(dataset has {dataset.num_images} images)")
    unseen = {int(c) for c in unseen}
    loaded = [(dataset.load_image(i),) + tuple(dataset.load_mask(i)) for i in image_ids]
    shown = sorted({int(c) for _, _, ids in loaded for c in ids})
    colours = category_colours(shown, seed=seed)

    image_rows = -(-len(image_ids) // columns)
    template_count = min(len(shown), int(max_templates))
    template_columns = max(columns, min(template_count, 12))
    template_rows = max(1, -(-template_count // template_columns))
    fig = Figure(figsize=(2.3 * columns, 2.4 * image_rows + 1.3 * template_rows + 0.6))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(image_rows + template_rows, 1,
                            height_ratios=[1.0] * image_rows + [0.55] * template_rows)
    image_grid = grid[:image_rows].subgridspec(image_rows, columns)
    for n, (image_id, (image, masks, class_ids)) in enumerate(zip(image_ids, loaded)):
        ax = fig.add_subplot(image_grid[n // columns, n % columns])
        ax.imshow(overlay_categories(image, masks, class_ids, colours),
                  interpolation="nearest")
        for k, class_id in enumerate(class_ids):
            rows, cols = np.nonzero(masks[..., k])
            if len(rows) == 0:
                continue
            is_unseen = int(class_id) in unseen
            ax.text(cols.mean(), rows.min() - 1,
                    dataset.class_names[class_id] + (" (unseen)" if is_unseen else ""),
                    fontsize=5, ha="center", va="bottom",
                    color=UNSEEN_COLOUR if is_unseen else SEEN_COLOUR,
                    bbox={"facecolor": "black", "alpha": 0.6, "pad": 0.5, "lw": 0})
        ax.set_title(f"image {image_id}", fontsize=7)
        ax.set_axis_off()
    template_grid = grid[image_rows:].subgridspec(template_rows, template_columns)
    for n, class_id in enumerate(shown[:template_count]):
        ax = fig.add_subplot(template_grid[n // template_columns, n % template_columns])
        is_unseen = class_id in unseen
        ax.imshow(template_tile(templates[class_id - 1], is_unseen), interpolation="nearest")
        ax.set_title(f"{dataset.class_names[class_id]}\n{'unseen' if is_unseen else 'seen'}",
                     fontsize=6, color="darkorange" if is_unseen else "black")
        ax.set_axis_off()
    more = "" if template_count == len(shown) else f" (first {template_count} of {len(shown)})"
    fig.suptitle(title or f"procedural benchmark: images with their instance masks and the "
                          f"templates of their categories{more}\n(orange: unseen)",
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=130)
    return path
