"""The figures: siamese_mrcnn.figures (data figures, the one-shot grid and its labels),
siamese_mrcnn.demo_figures and its command line scripts/make_figures.py."""

import os
import subprocess
import sys
import types

import matplotlib.image
import numpy as np
import pytest

from siamese_mrcnn import demo_figures, figures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAKE_FIGURES = os.path.join(REPO, "scripts", "make_figures.py")


def _read_png(path):
    """RGB floats in [0, 1], [H, W, 3]."""
    assert os.path.isfile(path), path
    return matplotlib.image.imread(str(path))[..., :3]


# ---------------------------------------------------------------------- helpers
def test_overlay_categories_by_hand():
    image = np.full((8, 8, 3), 100, np.uint8)
    masks = np.zeros((8, 8, 1), bool)
    masks[1:6, 2:7, 0] = True  # a 5x5 square
    out = figures.overlay_categories(image, masks, [3], {3: (1.0, 0.0, 0.0)}, alpha=0.5)
    # Inside: 0.5 * 100 + 0.5 * 255 * colour, rounded (177.5 -> 178); the square's
    # one-pixel inner rim is solid red; outside: untouched.
    np.testing.assert_array_equal(out[2:5, 3:6], np.broadcast_to([178, 50, 50], (3, 3, 3)))
    rim = masks[..., 0].copy()
    rim[2:5, 3:6] = False
    np.testing.assert_array_equal(out[rim], np.broadcast_to([255, 0, 0], (16, 3)))
    np.testing.assert_array_equal(out[~masks[..., 0]], image[~masks[..., 0]])
    np.testing.assert_array_equal(image, 100)  # the input is not modified


def test_overlay_categories_shares_colour_within_category():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    masks = np.zeros((20, 20, 3), bool)
    masks[2:8, 2:8, 0] = masks[12:18, 12:18, 1] = masks[2:8, 12:18, 2] = True
    colours = figures.category_colours([5, 5, 9], seed=1)
    assert sorted(colours) == [5, 9] and colours[5] != colours[9]
    out = figures.overlay_categories(image, masks, [5, 5, 9], colours)
    rim_colours = [tuple(out[r, c]) for r, c in ((2, 2), (12, 12), (2, 12))]
    assert rim_colours[0] == rim_colours[1] != rim_colours[2]
    outside = ~masks.any(-1)
    np.testing.assert_array_equal(out[outside], image[outside])
    inside = masks.any(-1)
    assert np.mean(np.any(out[inside] != image[inside], axis=-1)) > 0.95


@pytest.mark.parametrize("masks, ids, colours, match", [
    (np.zeros((5, 5, 2), bool), [1], {1: (1, 0, 0)}, "2 masks but 1 class ids"),
    (np.zeros((4, 5, 1), bool), [1], {1: (1, 0, 0)}, "same H, W"),
    (np.zeros((5, 5, 1), bool), [7], {1: (1, 0, 0)}, r"no colour for class ids \[7\]"),
])
def test_overlay_categories_rejects_bad_input(masks, ids, colours, match):
    with pytest.raises(ValueError, match=match):
        figures.overlay_categories(np.zeros((5, 5, 3), np.uint8), masks, ids, colours)


def test_template_tile_colours_seen_and_unseen():
    shape = np.zeros((6, 6), bool)
    shape[1:4, 2:5] = True
    template = types.SimpleNamespace(thumbnail=lambda size: shape)
    seen = figures.template_tile(template, unseen=False, size=6)
    unseen = figures.template_tile(template, unseen=True, size=6)
    np.testing.assert_array_equal(seen[shape], 255)
    np.testing.assert_array_equal(unseen[shape], np.broadcast_to([255, 150, 0], (9, 3)))
    assert not seen[~shape].any() and not unseen[~shape].any()


def test_draw_procedural_examples_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="has no templates"):
        figures.draw_procedural_examples(types.SimpleNamespace(), tmp_path / "x.png", [])
    from samples.procedural import ProceduralOneShotDataset
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(2, image_size=64, num_categories=8, seed=0, scale=(10, 20))
    dataset.prepare()
    with pytest.raises(ValueError, match=r"image ids \[5\] out of range"):
        figures.draw_procedural_examples(dataset, tmp_path / "x.png", [], image_ids=[0, 5])


# ---------------------------------------------------------------------- labels
def _inside(inner, outer, slack=0.5):
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y0 >= outer.y0 - slack and inner.y1 <= outer.y1 + slack)


