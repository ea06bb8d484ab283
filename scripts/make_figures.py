#!/usr/bin/env python
"""Regenerate every figure in figures/ from the code.

    python scripts/make_figures.py [--output-dir figures] [--checkpoint PATH]
        [--skip-model] [--quick] [--seed S] [--categories K] [--eval-categories N]
        [--eval-images N] [--set KEY=VALUE] [--demo-dir runs/demo] [--examples N]

Figures (:mod:`siamese_mrcnn.demo_figures`):

- ``procedural_examples.png``: procedural benchmark images (the demo's layout and
  category count, seed ``--seed``) with their instance masks and category names, and
  the templates of the categories shown; unseen categories are orange. Needs no model.
- ``demo_seen.png``, ``demo_unseen.png``, ``demo_grid.png``: reference | query with
  predicted masks for the demo's seen and unseen evaluated categories, on the demo's
  evaluation images, from a checkpoint: ``--checkpoint PATH``, by default the last
  one the demo wrote under ``--demo-dir``. Pass the demo's data options (``--quick``,
  ``--seed``, ``--categories``, ``--eval-categories``, ``--eval-images``, ``--set``)
  as they were given to the demo, so the configuration and data agree with the
  checkpoint.

Needs the project installed (``pip install -e .``).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from siamese_mrcnn import demo_figures  # noqa: E402


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
                        help=f"images in {demo_figures.EXAMPLES_FIGURE} (default 8)")
    demo_group = parser.add_argument_group(
        "demo options", "give these as they were given to the demo, so the configuration "
                        "and the evaluation images match the checkpoint")
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


def main(argv=None):
    """Draw the figures; returns {"figures": [paths], "checkpoint": path or None}."""
    args = parse_args(argv)
    try:
        demo_args = demo_figures.demo_arguments(
            args.demo_dir, quick=args.quick, seed=args.seed, categories=args.categories,
            eval_categories=args.eval_categories, eval_images=args.eval_images,
            settings=args.set)
        os.makedirs(args.output_dir, exist_ok=True)
        figures = [demo_figures.draw_data_figure(demo_args, args.output_dir, args.examples)]
        print(f"wrote {figures[0]}")
        checkpoint = None
        if not args.skip_model:
            paths, checkpoint = demo_figures.draw_model_figures(demo_args, args.output_dir,
                                                                args.checkpoint)
            print(f"weights: {checkpoint}")
            for path in paths:
                print(f"wrote {path}")
            figures += paths
    except demo_figures.FiguresError as e:
        raise SystemExit(f"make_figures: {e}") from None
    return {"figures": figures, "checkpoint": checkpoint}


if __name__ == "__main__":
    main()
    sys.exit(0)
