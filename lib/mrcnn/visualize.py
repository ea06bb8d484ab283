"""Figures of images, instance masks, boxes and evaluation results (Matterport's API).

Shape shorthand: ``H, W`` image height and width, ``N`` instances (boxes, masks,
class ids), ``R`` ROIs, ``P`` predictions, ``G`` ground-truth instances.

Conventions: images are RGB ``[H, W, 3]`` (uint8, or any numeric type with values
in 0..255); instance masks are bool ``[H, W, N]``; boxes are **pixel**
``(y1, x1, y2, x2)`` with y2/x2 exclusive, so box ``(0, 0, 10, 10)`` covers pixels
0..9 and is drawn along the outer edges of those pixels. An all-zero box row is
padding and is not drawn.

Headless by design: figures are plain :class:`matplotlib.figure.Figure` objects on
an Agg canvas, so nothing here reads or changes pyplot's backend (a notebook user's
interactive backend stays as chosen). Pass ``show=True`` to draw through pyplot
instead and call ``plt.show()``; pass ``ax`` to draw into an existing axes. Every
figure function returns the figure it drew on and writes it to ``save_path`` when
one is given. :func:`render_instances` draws masks and boxes into a numpy image with
no matplotlib at all.
"""

import colorsys
import itertools
import random

import numpy as np
from matplotlib import colormaps, lines, patches
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from skimage.measure import find_contours

from mrcnn import utils

# Matterport's comparison colours: ground truth green, predictions red.
GT_COLOR = (0.0, 1.0, 0.0, 0.8)
PRED_COLOR = (1.0, 0.0, 0.0, 1.0)


# Figure plumbing and input checks

def _new_figure(figsize, show):
    """A figure that does not depend on pyplot unless it is meant to be shown."""
    if show:
        import matplotlib.pyplot as plt  # only here: importing pyplot picks a backend
        return plt.figure(figsize=figsize)
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _figure_and_axes(ax, figsize, show):
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(figsize, show)
    return fig, fig.add_subplot(1, 1, 1)


def _finish(fig, save_path, show):
    """Write the figure to ``save_path`` (format from its extension, PNG if none)."""
    if save_path is not None:
        fig.savefig(save_path)
    if show:
        import matplotlib.pyplot as plt
        plt.show()
    return fig


def _as_rgb_uint8(image, name="image"):
    """[H, W], [H, W, 1], [H, W, 3] or [H, W, 4] in 0..255 -> new uint8 [H, W, 3]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name} must be [H, W] or [H, W, 1|3|4], got shape {image.shape}")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(np.rint(image.astype(np.float64)), 0, 255).astype(np.uint8)
    return image.copy()


def _check_instances(func, image, boxes, masks, class_ids, class_names=None,
                     scores=None, colors=None, captions=None):
    """Validate one image's instances; returns (boxes [N, 4], masks or None, ids [N])."""
    height, width = image.shape[:2]
    boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{func}: boxes must be [N, 4] (y1, x1, y2, x2), got {boxes.shape}")
    n = boxes.shape[0]
    class_ids = np.asarray(class_ids).reshape(-1) if class_ids is not None else None
    if class_ids is not None and class_ids.shape[0] != n:
        raise ValueError(f"{func}: {n} boxes but {class_ids.shape[0]} class_ids")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim != 3 or masks.shape[:2] != (height, width) or masks.shape[2] != n:
            raise ValueError(f"{func}: masks must be [{height}, {width}, {n}] to match "
                             f"the image and boxes, got {masks.shape}")
        masks = masks.astype(bool)
    if class_names is not None and class_ids is not None and n:
        bad = np.abs(class_ids) >= len(class_names)  # negative ids are crowd regions
        if bad.any():
            raise ValueError(f"{func}: class id {class_ids[bad][0]} has no entry in "
                             f"class_names (length {len(class_names)})")
    for arg, value in (("scores", scores), ("colors", colors), ("captions", captions)):
        if value is not None and len(value) != n:
            raise ValueError(f"{func}: {arg} has length {len(value)}, expected {n}")
    return boxes, masks, class_ids


