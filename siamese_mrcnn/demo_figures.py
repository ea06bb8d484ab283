"""The demo's figures, redrawn from the code and a checkpoint (``scripts/make_figures.py``).

- ``procedural_examples.png`` (:func:`draw_data_figure`): procedural benchmark images
  (the demo's layout and category count, the demo's seed) with their instance masks
  and category names, and the templates of the categories shown; unseen categories
  (every 4th, ids 1, 5, 9, ...) are orange and labelled "unseen". Needs no model.
- ``demo_seen.png``, ``demo_unseen.png``, ``demo_grid.png``
  (:func:`draw_model_figures`): reference | query with predicted masks for the demo's
  seen and unseen evaluated categories, drawn by :func:`siamese_mrcnn.demo.draw_figures`
  on the demo's evaluation images (same seeds, layout and COCO round trip), from a
  checkpoint of the demo's configuration.

Both take the demo's parsed arguments (:func:`demo_arguments`): the figures match a
demo run when given the options that run had. Mistakes (no checkpoint, one of another
configuration, too few evaluation images) raise :class:`FiguresError` saying what to
do.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` instances.
"""

import argparse
import os
import tempfile

from siamese_mrcnn import demo

EXAMPLES_FIGURE = "procedural_examples.png"


class FiguresError(Exception):
    """The figures cannot be drawn as asked; the message says what to do."""


def demo_arguments(demo_dir, quick=False, seed=None, categories=None, eval_categories=None,
                   eval_images=None, settings=()):
    """The demo's arguments (its defaults where an option is None) for a demo run
    whose ``--output-dir`` was ``demo_dir``; ``settings``: its ``--set KEY=VALUE``
    strings. FiguresError for options the demo would refuse."""
    argv = ["--output-dir", str(demo_dir)]
    if quick:
        argv.append("--quick")
    for name, value in (("seed", seed), ("categories", categories),
                        ("eval_categories", eval_categories), ("eval_images", eval_images)):
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    for setting in settings:
        argv += ["--set", setting]
    parser = demo.add_arguments(argparse.ArgumentParser(prog="demo", exit_on_error=False))
    try:
        return demo.finish_arguments(parser.parse_args(argv))
    except (argparse.ArgumentError, demo.DemoArgumentError) as e:
        raise FiguresError(f"invalid demo options {argv}: {e}") from None


def draw_data_figure(demo_args, output_dir, num_images):
    """``procedural_examples.png`` of ``num_images`` images in ``output_dir``; returns
    its path."""
    from siamese_mrcnn.figures import draw_procedural_examples
    from siamese_mrcnn.procedural import generated_dataset, procedural_layout, procedural_split

    layout = procedural_layout(demo_args.image_size, demo_args.categories)
    _, unseen = procedural_split(demo_args.categories)
    # All categories may appear (the demo's training images show only seen ones).
    dataset = generated_dataset(num_images, None, demo_args.seed, layout)
    size = layout["image_size"]
    title = (f"procedural one-shot benchmark ({demo_args.categories} categories, every 4th "
             f"unseen): {size}x{size} images with their instance masks\nand the templates "
             f"of the categories shown; orange: unseen")
    return draw_procedural_examples(dataset, os.path.join(output_dir, EXAMPLES_FIGURE),
                                    unseen, title=title, seed=demo_args.seed)


def load_demo_model(demo_args, checkpoint=None):
    """(inference SiameseMaskRCNN with the checkpoint's weights, config, checkpoint path).

    ``checkpoint`` None: the last checkpoint of the demo's configuration under the
    demo's output directory. FiguresError when there is none or it does not fit.
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
            raise FiguresError(
                f"no demo checkpoint found ({e}). Run `bash scripts/demo.sh` first (with "
                f"--quick here if the demo ran with --quick), pass --checkpoint PATH, or "
                f"--skip-model to draw only the data figure.") from None
    elif not os.path.isfile(checkpoint):
        raise FiguresError(f"--checkpoint {checkpoint}: no such file")
    try:
        model.load_weights(checkpoint, by_name=False)
    except ValueError as e:
        raise FiguresError(
            f"{checkpoint} does not fit the {config.NAME} configuration: {e}\n"
            f"Give the options the demo ran with (e.g. --quick, --set KEY=VALUE).") from None
    return model, config, checkpoint


def draw_model_figures(demo_args, output_dir, checkpoint=None):
    """The demo's result figures (:data:`siamese_mrcnn.demo.FIGURES`) in ``output_dir``
    from a checkpoint (:func:`load_demo_model`). Returns (paths, checkpoint path)."""
    from siamese_mrcnn.procedural import (choose_evaluated, evaluable_categories,
                                          make_datasets, procedural_layout, procedural_split)

    model, config, checkpoint = load_demo_model(demo_args, checkpoint)
    seen, unseen = procedural_split(demo_args.categories)
    chosen_seen, chosen_unseen = choose_evaluated(seen, unseen, demo_args.eval_categories,
                                                  demo_args.seed)
    layout = procedural_layout(demo_args.image_size, demo_args.categories)
    with tempfile.TemporaryDirectory(prefix="make_figures_") as tmp:
        # The demo's evaluation images, exported to COCO and read back as it does; only
        # the export folder differs (and the unused training set is cut to one image).
        _, evaluation = make_datasets(1, demo_args.eval_images, seen,
                                      chosen_seen + chosen_unseen, demo_args.seed, tmp, layout)
        groups = {"seen": evaluable_categories(evaluation, chosen_seen),
                  "unseen": evaluable_categories(evaluation, chosen_unseen)}
        for group, ids in groups.items():
            if not ids:
                raise FiguresError(f"no {group} category is in 2 of the "
                                   f"{demo_args.eval_images} evaluation images; give the "
                                   f"demo's --eval-images")
        paths = demo.draw_figures(model, evaluation, groups, config, output_dir,
                                  demo_args.seed)
    return paths, checkpoint
