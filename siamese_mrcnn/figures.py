"""Figures of one-shot results (reference | query with the predicted masks) and of
the procedural benchmark's data (images with their masks, category templates).

Used by the demo (:mod:`siamese_mrcnn.demo`), ``siamese-mrcnn evaluate --figure``
and scripts/make_figures.py. Labels are kept inside their panels
(:func:`fit_text_inside`). Shape shorthand:
``H, W`` image height and width in pixels, ``N`` instances. Images are
``[H, W, 3]`` uint8, masks bool ``[H, W, N]``; boxes are pixel ``(y1, x1, y2, x2)``,
y2/x2 exclusive.
"""

import os

import numpy as np


# ---------------------------------------------------------------------- labels
def _text_extent(text, renderer):
    """Display-pixel extent of a Text artist, the box drawn behind it included."""
    from matplotlib.transforms import Bbox

    extent = text.get_window_extent(renderer)
    patch = text.get_bbox_patch()
    if patch is not None:
        text.update_bbox_position_size(renderer)  # the patch follows the text when drawn
        extent = Bbox.union([extent, patch.get_window_extent(renderer)])
    return extent


def fit_text_inside(text, ax, renderer, pad=2.0, min_fontsize=4.5):
    """Keep the Text artist ``text`` (and the box behind it) inside ``ax``.

    In this order, as far as needed: shrink the font in half-point steps down to
    ``min_fontsize``; shorten the text from its end, marking the cut with "…"; move
    it (in display space, whatever its transform) so its extent lies ``pad`` pixels
    inside the axes. The axes' extent must be final (call ``fig.canvas.draw()`` after
    laying the figure out, so that image aspect ratios have been applied). Returns
    ``text``.
    """
    box = ax.get_window_extent(renderer)
    room = box.width - 2 * pad
    while _text_extent(text, renderer).width > room and text.get_fontsize() > min_fontsize:
        text.set_fontsize(max(min_fontsize, text.get_fontsize() - 0.5))
    label = text.get_text()
    while _text_extent(text, renderer).width > room and len(label) > 1:
        label = label[:-1].rstrip()
        text.set_text(label + "…")
    extent = _text_extent(text, renderer)
    dx = max(0.0, box.x0 + pad - extent.x0) - max(0.0, extent.x1 - (box.x1 - pad))
    dy = max(0.0, box.y0 + pad - extent.y0) - max(0.0, extent.y1 - (box.y1 - pad))
    if dx or dy:
        transform = text.get_transform()
        x, y = transform.transform(text.get_position())
        text.set_position(transform.inverted().transform((x + dx, y + dy)))
    return text


# ---------------------------------------------------------------------- one-shot results
def pick_examples(dataset, class_ids, config, count, seed, exclude=(), resampling="corrected"):
    """Up to ``count`` (image id, class id, references) for a figure.

    Images are taken in order; each row shows a category of ``class_ids`` present in
    the image, a different one per row where possible, with one reference drawn by
    the reference rule from another image (seeded by (seed, image id, class id)).
    Images in ``exclude`` are skipped. References are uint8 [D, D, 3] lists of one,
    resampled the ``resampling`` way ("corrected" or "faithful").
    """
    from siamese_mrcnn.references import sample_references

    wanted = {int(c) for c in class_ids}
    exclude = {int(i) for i in exclude}
    rows, used = [], set()
    for image_id in dataset.image_ids:
        if int(image_id) in exclude:
            continue
        present = [int(c) for c in dataset.image_category_index[image_id] if int(c) in wanted]
        fresh = [c for c in present if c not in used] or present
        if not fresh:
            continue
        class_id = fresh[0]
        rng = np.random.default_rng([seed, int(image_id), class_id])
        try:
            refs, _ = sample_references(dataset, class_id, rng, config, 1,
                                        exclude_image=image_id, resampling=resampling)
        except ValueError:
            continue  # the only instance of the category is in this image
        rows.append((int(image_id), class_id, refs))
        used.add(class_id)
        if len(rows) == count:
            break
    return rows


# A black band above each panel's image, this fraction of its height: the panel's own
# label sits there, so it covers neither the image nor a detection's score.
LABEL_BAND = 0.15


def _image_with_label_band(ax, image):
    """Show ``image`` [H, W, 3] with a black band of LABEL_BAND * H pixels above it,
    inside the same axes (image pixel (y, x) stays at data (x, y))."""
    from matplotlib.patches import Rectangle

    height, width = image.shape[:2]
    band = LABEL_BAND * height
    ax.imshow(image, interpolation="nearest")
    ax.add_patch(Rectangle((-0.5, -0.5 - band), width, band, facecolor="black",
                           edgecolor="none"))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5 - band)
    ax.set_axis_off()


def _label(ax, x, y, text, fontsize, colour="black", transform=None, **style):
    """A label with a dark box behind it (readable on any image), anchored at its
    top-left corner."""
    return ax.text(x, y, text, fontsize=fontsize, color="white", ha="left", va="top",
                   transform=transform if transform is not None else ax.transData,
                   bbox={"facecolor": colour, "alpha": 0.75, "pad": 1.0, "lw": 0}, **style)