def _label(class_names, class_id):
    """Class name for a class id; a negative id marks a crowd region of that class."""
    class_id = int(class_id)
    return class_names[abs(class_id)] + (" (crowd)" if class_id < 0 else "")


def _box_rectangle(box, **style):
    """A rectangle patch along the outer pixel edges of an exclusive pixel box."""
    y1, x1, y2, x2 = (float(v) for v in box)
    # Pixel i is centred at i and spans [i - 0.5, i + 0.5] in imshow coordinates.
    return patches.Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, **style)


def _add_mask_outline(ax, mask, color):
    """Outline each connected region of a bool [H, W] mask with a polygon."""
    # Padding closes contours of regions that touch the image border.
    padded = np.pad(mask.astype(np.uint8), 1)
    for contour in find_contours(padded, 0.5):
        yx = contour - 1  # back to unpadded pixel-centre coordinates
        ax.add_patch(patches.Polygon(yx[:, ::-1], closed=True, facecolor="none",
                                     edgecolor=color))


def _set_image_limits(ax, height, width, margin, title):
    ax.set_ylim(height - 0.5 + margin, -0.5 - margin)
    ax.set_xlim(-0.5 - margin, width - 0.5 + margin)
    ax.axis("off")
    ax.set_title(title)


# Colours and numpy rendering

def random_colors(N, bright=True, seed=None):
    """N distinct RGB colours (floats in [0, 1]) with evenly spaced hues, shuffled.

    bright: value 1.0 if True, else 0.7 (saturation is always 1).
    seed: int for a reproducible order; None shuffles with Python's global ``random``
    state (as Matterport does), so ``random.seed`` also makes figures reproducible.
    Returns a list of N ``(r, g, b)`` tuples.
    """
    if int(N) != N or N < 0:
        raise ValueError(f"random_colors: N must be a non-negative integer, got {N!r}")
    value = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1.0, value) for i in range(int(N))]
    (random if seed is None else random.Random(seed)).shuffle(colors)
    return colors


def apply_mask(image, mask, color, alpha=0.5):
    """Blend ``color`` into ``image`` where ``mask`` is true; returns a new image.

    image: [H, W, C] in 0..255. mask: [H, W], bool or 0/1. color: C floats in [0, 1].
    Inside the mask each channel becomes ``image * (1 - alpha) + alpha * 255 * color``;
    outside it is unchanged. The result has the image's dtype (integer results are
    rounded to nearest and clipped to the dtype's range); the input is not modified.
    """
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or mask.shape != image.shape[:2]:
        raise ValueError(f"apply_mask: image must be [H, W, C] and mask [H, W] of the "
                         f"same H, W; got image {image.shape}, mask {mask.shape}")
    color = np.asarray(color, dtype=np.float64).reshape(-1)
    if color.shape[0] != image.shape[2]:
        raise ValueError(f"apply_mask: color has {color.shape[0]} values for an image "
                         f"with {image.shape[2]} channels")
    blended = image.astype(np.float64) * (1 - alpha) + alpha * 255.0 * color
    out = np.where(mask.astype(bool)[..., None], blended, image)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(image.dtype)


