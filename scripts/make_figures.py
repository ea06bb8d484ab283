#!/usr/bin/env python
"""Regenerate every figure in figures/ from the code.

    python scripts/make_figures.py [--output-dir figures] [--checkpoint PATH]
        [--skip-model] [--quick] [--seed S] [--categories K] [--eval-categories N]
        [--eval-images N] [--set KEY=VALUE] [--demo-dir runs/demo] [--examples N]

Figures:

- ``procedural_examples.png``: procedural benchmark images (the demo's layout and
  category count, seed ``--seed``) with their instance masks and category names, and
  the templates of the categories shown; unseen categories (every 4th, ids 1, 5, 9,
  ...) are orange and labelled "unseen". Needs no model.
- ``demo_seen.png``, ``demo_unseen.png``: reference | query with predicted masks for
  the demo's seen and unseen evaluated categories, drawn by
  :func:`siamese_mrcnn.figures.draw_reference_query_figure` on the demo's evaluation
  images (same seeds and layout: the data functions of ``scripts/demo.py`` are
  reused), from a checkpoint: ``--checkpoint PATH``, by default the last one the
  demo wrote under ``--demo-dir``. Pass the demo's data options (``--quick``,
  ``--seed``, ``--categories``, ``--eval-categories``, ``--eval-images``, ``--set``)
  as they were given to the demo, so the configuration and data agree with the
  checkpoint.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances.
"""

import argparse
import functools
import importlib.util
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # samples/ when run from a checkout without installing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES_FIGURE = "procedural_examples.png"
MODEL_FIGURES = {"seen": "demo_seen.png", "unseen": "demo_unseen.png"}


@functools.lru_cache(maxsize=1)
def load_demo_module():
    """``scripts/demo.py`` as a module (it is a script, not part of a package)."""
    path = os.path.join(REPO, "scripts", "demo.py")
    spec = importlib.util.spec_from_file_location("siamese_mrcnn_demo_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="scripts/make_figures.py",
        description="Regenerate the figures in figures/: the procedural benchmark "
                    "examples and, from a demo checkpoint, the demo's reference | query "
                    "figures for seen and unseen categories.")
    parser.add_argument("--output-dir", default="figures",
                        help="where the PNG files go (default figures)")
    parser.add_argument("--checkpoint", default=None,
                        help="weight file (.h5) for the model figures (default: the last "
                             "checkpoint of the demo's configuration under --demo-dir)")
    parser.add_argument("--skip-model", action="store_true",
                        help="draw only the data figure (no checkpoint needed)")
    parser.add_argument("--demo-dir", default=os.path.join("runs", "demo"),
                        help="the demo's --output-dir, searched for checkpoints "
                             "(default runs/demo)")
    parser.add_argument("--examples", type=int, default=8,
                        help=f"images in {EXAMPLES_FIGURE} (default 8)")
    demo_group = parser.add_argument_group(
        "demo options", "give these as they were given to scripts/demo.py, so the "
                        "configuration and the evaluation images match the checkpoint")
    demo_group.add_argument("--quick", action="store_true",
                            help="the demo ran with --quick (64-pixel images)")
    demo_group.add_argument("--seed", type=int, default=None, help="the demo's --seed")
    demo_group.add_argument("--categories", type=int, default=None,
                            help="the demo's --categories")
    demo_group.add_argument("--eval-categories", type=int, default=None,
                            help="the demo's --eval-categories")
    demo_group.add_argument("--eval-images", type=int, default=None,
                            help="the demo's --eval-images")
    demo_group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="the demo's configuration overrides (--set), repeatable")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be >= 1")
    if args.checkpoint is not None and args.skip_model:
        parser.error("--checkpoint and --skip-model exclude each other")
    return args


def demo_arguments(args, demo):
    """The demo's parsed arguments for the options given here (its defaults otherwise)."""
    argv = ["--output-dir", args.demo_dir]
    if args.quick:
        argv.append("--quick")
    for name in ("seed", "categories", "eval_categories", "eval_images"):
        value = getattr(args, name)
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    for setting in args.set:
        argv += ["--set", setting]
    try:
        return demo.parse_args(argv)
    except SystemExit as e:
        raise SystemExit(f"make_figures: invalid demo options {argv}") from e