def _draw_query(ax, image, result, keep, name, count_gt, fontsize):
    """The query with each kept detection's mask, box and score; labels are returned
    so they can be fitted inside the panel."""
    from matplotlib.patches import Rectangle

    from mrcnn import visualize

    colours = visualize.random_colors(max(1, int(keep.sum())), seed=0)
    shown = image.copy()
    indices = np.flatnonzero(keep)
    for colour, k in zip(colours, indices):
        shown = visualize.apply_mask(shown, result["masks"][:, :, k], colour, alpha=0.45)
    _image_with_label_band(ax, shown)
    labels = []
    for colour, k in zip(colours, indices):
        y1, x1, y2, x2 = (float(v) for v in result["rois"][k])
        # Pixel (y, x) covers [x - 0.5, x + 0.5] in imshow's coordinates.
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                               edgecolor=colour, linewidth=1.0, linestyle="--"))
        labels.append(_label(ax, x1 - 0.5, y1 - 0.5, f"{result['scores'][k]:.2f}",
                             fontsize - 1, colour=tuple(0.6 * c for c in colour)))
    labels.append(_label(ax, 0.0, 1.0, f"query: {count_gt} {name}, {int(keep.sum())} found",
                         fontsize, transform=ax.transAxes))
    return labels


def draw_one_shot_grid(model, dataset, groups, config, path, seed, rows=3, **options):
    """Write :func:`one_shot_grid_figure` (same arguments, ``options`` passed on) as a
    PNG at ``path`` (folders are created); returns ``path``."""
    fig = one_shot_grid_figure(model, dataset, groups, config, seed, rows=rows, **options)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=fig.dpi)
    return path


def one_shot_grid_figure(model, dataset, groups, config, seed, rows=3, min_score=0.5,
                         title=None, subtract_reference_mean=True, resampling="corrected",
                         panel_inches=1.5, fontsize=6.5, dpi=150):
    """A grid figure of one-shot results: for each class group (e.g. seen, unseen) a
    column pair reference | query with the predicted masks, ``rows`` rows.

    Rows come from :func:`pick_examples` (the first images showing a category of the
    group, a different category per row where possible, the reference from another
    image). Detections scoring below ``min_score`` are not drawn (the best one is,
    if none reaches it); each drawn one shows its mask, its pixel box (dashed) and
    its score. Each panel's own label sits in a black band above its image
    (:data:`LABEL_BAND` of its height), and every label lies inside its panel
    (:func:`fit_text_inside`), so the figure stays readable at small image sizes
    (the demo's 128 pixels).

    Args:
        model: inference SiameseMaskRCNN (``detect_multi``).
        dataset: prepared CocoDataset (or any one-shot dataset with
            ``image_category_index`` and ``category_image_index``).
        groups: {group name: class ids}, drawn left to right in this order; empty
            groups are left out.
        config: reference sampling settings (IMAGE_*, TARGET_*).
        seed: seed of the reference draws.
        subtract_reference_mean: passed to ``detect_multi`` (False reproduces the
            original evaluation's unsubtracted references).
        resampling: how references are cropped and resized (an evaluation mode's).
        panel_inches, fontsize, dpi: the size of a panel (inches), of the labels
            (points, before fitting) and the figure's resolution.
    Returns:
        a matplotlib Figure (Agg canvas) of ``dpi`` whose labels have been fitted at
        that resolution. RuntimeError when no group has an image to show.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = []
    for group, ids in groups.items():
        picked = pick_examples(dataset, ids, config, rows, seed,
                               resampling=resampling) if len(ids) else []
        if picked:
            columns.append((group, picked))
    if not columns:
        wanted = sorted({int(c) for ids in groups.values() for c in ids})
        raise RuntimeError(f"no image shows one of the categories {wanted} with a reference "
                           f"in another image")
    count = max(len(picked) for _, picked in columns)
    # Column pairs separated by a narrow gap; room on top for the group headers.
    ratios = []
    for g in range(len(columns)):
        ratios += ([0.12] if g else []) + [1.0, 1.0]
    width = panel_inches * sum(ratios) + 0.2
    header = 0.45 if title else 0.3
    height = panel_inches * (1 + LABEL_BAND) * count * 1.04 + header
    fig = Figure(figsize=(width, height), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    grid = fig.add_gridspec(count, len(ratios), width_ratios=ratios, wspace=0.04,
                            hspace=0.04, left=0.1 / width, right=1 - 0.1 / width,
                            bottom=0.05 / height, top=1 - header / height)
    labels = []
    for g, (group, picked) in enumerate(columns):
        first = 3 * g
        centre = (grid[0, first].get_position(fig).x0 + grid[0, first + 1].get_position(fig).x1) / 2
        fig.text(centre, 1 - (header - 0.04) / height, f"{group} categories", ha="center",
                 va="bottom", fontsize=fontsize + 1.5, weight="bold")
        for r, (image_id, class_id, refs) in enumerate(picked):
            name = dataset.class_names[class_id]
            ax_ref = fig.add_subplot(grid[r, first])
            _image_with_label_band(ax_ref, refs[0])
            labels.append((ax_ref, _label(ax_ref, 0.0, 1.0, f"reference: {name}", fontsize,
                                          transform=ax_ref.transAxes)))
            image = dataset.load_image(image_id)
            result = model.detect_multi(image, [refs],
                                        subtract_reference_mean=subtract_reference_mean)[0]
            keep = result["scores"] >= min_score
            if not keep.any() and len(result["scores"]):
                keep[np.argmax(result["scores"])] = True
            count_gt = int(np.sum(dataset.load_mask(image_id)[1] == class_id))
            ax_query = fig.add_subplot(grid[r, first + 1])
            labels += [(ax_query, t) for t in _draw_query(ax_query, image, result, keep, name,
                                                         count_gt, fontsize)]
    if title:
        fig.text(0.5, 1 - 0.04 / height, title, ha="center", va="top", fontsize=fontsize + 2)
    canvas.draw()  # applies the images' aspect ratios: the panels' final extents
    renderer = canvas.get_renderer()
    for ax, text in labels:
        fit_text_inside(text, ax, renderer)
    return fig


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
