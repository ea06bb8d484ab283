"""scripts/make_figures.py and the data-figure helpers of siamese_mrcnn.figures."""

import os
import types

import matplotlib.image
import numpy as np
import pytest

from tests.scripts import load_script

from siamese_mrcnn import figures

make_figures = load_script("make_figures.py")


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


# ---------------------------------------------------------------------- the script
def test_arguments():
    args = make_figures.parse_args([])
    assert (args.output_dir, args.checkpoint, args.skip_model) == ("figures", None, False)
    assert args.demo_dir == os.path.join("runs", "demo")
    demo_args = make_figures.demo_arguments(
        make_figures.parse_args(["--quick", "--seed", "4", "--set", "TRAIN_BN=false"]),
        make_figures.load_demo_module())
    assert (demo_args.quick, demo_args.seed, demo_args.image_size) == (True, 4, 64)
    assert demo_args.set == [("TRAIN_BN", False)]
    for argv in (["--examples", "0"], ["--skip-model", "--checkpoint", "x.h5"]):
        with pytest.raises(SystemExit):
            make_figures.parse_args(argv)


def test_data_figure_only(tmp_path, capsys):
    out = tmp_path / "figs"
    result = make_figures.main(["--skip-model", "--output-dir", str(out), "--quick",
                                "--examples", "4"])
    assert result == {"figures": [str(out / "procedural_examples.png")], "checkpoint": None}
    assert sorted(os.listdir(out)) == ["procedural_examples.png"]
    assert f"wrote {out / 'procedural_examples.png'}" in capsys.readouterr().out
    pixels = _read_png(out / "procedural_examples.png")
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    assert pixels.std() > 0.1
    # The quick layout's first 4 images (8 categories, seed 0) show unseen categories,
    # whose templates are drawn orange (255, 150, 0); seen templates are white.
    orange = np.all(np.abs(pixels - np.array([1.0, 150 / 255, 0.0])) < 0.02, axis=-1)
    white = np.all(pixels > 0.98, axis=-1)
    assert orange.sum() > 100
    assert white.sum() > 100


@pytest.fixture(scope="module")
def quick_checkpoint(tmp_path_factory):
    """A demo directory holding one checkpoint of the demo's --quick configuration
    (random weights), laid out as the demo writes it."""
    from siamese_mrcnn.model import SiameseMaskRCNN

    demo = make_figures.load_demo_module()
    config = demo.QuickConfig()
    demo_dir = tmp_path_factory.mktemp("demo_run")
    run_dir = demo_dir / f"{config.NAME.lower()}20240101T0000"
    run_dir.mkdir()
    model = SiameseMaskRCNN("inference", config, str(demo_dir))
    path = run_dir / "siamese_mrcnn_0002.h5"
    model.save_weights(str(path))
    return demo_dir, path


def test_model_figures_from_the_last_demo_checkpoint(tmp_path, quick_checkpoint, capsys):
    demo_dir, checkpoint = quick_checkpoint
    out = tmp_path / "figs"
    result = make_figures.main(["--quick", "--demo-dir", str(demo_dir), "--output-dir",
                                str(out), "--examples", "2"])
    assert result["checkpoint"] == str(checkpoint)
    assert f"weights: {checkpoint}" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["demo_seen.png", "demo_unseen.png",
                                       "procedural_examples.png"]
    assert result["figures"][1:] == [str(out / "demo_seen.png"), str(out / "demo_unseen.png")]
    for name in ("demo_seen.png", "demo_unseen.png"):
        pixels = _read_png(out / name)
        # Rows of reference | query, 6.4 inches wide at 110 dpi.
        assert pixels.shape[1] == 704 and pixels.shape[0] > 300
        assert pixels.std() > 0.05
    # Nothing is left in the demo directory but the checkpoint's run folder.
    assert sorted(os.listdir(demo_dir)) == [checkpoint.parent.name]


def test_missing_checkpoint_says_what_to_do(tmp_path):
    out = tmp_path / "figs"
    with pytest.raises(SystemExit, match=r"bash scripts/demo.sh.*--skip-model"):
        make_figures.main(["--quick", "--demo-dir", str(tmp_path / "no_runs"),
                           "--output-dir", str(out), "--examples", "1"])
    # The data figure does not need the model and is written first.
    assert os.listdir(out) == ["procedural_examples.png"]
    with pytest.raises(SystemExit, match="no such file"):
        make_figures.main(["--quick", "--checkpoint", str(tmp_path / "nope.h5"),
                           "--output-dir", str(out), "--examples", "1"])


def test_checkpoint_of_another_configuration_is_named(tmp_path, quick_checkpoint):
    _, checkpoint = quick_checkpoint
    # Without --quick the full DemoConfig is built; the quick weights do not fit it.
    with pytest.raises(SystemExit, match=r"(?s)does not fit the demo_siamese_mrcnn "
                                         r"configuration.*--quick"):
        make_figures.main(["--checkpoint", str(checkpoint), "--output-dir",
                           str(tmp_path / "figs"), "--examples", "1"])