def test_fit_text_inside_moves_shrinks_and_shortens_by_hand():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2), dpi=100)  # one 200 x 200 pixel axes
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    right = ax.text(0.9, 0.5, "score 0.99", fontsize=10, transform=ax.transAxes)
    long = ax.text(0.0, 0.98, "query: 3 a-category-name-that-is-far-too-long, 12 found",
                   fontsize=10, va="top", transform=ax.transAxes,
                   bbox={"facecolor": "black", "pad": 1.0})
    canvas.draw()
    renderer = canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    assert box.width == pytest.approx(200) and right.get_window_extent(renderer).x1 > 230
    figures.fit_text_inside(right, ax, renderer, pad=2)
    extent = right.get_window_extent(renderer)
    # Moved left only: the right edge 2 pixels inside, same size and height.
    assert extent.x1 == pytest.approx(198, abs=0.6) and right.get_fontsize() == 10
    assert right.get_text() == "score 0.99"
    assert right.get_position()[1] == pytest.approx(0.5)
    figures.fit_text_inside(long, ax, renderer, pad=2, min_fontsize=8)
    # Shrunk to the minimum, then cut with an ellipsis; its box fits too.
    assert long.get_fontsize() == 8 and long.get_text().endswith("…")
    assert long.get_text().startswith("query: 3 a-category")
    assert _inside(figures._text_extent(long, renderer), box.padded(-2))


@pytest.fixture(scope="module")
def quick_model():
    """An inference model of the demo's --quick configuration (random weights)."""
    from siamese_mrcnn.config import QuickConfig
    from siamese_mrcnn.model import SiameseMaskRCNN

    config = QuickConfig.from_dict({"IMAGES_PER_GPU": 1})
    return SiameseMaskRCNN("inference", config, "unused_logs")


@pytest.fixture(scope="module")
def evaluation_images(tmp_path_factory):
    """The demo's quick evaluation images (COCO round trip), 8 categories."""
    from siamese_mrcnn.procedural import make_datasets, procedural_layout, procedural_split

    seen, unseen = procedural_split(8)
    _, evaluation = make_datasets(1, 8, seen, seen + unseen, 0,
                                  str(tmp_path_factory.mktemp("grid")),
                                  procedural_layout(64, 8))
    return evaluation, seen, unseen


def test_grid_labels_lie_inside_their_panels(quick_model, evaluation_images, monkeypatch):
    """Labels stay inside their panels at the demo's sizes, even with class names far
    too long for a panel; every label is drawn (nothing dropped)."""
    evaluation, seen, unseen = evaluation_images
    long_names = [n if i == 0 else f"{n}-with-a-much-longer-descriptive-name"
                  for i, n in enumerate(evaluation.class_names)]
    monkeypatch.setattr(evaluation, "class_names", long_names)
    fig = figures.one_shot_grid_figure(quick_model, evaluation,
                                       {"seen": seen, "unseen": unseen}, quick_model.config,
                                       seed=0, rows=3, title="reference | query")
    assert fig.dpi == 150
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * 2 * 3  # seen and unseen, 3 rows of reference | query
    labels = 0
    for ax in panels:
        box = ax.get_window_extent(renderer)
        assert ax.texts, "every panel is labelled"
        for text in ax.texts:
            assert _inside(figures._text_extent(text, renderer), box), (text.get_text(), box)
            assert text.get_fontsize() >= 4.5
            labels += 1
        # The panel label is the last text of a panel; long names were cut, not dropped.
        label = ax.texts[-1]
        assert label.get_text().startswith(("reference: ", "query: "))
        # It sits in the band above the image: below it, not one pixel of the image.
        image_top = ax.transData.transform((0, -0.5))[1]
        assert figures._text_extent(label, renderer).y0 >= image_top - 0.5
    assert labels >= 12
    for text in fig.texts:  # headers and title inside the figure
        assert _inside(text.get_window_extent(renderer), fig.bbox)


def test_grid_figure_written(tmp_path, quick_model, evaluation_images):
    evaluation, seen, unseen = evaluation_images
    path = figures.draw_one_shot_grid(quick_model, evaluation, {"seen": seen, "unseen": unseen},
                                      quick_model.config, str(tmp_path / "a" / "grid.png"),
                                      seed=0, rows=2)
    pixels = _read_png(path)
    # Two column pairs of 1.5-inch panels and a 0.18-inch gap, at 150 dpi.
    assert pixels.shape[1] == pytest.approx(150 * (1.5 * 4.12 + 0.2), abs=1)
    assert pixels.std() > 0.05
    with pytest.raises(RuntimeError, match="no image shows one of the categories"):
        figures.draw_one_shot_grid(quick_model, evaluation, {"seen": [], "unseen": []},
                                   quick_model.config, str(tmp_path / "b.png"), seed=0)