def render_instances(image, boxes, masks, class_ids, class_names, scores=None,
                     colors=None, alpha=0.5, seed=None):
    """Draw instances into a copy of the image with numpy only (no text).

    image: [H, W, 3] (or grayscale) in 0..255. boxes: [N, 4] pixel (y1, x1, y2, x2),
    exclusive y2/x2; all-zero rows are skipped. masks: bool [H, W, N] or None.
    class_ids: [N] indexes into class_names (checked). scores: [N] or None (checked
    only; numpy cannot draw captions). colors: N RGB colours in [0, 1], default
    ``random_colors(N, seed=seed)``.
    Each mask is blended with :func:`apply_mask`, then each box is outlined with a
    1-pixel line of its solid colour on its border pixels (rows y1 and y2 - 1,
    columns x1 and x2 - 1), clipped to the image.
    Returns uint8 [H, W, 3].
    """
    out = _as_rgb_uint8(image)
    boxes, masks, class_ids = _check_instances(
        "render_instances", out, boxes, masks, class_ids, class_names, scores, colors)
    n = boxes.shape[0]
    colors = colors if colors is not None else random_colors(n, seed=seed)
    height, width = out.shape[:2]
    for i in range(n):
        if not np.any(boxes[i]):
            continue
        if masks is not None:
            out = apply_mask(out, masks[:, :, i], colors[i][:3], alpha)
        y1, x1, y2, x2 = np.rint(boxes[i]).astype(int)
        y1, x1 = max(y1, 0), max(x1, 0)
        y2, x2 = min(y2, height), min(x2, width)
        if y2 <= y1 or x2 <= x1:
            continue
        solid = np.rint(255 * np.asarray(colors[i][:3], dtype=np.float64)).astype(np.uint8)
        out[[y1, y2 - 1], x1:x2] = solid
        out[y1:y2, [x1, x2 - 1]] = solid
    return out


# Figures

