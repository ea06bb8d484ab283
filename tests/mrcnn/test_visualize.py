"""Tests for mrcnn.visualize: numpy rendering exactness, colours, and every figure.

Figures are drawn on 64x64 synthetic images with 2-3 instances; boxes are pixel
(y1, x1, y2, x2) with exclusive y2/x2, masks bool [H, W, N].
"""

import os
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from matplotlib import patches
from matplotlib.figure import Figure
from PIL import Image

from mrcnn import visualize

CLASS_NAMES = ["BG", "square", "disk", "bar"]


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    # Our figures are pyplot-free; only a show=True test registers one with pyplot.
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _box_mask(height, width, box):
    mask = np.zeros((height, width), bool)
    y1, x1, y2, x2 = box
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture
def scene():
    """64x64 image with a square, a disk and a bar; the disk overlaps the square."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:64, :64]
    disk = (yy - 30) ** 2 + (xx - 40) ** 2 <= 8 ** 2
    masks = np.stack([_box_mask(64, 64, (5, 5, 25, 25)), disk,
                      _box_mask(64, 64, (50, 10, 56, 60))], axis=-1)
    boxes = np.array([[5, 5, 25, 25], [22, 32, 39, 49], [50, 10, 56, 60]], np.int32)
    class_ids = np.array([1, 2, 3], np.int32)
    scores = np.array([0.9, 0.8, 0.7])
    colors = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.2, 0.4, 1.0)]
    return image, boxes, masks, class_ids, scores, colors


def _blend_reference(image, mask, color, alpha):
    """Pixel-by-pixel pure-Python version of the documented apply_mask rule (uint8)."""
    out = image.copy()
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            if mask[y, x]:
                for c in range(image.shape[2]):
                    value = float(image[y, x, c]) * (1 - alpha) + alpha * 255 * color[c]
                    out[y, x, c] = min(255, max(0, int(np.rint(value))))
    return out


# ---------------------------------------------------------------------------
# apply_mask, render_instances, random_colors
# ---------------------------------------------------------------------------

def test_apply_mask_hand_computed_values():
    image = np.array([[[100, 0, 255], [10, 20, 30]]], np.uint8)  # [1, 2, 3]
    mask = np.array([[True, False]])
    out = visualize.apply_mask(image, mask, (1.0, 0.2, 0.0), alpha=0.5)
    # 100*0.5 + 127.5 = 177.5 -> 178; 0*0.5 + 0.5*51 = 25.5 -> 26; 255*0.5 = 127.5 -> 128
    np.testing.assert_array_equal(out[0, 0], [178, 26, 128])
    np.testing.assert_array_equal(out[0, 1], [10, 20, 30])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(image, [[[100, 0, 255], [10, 20, 30]]])  # not modified


def test_apply_mask_matches_reference_and_keeps_float():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    mask = rng.random((7, 9)) > 0.5
    color = (0.3, 0.9, 0.05)
    out = visualize.apply_mask(image, mask, color, alpha=0.3)
    np.testing.assert_array_equal(out, _blend_reference(image, mask, color, 0.3))
    floats = image.astype(np.float32)
    out_f = visualize.apply_mask(floats, mask.astype(np.uint8), color, alpha=0.3)
    assert out_f.dtype == np.float32
    expected = np.where(mask[..., None], floats * 0.7 + 0.3 * 255 * np.array(color), floats)
    np.testing.assert_allclose(out_f, expected, rtol=1e-6)


def test_apply_mask_rejects_mismatched_mask():
    with pytest.raises(ValueError, match="apply_mask"):
        visualize.apply_mask(np.zeros((4, 4, 3), np.uint8), np.ones((4, 5), bool), (1, 0, 0))


def test_render_instances_changes_only_masks_and_box_outlines(scene):
    image, boxes, masks, class_ids, scores, colors = scene
    out = visualize.render_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                     scores=scores, colors=colors, alpha=0.4)
    assert out.shape == image.shape and out.dtype == np.uint8
    outline = np.zeros((64, 64), bool)
    for y1, x1, y2, x2 in boxes:
        outline[[y1, y2 - 1], x1:x2] = True
        outline[y1:y2, [x1, x2 - 1]] = True
    changed = np.any(out != image, axis=-1)
    assert not np.any(changed & ~(masks.any(-1) | outline))
    # Masks are blended in order, then outlines painted in solid colour on top.
    expected = image.copy()
    for i in range(3):
        expected = _blend_reference(expected, masks[:, :, i], colors[i], 0.4)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        solid = np.rint(255 * np.array(colors[i])).astype(np.uint8)
        expected[[y1, y2 - 1], x1:x2] = solid
        expected[y1:y2, [x1, x2 - 1]] = solid
    np.testing.assert_array_equal(out, expected)
    # A pixel inside only the square (not on its outline) is one exact blend of red.
    r, g, b = (int(v) for v in image[10, 10])
    np.testing.assert_array_equal(out[10, 10], [round(r * 0.6 + 102), round(g * 0.6),
                                                round(b * 0.6)])


def test_render_instances_zero_instances_and_padding(scene):
    image = scene[0]
    out = visualize.render_instances(image, np.zeros((0, 4)), np.zeros((64, 64, 0), bool),
                                     np.zeros(0, np.int32), CLASS_NAMES)
    np.testing.assert_array_equal(out, image)
    # An all-zero box row is padding: its (non-empty) mask must not be drawn.
    mask = _box_mask(64, 64, (0, 0, 8, 8))[..., None]
    out = visualize.render_instances(image, np.zeros((1, 4)), mask, [1], CLASS_NAMES)
    np.testing.assert_array_equal(out, image)


def test_render_instances_rejects_bad_input(scene):
    image, boxes, masks, class_ids, _, _ = scene
    with pytest.raises(ValueError, match="masks must be"):
        visualize.render_instances(image, boxes, masks[:, :, :2], class_ids, CLASS_NAMES)
    with pytest.raises(ValueError, match="class id 7"):
        visualize.render_instances(image, boxes, masks, [1, 2, 7], CLASS_NAMES)


def test_random_colors_seeded_distinct_and_hsv_spaced():
    a = visualize.random_colors(12, seed=3)
    assert a == visualize.random_colors(12, seed=3)
    assert a != visualize.random_colors(12, seed=4)
    assert len(a) == 12 and len(set(a)) == 12
    assert all(0.0 <= v <= 1.0 for color in a for v in color)
    import colorsys
    hues = sorted(colorsys.rgb_to_hsv(*color)[0] for color in a)
    np.testing.assert_allclose(hues, np.arange(12) / 12, atol=1e-9)
    dim = visualize.random_colors(5, bright=False, seed=0)
    assert all(abs(max(color) - 0.7) < 1e-12 for color in dim)
    assert visualize.random_colors(0) == []


def test_random_colors_unseeded_follows_global_random_state():
    import random
    random.seed(11)
    first = visualize.random_colors(8)
    random.seed(11)
    assert visualize.random_colors(8) == first


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

def test_display_instances_draws_boxes_masks_and_captions(scene):
    image, boxes, masks, class_ids, scores, colors = scene
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      scores=scores, colors=colors, figsize=(4, 4))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, patches.Rectangle)]
    assert [r.get_xy() for r in rects] == [(x1 - 0.5, y1 - 0.5) for y1, x1, _, _ in boxes]
    assert [(r.get_width(), r.get_height()) for r in rects] == \
        [(x2 - x1, y2 - y1) for y1, x1, y2, x2 in boxes]
    assert sum(isinstance(p, patches.Polygon) and not isinstance(p, patches.Rectangle)
               for p in ax.patches) == 3  # one outline per (connected) mask
    assert [t.get_text() for t in ax.texts] == ["square 0.900", "disk 0.800", "bar 0.700"]
    expected = image
    for i in range(3):
        expected = visualize.apply_mask(expected, masks[:, :, i], colors[i])
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)


def test_display_instances_ax_save_path_and_options(scene, tmp_path):
    image, boxes, masks, class_ids, scores, _ = scene
    own = Figure()
    ax = own.add_subplot(1, 2, 2)
    path = tmp_path / "instances.png"
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      ax=ax, show_mask=False, show_bbox=False,
                                      captions=["a", "b", "c"], save_path=str(path))
    assert fig is own
    assert not ax.patches
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), image)
    assert path.stat().st_size > 0
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 0 and png.size[1] > 0


def test_display_instances_zero_instances_and_errors(scene):
    image = scene[0]
    fig = visualize.display_instances(image, np.zeros((0, 4)), np.zeros((64, 64, 0), bool),
                                      np.zeros(0, np.int32), CLASS_NAMES, figsize=(3, 3))
    assert isinstance(fig, Figure) and not fig.axes[0].patches
    fig = visualize.display_instances(image, scene[1][:1], scene[2][:, :, :1], [-2],
                                      CLASS_NAMES, scores=[0.5], figsize=(3, 3))
    assert [t.get_text() for t in fig.axes[0].texts] == ["disk (crowd) 0.500"]
    with pytest.raises(ValueError, match="display_instances.*scores"):
        visualize.display_instances(image, *scene[1:4], CLASS_NAMES, scores=[0.5])


@pytest.mark.filterwarnings("ignore:.*non-interactive:UserWarning")
def test_display_instances_show_uses_pyplot(scene):
    matplotlib.use("Agg")  # this test process only; keeps plt.show() non-blocking
    import matplotlib.pyplot as plt
    image, boxes, masks, class_ids, _, _ = scene
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      figsize=(3, 3), show=True)
    assert fig.number in plt.get_fignums()


def test_module_import_leaves_pyplot_and_tensorflow_alone():
    code = ("import sys, mrcnn.visualize; "
            "print('matplotlib.pyplot' in sys.modules, 'tensorflow' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, check=True, timeout=120)
    assert result.stdout.split() == ["False", "False"]


def test_display_differences_colours_and_captions(scene):
    image, boxes, masks, class_ids, _, _ = scene
    # Prediction 0 reproduces GT square exactly; prediction 1 is a half-size bar
    # (IoU 0.5 with GT bar, below the 0.6 threshold); listed low score first.
    half_bar = _box_mask(64, 64, (50, 10, 56, 35))
    pred_masks = np.stack([half_bar, masks[:, :, 0]], axis=-1)
    pred_boxes = np.array([[50, 10, 56, 35], [5, 5, 25, 25]])
    fig = visualize.display_differences(
        image, boxes, class_ids, masks, pred_boxes, np.array([3, 1]), np.array([0.6, 0.95]),
        pred_masks, CLASS_NAMES, iou_threshold=0.6, score_threshold=0.0)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, patches.Rectangle)]
    edge = [tuple(np.round(r.get_edgecolor()[:3], 3)) for r in rects]
    assert edge == [(0.0, 1.0, 0.0)] * 3 + [(1.0, 0.0, 0.0)] * 2
    # Predictions are drawn in descending score order.
    assert rects[3].get_xy() == (4.5, 4.5) and rects[4].get_xy() == (9.5, 49.5)
    assert [t.get_text() for t in ax.texts] == ["", "", "", "0.95 / 1.00", "0.60 / 0.50"]


def test_display_differences_without_predictions(scene):
    image, boxes, masks, class_ids, _, _ = scene
    fig = visualize.display_differences(
        image, boxes, class_ids, masks, np.zeros((0, 4)), np.zeros(0, np.int32),
        np.zeros(0), np.zeros((64, 64, 0), bool), CLASS_NAMES)
    assert len(fig.axes[0].patches) > 0 and [t.get_text() for t in fig.axes[0].texts] == [""] * 3
    fig = visualize.display_differences(
        image, np.zeros((0, 4)), np.zeros(0, np.int32), np.zeros((64, 64, 0), bool),
        boxes[:1], class_ids[:1], np.array([0.7]), masks[:, :, :1], CLASS_NAMES)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.70 / 0.00"]


def test_display_images_grid_and_titles(scene, tmp_path):
    image, _, masks, *_ = scene
    fig = visualize.display_images([image, masks[:, :, 0], image.astype(np.float32)],
                                   titles=["rgb", "mask", "float"], cols=2,
                                   save_path=str(tmp_path / "grid.png"))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["rgb", "mask", "float"]
    np.testing.assert_array_equal(np.asarray(fig.axes[2].images[0].get_array()), image)
    assert (tmp_path / "grid.png").stat().st_size > 0
    with pytest.raises(ValueError, match="titles"):
        visualize.display_images([image], titles=["a", "b"])


def test_draw_rois(scene):
    image, boxes, _, _, _, _ = scene
    rois = np.concatenate([boxes, [[0, 0, 10, 10]]])
    refined = rois + 2
    roi_masks = np.zeros((4, 14, 14), np.float32)
    roi_masks[:, 3:11, 3:11] = 1.0
    class_ids = np.array([1, 2, 3, 0])
    fig = visualize.draw_rois(image, rois, refined, roi_masks, class_ids, CLASS_NAMES,
                              limit=10, seed=0)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert len(ax.patches) == 3 * 2 + 1  # ROI + refined box per positive, ROI per negative
    assert len(ax.lines) == 3
    assert ax.get_title().startswith("Positive ROIs: 3, negative ROIs: 1")
    drawn = np.asarray(ax.images[0].get_array())
    assert np.any(drawn != image) and np.array_equal(drawn[0:5, 0:5], image[0:5, 0:5])
    fig = visualize.draw_rois(image, rois, refined, roi_masks, class_ids, CLASS_NAMES,
                              limit=2, seed=0)
    assert len(fig.axes[0].patches) <= 4


def test_draw_boxes(scene):
    image, boxes, masks, _, _, _ = scene
    fig = visualize.draw_boxes(image, boxes=boxes, refined_boxes=boxes + 1, masks=masks,
                               captions=["a", "b", "c"], visibilities=[0, 1, 2],
                               title="boxes", seed=0)
    ax = fig.axes[0]
    rects = [p for p in ax.patches if isinstance(p, patches.Rectangle)]
    assert isinstance(fig, Figure) and ax.get_title() == "boxes"
    assert len(rects) == 3 + 2  # refinement hidden for visibility 0
    assert len(ax.lines) == 2 and [t.get_text() for t in ax.texts] == ["a", "b", "c"]
    fig = visualize.draw_boxes(image, refined_boxes=np.zeros((0, 4)))
    assert isinstance(fig, Figure) and not fig.axes[0].patches
    with pytest.raises(ValueError, match="draw_boxes"):
        visualize.draw_boxes(image)


def test_display_top_masks(scene):
    image, _, masks, _, _, _ = scene
    # Two "square" instances (one large), one crowd region, one "bar".
    stacked = np.concatenate([masks, masks[:, :, :1], masks[:, :, 1:2]], axis=-1)
    class_ids = np.array([1, 2, 3, 1, -2])
    fig = visualize.display_top_masks(image, stacked, class_ids, CLASS_NAMES, limit=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    # Areas: square 400 * 2, bar 300, disk 197 (crowd ignored).
    assert [ax.get_title() for ax in fig.axes[1:]] == ["square", "bar", "disk", "-"]
    square_map = np.asarray(fig.axes[1].images[0].get_array())
    assert square_map[10, 10] == 2 and square_map[40, 40] == 0
    assert not np.asarray(fig.axes[4].images[0].get_array()).any()
    empty = visualize.display_top_masks(image, np.zeros((64, 64, 0), bool), [], CLASS_NAMES)
    assert [ax.get_title() for ax in empty.axes[1:]] == ["-"] * 4


def test_plot_precision_recall(tmp_path):
    recalls = np.array([0.0, 0.5, 1.0, 1.0])
    precisions = np.array([1.0, 1.0, 0.5, 0.0])
    fig = visualize.plot_precision_recall(0.75, precisions, recalls,
                                          save_path=str(tmp_path / "pr.png"))
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_title().endswith("AP@50 = 0.750")
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), recalls)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), precisions)
    assert (tmp_path / "pr.png").stat().st_size > 0


def test_plot_overlaps_labels_and_padding():
    overlaps = np.array([[0.9, 0.1, 0.0], [0.0, 0.7, 0.0], [0.2, 0.0, 0.0]])
    fig = visualize.plot_overlaps(np.array([1, 2, 0]), np.array([1, 3, 0]),
                                  np.array([0.9, 0.8, 0.1]), overlaps, CLASS_NAMES)
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in ax.texts]  # 2x2 after dropping padding id 0
    assert texts == ["0.900\nmatch", "0.100\n", "0.000\n", "0.700\nwrong"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["square (0.90)", "bar (0.80)"]
    empty = visualize.plot_overlaps([], [], [], np.zeros((0, 0)), CLASS_NAMES)
    assert isinstance(empty, Figure) and not empty.axes[0].texts
    with pytest.raises(ValueError, match="overlaps must be"):
        visualize.plot_overlaps([1], [1, 2], [0.5, 0.5], np.zeros((1, 1)), CLASS_NAMES)