# ---------------------------------------------------------------------- the demo's figures
def test_demo_arguments():
    demo_args = demo_figures.demo_arguments("runs/demo", quick=True, seed=4,
                                            settings=["TRAIN_BN=false"])
    assert (demo_args.quick, demo_args.seed, demo_args.image_size) == (True, 4, 64)
    assert demo_args.set == [("TRAIN_BN", False)] and demo_args.output_dir == "runs/demo"
    with pytest.raises(demo_figures.FiguresError, match="--categories must be >= 8"):
        demo_figures.demo_arguments("runs/demo", categories=7)
    with pytest.raises(demo_figures.FiguresError, match="UPPER_CASE"):
        demo_figures.demo_arguments("runs/demo", settings=["lower=1"])


def test_data_figure_only(tmp_path):
    out = tmp_path / "figs"
    done = subprocess.run([sys.executable, MAKE_FIGURES, "--skip-model", "--output-dir",
                           str(out), "--quick", "--examples", "4"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["procedural_examples.png"]
    assert f"wrote {out / 'procedural_examples.png'}" in done.stdout
    pixels = _read_png(out / "procedural_examples.png")
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    assert pixels.std() > 0.1
    # The quick layout's first 4 images (8 categories, seed 0) show unseen categories,
    # whose templates are drawn orange (255, 150, 0); seen templates are white.
    orange = np.all(np.abs(pixels - np.array([1.0, 150 / 255, 0.0])) < 0.02, axis=-1)
    white = np.all(pixels > 0.98, axis=-1)
    assert orange.sum() > 100
    assert white.sum() > 100
    for argv in (["--examples", "0"], ["--skip-model", "--checkpoint", "x.h5"]):
        done = subprocess.run([sys.executable, MAKE_FIGURES, *argv], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and "usage: scripts/make_figures.py" in done.stderr


@pytest.fixture(scope="module")
def quick_checkpoint(tmp_path_factory, quick_model):
    """A demo directory holding one checkpoint of the demo's --quick configuration
    (random weights), laid out as the demo writes it."""
    demo_dir = tmp_path_factory.mktemp("demo_run")
    run_dir = demo_dir / f"{quick_model.config.NAME.lower()}20240101T0000"
    run_dir.mkdir()
    path = run_dir / "siamese_mrcnn_0002.h5"
    quick_model.save_weights(str(path))
    return demo_dir, path


def test_model_figures_from_the_last_demo_checkpoint(tmp_path, quick_checkpoint):
    demo_dir, checkpoint = quick_checkpoint
    out = tmp_path / "figs"
    demo_args = demo_figures.demo_arguments(str(demo_dir), quick=True)
    paths, used = demo_figures.draw_model_figures(demo_args, str(out))
    assert used == str(checkpoint)
    assert paths == [str(out / n) for n in ("demo_seen.png", "demo_unseen.png",
                                            "demo_grid.png")]
    assert sorted(os.listdir(out)) == ["demo_grid.png", "demo_seen.png", "demo_unseen.png"]
    for name in ("demo_seen.png", "demo_unseen.png"):
        pixels = _read_png(out / name)
        # One column pair of 1.5-inch panels at 150 dpi, 3 rows.
        assert pixels.shape[1] == pytest.approx(150 * (1.5 * 2 + 0.2), abs=1)
        assert pixels.shape[0] > 600
        assert pixels.std() > 0.05
    # Nothing is left in the demo directory but the checkpoint's run folder.
    assert sorted(os.listdir(demo_dir)) == [checkpoint.parent.name]


def test_missing_checkpoint_says_what_to_do(tmp_path):
    out = tmp_path / "figs"
    done = subprocess.run([sys.executable, MAKE_FIGURES, "--quick", "--demo-dir",
                           str(tmp_path / "no_runs"), "--output-dir", str(out),
                           "--examples", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    message = done.stderr.strip().splitlines()[-1]  # after TensorFlow's start-up lines
    assert message.startswith("make_figures: no demo checkpoint found")
    assert "bash scripts/demo.sh" in message and "--skip-model" in message
    # The data figure does not need the model and is written first.
    assert os.listdir(out) == ["procedural_examples.png"]
    demo_args = demo_figures.demo_arguments(str(tmp_path), quick=True)
    with pytest.raises(demo_figures.FiguresError, match="no such file"):
        demo_figures.load_demo_model(demo_args, str(tmp_path / "nope.h5"))


def test_checkpoint_of_another_configuration_is_named(tmp_path, quick_checkpoint):
    _, checkpoint = quick_checkpoint
    # Without --quick the full demo configuration is built; the quick weights do not fit.
    demo_args = demo_figures.demo_arguments(str(tmp_path))
    with pytest.raises(demo_figures.FiguresError, match=r"(?s)does not fit the "
                                                        r"demo_siamese_mrcnn configuration"
                                                        r".*--quick"):
        demo_figures.load_demo_model(demo_args, str(checkpoint))