def display_images(images, titles=None, cols=4, cmap=None, norm=None,
                   interpolation=None, save_path=None, show=False):
    """Show images in a grid, ``cols`` per row, with optional titles.

    images: list of [H, W, 3] RGB images (any numeric type, 0..255, shown as uint8)
    or [H, W] arrays (shown through ``cmap`` / ``norm``, bool as 0/1).
    Returns the Figure.
    """
    images = list(images)
    titles = list(titles) if titles is not None else [""] * len(images)
    if len(titles) != len(images):
        raise ValueError(f"display_images: {len(images)} images but {len(titles)} titles")
    if cols < 1:
        raise ValueError(f"display_images: cols must be >= 1, got {cols}")
    rows = max(1, -(-len(images) // cols))
    fig = _new_figure((14, 14 * rows / cols), show)
    for i, (image, title) in enumerate(zip(images, titles), start=1):
        image = np.asarray(image)
        if image.ndim == 3:
            image = _as_rgb_uint8(image, f"images[{i - 1}]")
        elif image.dtype == bool:
            image = image.astype(np.uint8)
        ax = fig.add_subplot(rows, cols, i)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax.imshow(image, cmap=cmap, norm=norm, interpolation=interpolation)
    return _finish(fig, save_path, show)


def display_instances(image, boxes, masks, class_ids, class_names, scores=None,
                      title="", figsize=(16, 16), ax=None, show_mask=True,
                      show_bbox=True, colors=None, captions=None, save_path=None,
                      show=False, seed=None):
    """Draw instances on an image: dashed boxes, translucent masks with outlines, captions.

    image: [H, W, 3] in 0..255. boxes: [N, 4] pixel (y1, x1, y2, x2), exclusive y2/x2;
    all-zero rows (padding, or instances lost to cropping) are skipped.
    masks: bool [H, W, N] (or None). class_ids: [N] indexes into class_names (a
    negative id is a crowd region of that class, captioned "(crowd)").
    scores: [N] or None. colors: N colours (RGB or RGBA in [0, 1]), default
    ``random_colors(N, seed=seed)``. captions: N strings replacing the default
    ``"<class> <score>"``. Zero instances draw just the image.
    Returns the Figure (``ax.figure`` when ``ax`` is given).
    """
    rgb = _as_rgb_uint8(image)
    boxes, masks, class_ids = _check_instances(
        "display_instances", rgb, boxes, masks, class_ids, class_names, scores,
        colors, captions)
    n = boxes.shape[0]
    fig, ax = _figure_and_axes(ax, figsize, show)
    colors = colors if colors is not None else random_colors(n, seed=seed)
    _set_image_limits(ax, rgb.shape[0], rgb.shape[1], 10, title)
    masked = rgb
    for i in range(n):
        if not np.any(boxes[i]):
            continue
        color = colors[i]
        if show_bbox:
            ax.add_patch(_box_rectangle(boxes[i], linewidth=2, alpha=0.7,
                                        linestyle="dashed", edgecolor=color,
                                        facecolor="none"))
        if captions is not None:
            caption = captions[i]
        else:
            label = _label(class_names, class_ids[i])
            caption = f"{label} {scores[i]:.3f}" if scores is not None else label
        y1, x1 = float(boxes[i][0]), float(boxes[i][1])
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")
        if show_mask and masks is not None:
            masked = apply_mask(masked, masks[:, :, i], color[:3])
            _add_mask_outline(ax, masks[:, :, i], color)
    ax.imshow(masked)
    return _finish(fig, save_path, show)


def _drop_padding(boxes, *per_instance, masks=None):
    """Remove all-zero box rows (zero padding) and the matching instances."""
    keep = np.any(np.asarray(boxes) != 0, axis=1)
    kept = [np.asarray(a)[keep] for a in (boxes, *per_instance)]
    return kept, (masks[..., keep] if masks is not None else None)


def display_differences(image, gt_box, gt_class_id, gt_mask, pred_box, pred_class_id,
                        pred_score, pred_mask, class_names, title="", ax=None,
                        show_mask=True, show_box=True, iou_threshold=0.5,
                        score_threshold=0.5, save_path=None, show=False):
    """Overlay ground truth (green) and predictions (red) with "score / IoU" captions.

    gt_box [G, 4], pred_box [P, 4]: pixel (y1, x1, y2, x2), exclusive y2/x2, zero
    padded rows ignored. gt_mask bool [H, W, G], pred_mask bool [H, W, P],
    gt_class_id [G], pred_class_id / pred_score [P]. Matching is
    ``utils.compute_matches(..., iou_threshold, score_threshold)``; a matched
    prediction's caption gives the mask IoU with its ground truth, an unmatched one
    its best mask IoU with any ground truth. Returns the Figure (or ``ax.figure``).
    """
    rgb = _as_rgb_uint8(image)
    gt_box, gt_mask, gt_class_id = _check_instances(
        "display_differences (ground truth)", rgb, gt_box, gt_mask, gt_class_id,
        class_names)
    pred_box, pred_mask, pred_class_id = _check_instances(
        "display_differences (predictions)", rgb, pred_box, pred_mask, pred_class_id,
        class_names, pred_score)
    (gt_box, gt_class_id), gt_mask = _drop_padding(gt_box, gt_class_id, masks=gt_mask)
    (pred_box, pred_class_id, pred_score), pred_mask = _drop_padding(
        pred_box, pred_class_id, pred_score, masks=pred_mask)
    # compute_matches reports predictions in descending score order; sorting them
    # the same way first keeps its rows aligned with ours.
    order = np.argsort(-np.asarray(pred_score, dtype=np.float64), kind="stable")
    pred_box, pred_class_id = pred_box[order], pred_class_id[order]
    pred_score, pred_mask = np.asarray(pred_score)[order], pred_mask[..., order]
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    n_gt, n_pred = len(gt_class_id), len(pred_class_id)
    overlaps = np.asarray(overlaps).reshape(n_pred, n_gt)
    colors = [GT_COLOR] * n_gt + [PRED_COLOR] * n_pred
    captions = [""] * n_gt
    for i in range(n_pred):
        j = int(pred_match[i])
        iou = overlaps[i, j] if j > -1 else (overlaps[i].max() if n_gt else 0.0)
        captions.append(f"{pred_score[i]:.2f} / {iou:.2f}")
    full_title = (f"{title}\n" if title else "") + \
        "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU"
    return display_instances(
        rgb, np.concatenate([gt_box.reshape(-1, 4), pred_box.reshape(-1, 4)]),
        np.concatenate([gt_mask, pred_mask], axis=-1),
        np.concatenate([gt_class_id, pred_class_id]).astype(np.int32), class_names,
        scores=np.concatenate([np.zeros(n_gt), pred_score]), title=full_title, ax=ax,
        show_mask=show_mask, show_bbox=show_box, colors=colors, captions=captions,
        save_path=save_path, show=show)


def draw_rois(image, rois, refined_rois, mask, class_ids, class_names, limit=10,
              ax=None, save_path=None, show=False, seed=None):
    """Draw ROIs (dashed for positives, dotted grey for negatives) and their refinements.

    rois, refined_rois: [R, 4] pixel (y1, x1, y2, x2), exclusive y2/x2.
    mask: [R, mh, mw] float or bool per-ROI masks (e.g. mask targets), pasted into
    each positive ROI with ``utils.unmold_mask``. class_ids: [R], 0 = negative ROI.
    At most ``limit`` ROIs are drawn, picked at random (``seed``) when there are more.
    The title counts positive and negative ROIs. Returns the Figure (or ``ax.figure``).
    """
    rgb = _as_rgb_uint8(image)
    rois, _, class_ids = _check_instances("draw_rois", rgb, rois, None, class_ids,
                                          class_names)
    refined_rois = np.asarray(refined_rois)
    mask = np.asarray(mask)
    if refined_rois.shape != rois.shape or mask.ndim != 3 or len(mask) != len(rois):
        raise ValueError(f"draw_rois: need refined_rois [R, 4] and mask [R, mh, mw] for "
                         f"R={len(rois)}; got {refined_rois.shape} and {mask.shape}")
    rng = np.random.default_rng(seed)
    ids = np.arange(len(rois))
    if len(ids) > limit:
        ids = np.sort(rng.choice(ids, limit, replace=False))
    colors = random_colors(len(ids), seed=seed)
    fig, ax = _figure_and_axes(ax, (12, 12), show)
    positives = int(np.sum(class_ids > 0))
    negatives = int(np.sum(class_ids == 0))
    ratio = positives / max(len(class_ids), 1)
    _set_image_limits(ax, rgb.shape[0], rgb.shape[1], 10,
                      f"Positive ROIs: {positives}, negative ROIs: {negatives}, "
                      f"positive ratio: {ratio:.2f}")
    masked = rgb
    for color, i in zip(colors, ids):
        class_id = int(class_ids[i])
        ax.add_patch(_box_rectangle(
            rois[i], linewidth=2, edgecolor=color if class_id else "gray",
            facecolor="none", linestyle="dashed" if class_id else "dotted"))
        if not class_id:
            continue
        ry1, rx1 = float(rois[i][0]), float(rois[i][1])
        y1, x1 = float(refined_rois[i][0]), float(refined_rois[i][1])
        ax.add_patch(_box_rectangle(refined_rois[i], linewidth=2, edgecolor=color,
                                    facecolor="none"))
        ax.add_line(lines.Line2D([rx1 - 0.5, x1 - 0.5], [ry1 - 0.5, y1 - 0.5],
                                 color=color))
        ax.text(rx1, ry1 + 8, _label(class_names, class_id), color="w", size=11,
                backgroundcolor="none")
        full = utils.unmold_mask(mask[i].astype(np.float32),
                                 np.rint(rois[i]).astype(np.int32), rgb.shape)
        masked = apply_mask(masked, full, color)
    ax.imshow(masked)
    return _finish(fig, save_path, show)


def draw_boxes(image, boxes=None, refined_boxes=None, masks=None, captions=None,
               visibilities=None, title="", ax=None, save_path=None, show=False,
               seed=None):
    """Draw boxes and/or refined boxes, masks and captions; a debugging view.

    boxes, refined_boxes: [N, 4] pixel (y1, x1, y2, x2), exclusive y2/x2 (at least
    one given; all-zero rows of ``boxes`` are skipped). When both are given each
    box is joined to its refinement by a line. masks: bool [H, W, N].
    captions: N strings (placed at the refined box if given). visibilities: N ints,
    0 grey dotted (refinement hidden), 1 coloured dotted, 2 coloured solid; default 1.
    Returns the Figure (or ``ax.figure``).
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes: give boxes, refined_boxes or both")
    rgb = _as_rgb_uint8(image)
    n = len(boxes if boxes is not None else refined_boxes)
    for name, value in (("boxes", boxes), ("refined_boxes", refined_boxes)):
        if value is not None:
            _check_instances("draw_boxes", rgb, value, None, None, captions=captions)
            if len(value) != n:
                raise ValueError(f"draw_boxes: {name} has {len(value)} rows, expected {n}")
    if masks is not None:
        _check_instances("draw_boxes", rgb, np.zeros((n, 4)), masks, None)
    if visibilities is not None and len(visibilities) != n:
        raise ValueError(f"draw_boxes: visibilities has length {len(visibilities)}, "
                         f"expected {n}")
    fig, ax = _figure_and_axes(ax, (12, 12), show)
    colors = random_colors(n, seed=seed)
    _set_image_limits(ax, rgb.shape[0], rgb.shape[1], rgb.shape[0] // 10, title)
    masked = rgb
    for i in range(n):
        visibility = visibilities[i] if visibilities is not None else 1
        color = "gray" if visibility == 0 else colors[i]
        style = "solid" if visibility == 2 else "dotted"
        alpha = 0.5 if visibility == 0 else 1.0
        if boxes is not None:
            if not np.any(boxes[i]):
                continue
            ax.add_patch(_box_rectangle(boxes[i], linewidth=2, alpha=alpha,
                                        linestyle=style, edgecolor=color,
                                        facecolor="none"))
        anchor = refined_boxes[i] if refined_boxes is not None else boxes[i]
        if refined_boxes is not None and visibility > 0:
            ax.add_patch(_box_rectangle(refined_boxes[i], linewidth=2,
                                        edgecolor=color, facecolor="none"))
            if boxes is not None:
                ax.add_line(lines.Line2D(
                    [float(boxes[i][1]) - 0.5, float(anchor[1]) - 0.5],
                    [float(boxes[i][0]) - 0.5, float(anchor[0]) - 0.5], color=color))
        if captions is not None:
            ax.text(float(anchor[1]), float(anchor[0]), captions[i], size=11,
                    verticalalignment="top", color="w", backgroundcolor="none",
                    bbox={"facecolor": color, "alpha": 0.5, "pad": 2,
                          "edgecolor": "none"})
        if masks is not None:
            mask = np.asarray(masks)[:, :, i].astype(bool)
            masked = apply_mask(masked, mask, colors[i])
            _add_mask_outline(ax, mask, colors[i])
    ax.imshow(masked)
    return _finish(fig, save_path, show)


def display_top_masks(image, mask, class_ids, class_names, limit=4, save_path=None,
                      show=False):
    """Show the image beside one label map per class, for the ``limit`` largest classes.

    mask: bool [H, W, N]; class_ids: [N]. Classes are ranked by total mask area;
    in a class's map each pixel holds the 1-based index (within that class) of the
    last instance covering it, 0 elsewhere. Missing slots show "-" and an empty map.
    Crowd (negative id) and background (0) instances are ignored.
    Returns the Figure.
    """
    rgb = _as_rgb_uint8(image)
    class_ids = np.asarray(class_ids).reshape(-1)
    _, mask, _ = _check_instances("display_top_masks", rgb, np.zeros((len(class_ids), 4)),
                                  mask, class_ids, class_names)
    # Crowd regions (negative ids, as load_mask marks them) are not instances.
    keep = class_ids > 0
    mask, class_ids = mask[:, :, keep], class_ids[keep]
    unique_ids = np.unique(class_ids)
    areas = [mask[:, :, class_ids == c].sum() for c in unique_ids]
    ranked = [int(c) for a, c in sorted(zip(areas, unique_ids), key=lambda t: -t[0])
              if a > 0]
    to_display = [rgb]
    titles = [f"H x W={rgb.shape[0]}x{rgb.shape[1]}"]
    for slot in range(limit):
        class_id = ranked[slot] if slot < len(ranked) else -1
        instances = mask[:, :, class_ids == class_id]
        labels = np.arange(1, instances.shape[-1] + 1)
        label_map = np.max(instances * labels, axis=-1, initial=0)
        to_display.append(label_map)
        titles.append(class_names[class_id] if class_id != -1 else "-")
    return display_images(to_display, titles=titles, cols=limit + 1, cmap="Blues_r",
                          save_path=save_path, show=show)


def plot_precision_recall(AP, precisions, recalls, ax=None, save_path=None, show=False):
    """Plot a precision-recall curve titled with its AP (at IoU 0.5, Matterport's label).

    precisions, recalls: [M] arrays as returned by ``utils.compute_ap``.
    Returns the Figure (or ``ax.figure``).
    """
    precisions, recalls = np.asarray(precisions), np.asarray(recalls)
    if precisions.shape != recalls.shape:
        raise ValueError(f"plot_precision_recall: precisions {precisions.shape} and "
                         f"recalls {recalls.shape} differ in shape")
    fig, ax = _figure_and_axes(ax, (8, 8), show)
    ax.set_title(f"Precision-Recall Curve. AP@50 = {float(AP):.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.plot(recalls, precisions)
    return _finish(fig, save_path, show)


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores, overlaps, class_names,
                  threshold=0.5, ax=None, save_path=None, show=False):
    """Grid of IoU overlaps between predictions (rows) and ground truth (columns).

    gt_class_ids [G], pred_class_ids [P], pred_scores [P]; overlaps [P, G] with rows
    in the order of pred_class_ids. Entries with class id 0 (padding) are dropped
    along with their row / column. Cells above ``threshold`` are labelled "match"
    (same class) or "wrong". Returns the Figure (or ``ax.figure``).
    """
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    pred_class_ids = np.asarray(pred_class_ids).reshape(-1)
    pred_scores = np.asarray(pred_scores).reshape(-1)
    overlaps = np.asarray(overlaps, dtype=np.float64)
    if pred_scores.shape != pred_class_ids.shape:
        raise ValueError(f"plot_overlaps: {len(pred_class_ids)} pred_class_ids but "
                         f"{len(pred_scores)} pred_scores")
    if overlaps.size == 0:
        overlaps = overlaps.reshape(len(pred_class_ids), len(gt_class_ids))
    if overlaps.shape != (len(pred_class_ids), len(gt_class_ids)):
        raise ValueError(f"plot_overlaps: overlaps must be [P, G] = "
                         f"[{len(pred_class_ids)}, {len(gt_class_ids)}], got {overlaps.shape}")
    gt_keep, pred_keep = gt_class_ids != 0, pred_class_ids != 0
    gt_class_ids, pred_class_ids = gt_class_ids[gt_keep], pred_class_ids[pred_keep]
    pred_scores = pred_scores[pred_keep]
    overlaps = overlaps[pred_keep][:, gt_keep]
    fig, ax = _figure_and_axes(ax, (12, 10), show)
    ax.imshow(overlaps if overlaps.size else np.zeros((1, 1)),
              cmap=colormaps["Blues"], vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels([f"{_label(class_names, c)} ({s:.2f})"
                        for c, s in zip(pred_class_ids, pred_scores)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([_label(class_names, c) for c in gt_class_ids], rotation=90)
    contrast = overlaps.max() / 2.0 if overlaps.size else 0.0
    for i, j in itertools.product(range(overlaps.shape[0]), range(overlaps.shape[1])):
        value = overlaps[i, j]
        verdict = ""
        if value > threshold:
            verdict = "match" if gt_class_ids[j] == pred_class_ids[i] else "wrong"
        color = "white" if value > contrast else "black" if value > 0 else "grey"
        ax.text(j, i, f"{value:.3f}\n{verdict}", horizontalalignment="center",
                verticalalignment="center", fontsize=9, color=color)
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Predictions")
    fig.tight_layout()
    return _finish(fig, save_path, show)