def draw_data_figure(demo_args, output_dir, num_images):
    """``procedural_examples.png`` in ``output_dir``; returns its path."""
    from samples.procedural import ProceduralOneShotDataset, procedural_split
    from siamese_mrcnn.figures import draw_procedural_examples

    demo = load_demo_module()
    layout = demo.procedural_layout(demo_args)
    _, unseen = procedural_split(demo_args.categories)
    dataset = ProceduralOneShotDataset()
    # All categories may appear (the demo's training images show only seen ones).
    dataset.load_procedural(num_images, seed=demo_args.seed, **layout)
    dataset.prepare()
    size = layout["image_size"]
    title = (f"procedural one-shot benchmark ({demo_args.categories} categories, every 4th "
             f"unseen): {size}x{size} images with their instance masks\nand the templates "
             f"of the categories shown; orange: unseen")
    return draw_procedural_examples(dataset, os.path.join(output_dir, EXAMPLES_FIGURE),
                                    unseen, title=title, seed=demo_args.seed)


def load_model(demo, demo_args, checkpoint):
    """(inference SiameseMaskRCNN with the checkpoint's weights, config, checkpoint path).

    ``checkpoint`` None: the last checkpoint of the demo's configuration under the
    demo's output directory; SystemExit with what to do when there is none.
    """
    from siamese_mrcnn.model import SiameseMaskRCNN

    # Detection runs one reference set at a time here, so the batch holds one query.
    config = demo.make_config(demo_args)
    config = type(config).from_dict(dict(config.to_dict(), IMAGES_PER_GPU=1))
    model = SiameseMaskRCNN("inference", config, demo_args.output_dir)
    if checkpoint is None:
        try:
            checkpoint = model.find_last()
        except FileNotFoundError as e:
            raise SystemExit(
                f"make_figures: no demo checkpoint found ({e}). Run `bash scripts/demo.sh` "
                f"first (with --quick here if the demo ran with --quick), pass "
                f"--checkpoint PATH, or --skip-model to draw only the data figure.") from None
    elif not os.path.isfile(checkpoint):
        raise SystemExit(f"make_figures: --checkpoint {checkpoint}: no such file")
    try:
        model.load_weights(checkpoint, by_name=False)
    except ValueError as e:
        raise SystemExit(
            f"make_figures: {checkpoint} does not fit the {config.NAME} configuration: {e}\n"
            f"Give the options the demo ran with (e.g. --quick, --set KEY=VALUE).") from None
    return model, config, checkpoint


def draw_model_figures(demo_args, output_dir, checkpoint=None):
    """``demo_seen.png`` and ``demo_unseen.png`` in ``output_dir`` from a checkpoint.

    Returns (list of the two paths, checkpoint path used).
    """
    from samples.procedural import procedural_split
    from siamese_mrcnn.figures import draw_reference_query_figure

    demo = load_demo_module()
    model, config, checkpoint = load_model(demo, demo_args, checkpoint)
    seen, unseen = procedural_split(demo_args.categories)
    chosen_seen, chosen_unseen = demo.choose_evaluated(seen, unseen,
                                                       demo_args.eval_categories,
                                                       demo_args.seed)
    paths = []
    with tempfile.TemporaryDirectory(prefix="make_figures_") as tmp:
        # The demo's evaluation images, exported to COCO and read back as it does; only
        # the export folder differs (and the unused training set is cut to one image).
        data_args = argparse.Namespace(**dict(vars(demo_args), images=1, output_dir=tmp))
        _, evaluation = demo.make_datasets(data_args, seen, chosen_seen + chosen_unseen)
        groups = {"seen": demo.evaluable_categories(evaluation, chosen_seen),
                  "unseen": demo.evaluable_categories(evaluation, chosen_unseen)}
        for group, ids in groups.items():
            if not ids:
                raise SystemExit(f"make_figures: no {group} category is in 2 of the "
                                 f"{demo_args.eval_images} evaluation images; give the "
                                 f"demo's --eval-images")
            paths.append(draw_reference_query_figure(
                model, evaluation, ids, config,
                os.path.join(output_dir, MODEL_FIGURES[group]), seed=demo_args.seed,
                title=f"{group} categories: reference | query with predicted masks"))
    return paths, checkpoint


def main(argv=None):
    """Draw the figures; returns {"figures": [paths], "checkpoint": path or None}."""
    args = parse_args(argv)
    demo = load_demo_module()
    demo_args = demo_arguments(args, demo)
    os.makedirs(args.output_dir, exist_ok=True)
    figures = [draw_data_figure(demo_args, args.output_dir, args.examples)]
    print(f"wrote {figures[0]}")
    checkpoint = None
    if not args.skip_model:
        paths, checkpoint = draw_model_figures(demo_args, args.output_dir, args.checkpoint)
        print(f"weights: {checkpoint}")
        for path in paths:
            print(f"wrote {path}")
        figures += paths
    return {"figures": figures, "checkpoint": checkpoint}


if __name__ == "__main__":
    main()
    sys.exit(0)
