"""The embedded one-shot demo: train, evaluate and draw a small Siamese Mask R-CNN.

Run by ``siamese-mrcnn demo`` and ``python scripts/demo.py`` (``bash scripts/demo.sh``),
with the same options (:func:`add_arguments`) and the same output (:func:`run`).

What it does, on the procedural one-shot benchmark (:mod:`siamese_mrcnn.procedural`;
no downloads):

1. Categories 1..K are split COCO style: every 4th (ids 1, 5, 9, ...) is *unseen*.
   Training images show only seen categories; evaluation images (another seed) show
   the evaluated ones, seen and unseen.
2. Trains a CPU-sized Siamese Mask R-CNN (the ``demo`` preset,
   :class:`siamese_mrcnn.config.DemoConfig`: quarter-width ResNet-18, narrow FPN and
   heads, 128-pixel queries, 64-pixel references; ``--quick``: the ``quick`` preset)
   from random weights on the seen categories, for a time or step budget, with SGD,
   a linear warm-up and a cosine decay of the learning rate
   (:class:`siamese_mrcnn.callbacks.TrainingBudget`). A progress bar shows the steps
   and the loss. Every ``--ap-every`` epochs, one-shot AP50 on a small held-out set
   (:class:`siamese_mrcnn.callbacks.OneShotAP`) is printed and written to the run's
   ``history.csv``: the gap between seen and unseen categories as it appears.
3. Exports the evaluation images as COCO files and loads them with
   :class:`siamese_mrcnn.coco.CocoDataset`, so evaluation runs the COCO path
   unchanged: :func:`siamese_mrcnn.evaluation.evaluate_one_shot` in the corrected
   mode (every evaluated category queried in every image, references never from the
   query image, scores down to 0.05), COCO AP and AP50 for bbox and segm, on the
   seen and the unseen categories.
4. The baseline: the same model and protocol, but each query's reference replaced by
   one of a *different* category, drawn uniformly from the other evaluated
   categories (:class:`siamese_mrcnn.baselines.WrongReference`, also
   ``siamese-mrcnn evaluate --baseline wrong-reference``). A model that only
   detected "objects" would score the same with both; the gap is what the
   reference adds.
5. Prints both tables and the key comparison (unseen AP50, true vs random
   reference), writes ``results.json`` (``write_report``) and figures (reference |
   query with predicted masks, :func:`siamese_mrcnn.figures.draw_one_shot_grid`):
   ``demo_seen.png``, ``demo_unseen.png`` and both groups in ``demo_grid.png``.

Nothing here imports Keras until :func:`run` has selected the backend, nor the data
modules until they are used.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` detections, ``Q``
categories queried in one image, ``S`` shots, ``D`` reference side (TARGET_MAX_DIM).
Boxes are pixel ``(y1, x1, y2, x2)``, y2/x2 exclusive.
"""

import argparse
import os
import time

from mrcnn.backends import BACKENDS, select_backend
from siamese_mrcnn.cli_inputs import CliError, parse_setting
from siamese_mrcnn.config import DemoConfig, QuickConfig

# The data, evaluation and model modules are imported where used: the options are
# built by ``siamese-mrcnn --help``, which stays instant.

DESCRIPTION = ("Train a small Siamese Mask R-CNN on the seen categories of the procedural "
               "one-shot benchmark, evaluate one-shot COCO AP on seen and unseen categories "
               "against a random-reference baseline, and draw figures.")

# Defaults of the full demo and of --quick.
DEFAULTS = {"images": (4000, 40), "categories": (80, 8), "eval_categories": (10, 2),
            "eval_images": (100, 6), "warmup": (40, 1), "minutes": (12.0, None),
            "steps": (None, 3), "image_size": (128, 64), "ap_every": (2, 1),
            "ap_images": (24, 4)}

FIGURES = {"seen": "demo_seen.png", "unseen": "demo_unseen.png", "grid": "demo_grid.png"}


class DemoArgumentError(ValueError):
    """Demo options that do not go together (the entry point reports it as usage)."""


# ---------------------------------------------------------------------- arguments
def _setting(text):
    """argparse type of --set: "KEY=VALUE" -> (KEY, value), VALUE read as JSON when it
    parses (:func:`siamese_mrcnn.cli_inputs.parse_setting`)."""
    try:
        return parse_setting(text)
    except CliError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser, backend=True):
    """Add the demo's options to ``parser`` (``backend``: also --backend, which the
    ``siamese-mrcnn`` command adds to every sub-command itself)."""
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None,
                        help="training time budget in minutes, tracing and AP evaluations "
                             "included (default 12)")
    budget.add_argument("--steps", type=int, default=None,
                        help="train exactly this many steps instead (default with --quick: 3)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of data, weights and references (default 0)")
    parser.add_argument("--output-dir", default=os.path.join("runs", "demo"),
                        help="checkpoints, evaluation data and results.json (default runs/demo)")
    parser.add_argument("--figures-dir", default="figures",
                        help="where demo_seen.png, demo_unseen.png and demo_grid.png go "
                             "(default figures)")
    parser.add_argument("--images", type=int, default=None,
                        help="training images, seen categories only (default 4000)")
    parser.add_argument("--categories", type=int, default=None,
                        help="categories, every 4th unseen (default 80: 60 seen, 20 unseen)")
    parser.add_argument("--eval-categories", type=int, default=None,
                        help="seen and as many unseen categories evaluated, drawn at random "
                             "(default 10 of each)")
    parser.add_argument("--eval-images", type=int, default=None,
                        help="evaluation images, evaluated categories only (default 100)")
    parser.add_argument("--runs", type=int, default=1,
                        help="evaluation runs with fresh references (default 1)")
    parser.add_argument("--ap-every", type=int, default=None, metavar="N",
                        help="one-shot AP50 (bbox and segm, seen and unseen) on a held-out "
                             "set every N epochs while training, printed and written to the "
                             "run's history.csv; 0: never (default 2, with --quick 1; an "
                             "epoch is STEPS_PER_EPOCH steps: 200, with --quick 2)")
    parser.add_argument("--ap-images", type=int, default=None, metavar="N",
                        help="images of that held-out set (its own seed; default 24, with "
                             "--quick 4)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default {DemoConfig.LEARNING_RATE})")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"images per step (default {DemoConfig.IMAGES_PER_GPU})")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up steps of the learning rate (default 40)")
    parser.add_argument("--set", type=_setting, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a configuration attribute, e.g. --set TRAIN_BN=false")
    parser.add_argument("--weights", default=None, metavar="CHECKPOINT",
                        help="evaluate this checkpoint (.h5 written by the demo) instead of "
                             "training; its run's config.json, when present beside it, "
                             "replaces the demo configuration")
    if backend:
        parser.add_argument("--backend", choices=BACKENDS, default=None,
                            help="Keras backend: tensorflow, jax or torch (default: "
                                 "$KERAS_BACKEND, else tensorflow); results.json records it")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny smoke-test version (the quick preset): 64-pixel images, "
                             "3 steps, 6 evaluation images")
    return parser


def finish_arguments(args):
    """Fill in the defaults of the full demo or of --quick and check the options;
    DemoArgumentError for a bad combination. Returns ``args``."""
    budget_given = args.minutes is not None or args.steps is not None
    for name, (full, small) in DEFAULTS.items():
        if name in ("minutes", "steps") and (budget_given or args.weights is not None):
            continue
        if getattr(args, name, None) is None:
            setattr(args, name, small if args.quick else full)
    for name in ("images", "categories", "eval_categories", "eval_images", "runs",
                 "ap_images"):
        if getattr(args, name) < 1:
            raise DemoArgumentError(f"--{name.replace('_', '-')} must be >= 1")
    if args.ap_every < 0:
        raise DemoArgumentError("--ap-every must be >= 0 (0: no AP while training)")
    if args.categories < 8:
        raise DemoArgumentError("--categories must be >= 8 (every 4th category is unseen; "
                                "at least 2 unseen are needed)")
    if args.steps is not None and args.steps < 1:
        raise DemoArgumentError("--steps must be >= 1")
    if args.minutes is not None and args.minutes <= 0:
        raise DemoArgumentError("--minutes must be > 0")
    if args.weights is not None:
        if budget_given:
            raise DemoArgumentError("--weights evaluates a checkpoint without training: it "
                                    "takes no --minutes or --steps")
        if not os.path.isfile(args.weights):
            raise DemoArgumentError(f"--weights: no such checkpoint file: {args.weights}")
    return args


def parse_args(argv=None, prog="scripts/demo.py"):
    """The demo's arguments, defaults filled in (:func:`finish_arguments`); a mistake
    exits with argparse's usage message (SystemExit 2)."""
    parser = add_arguments(argparse.ArgumentParser(prog=prog, description=DESCRIPTION))
    args = parser.parse_args(argv)
    try:
        return finish_arguments(args)
    except DemoArgumentError as e:
        parser.error(str(e))


def make_config(args):
    """The configuration of a run: the demo preset (the quick one with --quick) with
    the arguments' overrides (--lr, --batch, --set KEY=VALUE). With --weights, the
    ``config.json`` of the checkpoint's run directory (if there is one) replaces the
    preset's values, so the model built matches the checkpoint."""
    from mrcnn.config import read_run_config
    base = QuickConfig if args.quick else DemoConfig
    overrides = {}
    saved_values, saved = read_run_config(args.weights)
    if saved is not None:
        overrides.update(base.from_dict(saved_values).to_dict())
        print(f"configuration from {saved}")
    overrides.update(dict(args.set))
    if args.lr is not None:
        overrides["LEARNING_RATE"] = float(args.lr)
    if args.batch is not None:
        overrides["IMAGES_PER_GPU"] = int(args.batch)
    return base.from_dict(overrides) if overrides else base()


# ---------------------------------------------------------------------- training
def train_model(args, config, train, seen, held_out=None, ap_classes=None):
    """Train on the seen categories; returns (checkpoint path, training record).

    With ``held_out`` (a CocoDataset) and ``args.ap_every`` > 0, one-shot AP50 on
    ``ap_classes`` ({"seen": ids, "unseen": ids}) is measured every ``ap_every``
    epochs; the record's "ap_while_training" lists each evaluation.
    """
    import keras

    from siamese_mrcnn.callbacks import OneShotAP, TrainingBudget, loss_curve
    from siamese_mrcnn.model import SiameseMaskRCNN

    keras.utils.set_random_seed(args.seed)
    model = SiameseMaskRCNN("training", config, args.output_dir)
    if args.steps is not None:
        budget = TrainingBudget(config.LEARNING_RATE, args.warmup, max_steps=int(args.steps))
        epochs = -(-int(args.steps) // config.STEPS_PER_EPOCH)
    else:
        budget = TrainingBudget(config.LEARNING_RATE, args.warmup,
                                seconds=60.0 * float(args.minutes))
        epochs = 1_000_000  # the budget ends training when the time is up
    callbacks = [budget]
    monitor = None
    if held_out is not None and args.ap_every:
        monitor = OneShotAP(model, held_out, ap_classes, every=args.ap_every, seed=args.seed)
        callbacks.append(monitor)
    start = time.monotonic()
    model.train(train, None, config.LEARNING_RATE, epochs, "all", seed=args.seed,
                custom_callbacks=callbacks, verbose=0, active_class_ids=seen)
    elapsed = time.monotonic() - start
    checkpoint = model.find_last()
    record = {"steps": budget.steps, "seconds": round(elapsed, 1),
              "images_seen": budget.steps * config.BATCH_SIZE,
              "final_losses": {k: round(v, 4) for k, v in budget.last_logs.items()},
              "loss_curve": loss_curve(budget.step_losses),
              "checkpoint": checkpoint, "log_dir": model.log_dir}
    if monitor is not None:
        record["ap_while_training"] = {
            "images": monitor.num_images, "every_epochs": monitor.every,
            "classes": monitor.groups, "evaluations": monitor.records,
            "history": os.path.join(model.log_dir, "history.csv")}
    return checkpoint, record


# ---------------------------------------------------------------------- evaluation
def evaluation_config(config, seen, unseen):
    """The configuration of the evaluation model: one head batch holds every category
    queried in an image (``detect_multi``)."""
    return type(config).from_dict(dict(config.to_dict(),
                                       IMAGES_PER_GPU=len(seen) + len(unseen)))


def evaluate(args, config, checkpoint, evaluation, seen, unseen):
    """(true-reference summary, random-reference summary, inference model)."""
    from siamese_mrcnn.baselines import BASELINE_SEED_OFFSET, WrongReference
    from siamese_mrcnn.evaluation import EvalMode, evaluate_one_shot, make_model_detector
    from siamese_mrcnn.model import SiameseMaskRCNN

    mode = EvalMode.corrected()
    config = evaluation_config(config, seen, unseen)
    model = SiameseMaskRCNN("inference", config, args.output_dir)
    model.load_weights(checkpoint, by_name=False)
    detector = make_model_detector(model, mode)
    classes = {"seen": seen, "unseen": unseen}
    common = dict(runs=args.runs, shots=1, mode=mode, seed=args.seed,
                  limit=args.eval_images)
    print(f"\nevaluating {len(evaluation.image_ids)} images x {len(seen) + len(unseen)} "
          f"categories (corrected mode), true references")
    true_summary = evaluate_one_shot(evaluation, detector, classes, config, **common)
    print("the same with random wrong-category references")
    baseline = WrongReference(seen + unseen, seed=args.seed + BASELINE_SEED_OFFSET)
    random_summary = evaluate_one_shot(evaluation, detector, classes, config,
                                       baseline=baseline, **common)
    return true_summary, random_summary, model


def combined_summary(true_summary, random_summary):
    """One summary whose table holds both: groups "seen", "unseen" and
    "seen, random ref", "unseen, random ref"; the baseline's full summary is kept
    under "random_reference"."""
    from siamese_mrcnn.baselines import WRONG_REFERENCE_NOTE

    summary = dict(true_summary)
    summary["groups"] = dict(true_summary["groups"])
    for group, stats in random_summary["groups"].items():
        summary["groups"][f"{group}, random ref"] = stats
    summary["random_reference"] = dict(random_summary, how=WRONG_REFERENCE_NOTE)
    return summary


def key_comparison(true_summary, random_summary):
    """{iou_type: {"true", "random", "ratio"}} of unseen AP50 (fractions)."""
    out = {}
    for iou_type in true_summary["iou_types"]:
        ours = true_summary["groups"]["unseen"][iou_type]["AP50"]["mean"]
        theirs = random_summary["groups"]["unseen"][iou_type]["AP50"]["mean"]
        ratio = None if not ours or not theirs else ours / theirs
        out[iou_type] = {"true": ours, "random": theirs, "ratio": ratio}
    return out


def draw_figures(model, evaluation, groups, config, figures_dir, seed):
    """demo_seen.png, demo_unseen.png (3 rows of one group each) and demo_grid.png
    (both groups side by side) in ``figures_dir``; returns their paths."""
    from siamese_mrcnn.figures import draw_one_shot_grid

    paths = []
    for group, ids in groups.items():
        paths.append(draw_one_shot_grid(
            model, evaluation, {group: ids}, config,
            os.path.join(figures_dir, FIGURES[group]), seed=seed,
            title=f"{group} categories: reference | query with predicted masks"))
    paths.append(draw_one_shot_grid(
        model, evaluation, groups, config, os.path.join(figures_dir, FIGURES["grid"]),
        seed=seed, title="reference | query with predicted masks"))
    return paths


def _fmt(value):
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def _print_ap_while_training(record):
    evaluations = record["evaluations"]
    if not evaluations:
        return
    keys = [k for k in evaluations[0] if k.startswith("ap50_")]
    print(f"\none-shot AP50 (%) while training, {record['images']} held-out images "
          f"(history: {record['history']}):")
    print("  epoch  " + "  ".join(f"{k[len('ap50_'):].replace('_', ' '):>12}" for k in keys))
    for row in evaluations:
        print(f"  {row['epoch']:5d}  " + "  ".join(f"{_fmt(row[k]):>12}" for k in keys))


# ---------------------------------------------------------------------- main
def run(args):
    """Run the demo with finished arguments (:func:`parse_args`), printing as it goes.

    Returns {"summary", "checkpoint", "results", "figures", "seconds", "started"}.
    """
    if args.backend:
        select_backend(args.backend)  # before the first import of Keras
    started = time.time()
    wall_start = time.monotonic()
    os.makedirs(args.output_dir, exist_ok=True)
    from siamese_mrcnn.baselines import BASELINE_SEED_OFFSET, WRONG_REFERENCE_NOTE
    from siamese_mrcnn.evaluation import EvalMode, format_table, write_report
    from siamese_mrcnn.procedural import (choose_evaluated, evaluable_categories,
                                          held_out_dataset, make_datasets,
                                          procedural_layout, procedural_split)

    config = make_config(args)
    layout = procedural_layout(args.image_size, args.categories)
    seen, unseen = procedural_split(args.categories)
    chosen_seen, chosen_unseen = choose_evaluated(seen, unseen, args.eval_categories, args.seed)
    print(f"procedural one-shot benchmark: {args.categories} categories, {len(seen)} seen, "
          f"{len(unseen)} unseen (ids 1, 5, 9, ...); {args.images} training images of seen "
          f"categories only; {args.eval_images} evaluation images of {len(chosen_seen)} "
          f"seen and {len(chosen_unseen)} unseen categories drawn at random")
    train, evaluation = make_datasets(args.images, args.eval_images, seen,
                                      chosen_seen + chosen_unseen, args.seed,
                                      os.path.join(args.output_dir, "eval_coco"), layout)
    # A query's reference comes from another image, so a category needs two images.
    eval_seen, eval_unseen = (evaluable_categories(evaluation, ids)
                              for ids in (chosen_seen, chosen_unseen))
    dropped = sorted(set(chosen_seen + chosen_unseen) - set(eval_seen + eval_unseen))
    if dropped:
        print(f"not evaluated (in fewer than 2 evaluation images): categories {dropped}")
    if not eval_seen or not eval_unseen:
        raise SystemExit("too few evaluation images: no seen or no unseen category is in "
                         "2 of them; raise --eval-images")
    if args.weights is None:
        held_out, ap_classes = None, None
        if args.ap_every:
            held_out = held_out_dataset(args.ap_images, eval_seen + eval_unseen, args.seed,
                                        os.path.join(args.output_dir, "held_out_coco"), layout)
            # As in the evaluation, a category needs two images for a reference from
            # another one; a group with none keeps all its categories.
            ap_classes = {group: evaluable_categories(held_out, ids) or ids
                          for group, ids in (("seen", eval_seen), ("unseen", eval_unseen))}
            print(f"one-shot AP50 every {args.ap_every} epoch(s) of {config.STEPS_PER_EPOCH} "
                  f"steps on {args.ap_images} held-out images (another seed) of the "
                  f"evaluated categories")
        budget = (f"{args.steps} steps" if args.steps is not None
                  else f"{args.minutes:g} minutes")
        print(f"training {config.NAME} ({config.BACKBONE}, width {config.BACKBONE_WIDTH:g}, "
              f"{config.IMAGE_MAX_DIM}px queries, {config.TARGET_MAX_DIM}px references, "
              f"batch {config.BATCH_SIZE}, peak lr {config.LEARNING_RATE}) for {budget}; the "
              f"first step includes tracing the graph")
        checkpoint, training = train_model(args, config, train, seen, held_out, ap_classes)
        print(f"trained {training['steps']} steps ({training['images_seen']} images) in "
              f"{training['seconds']:.0f} s; final losses {training['final_losses']}")
        curve = training["loss_curve"]
        if curve["steps"]:
            print(f"loss: {curve['first']:.3f} (mean of the first {curve['window']} steps) "
                  f"-> {curve['last']:.3f} (mean of the last {curve['window']})")
        if "ap_while_training" in training:
            _print_ap_while_training(training["ap_while_training"])
    else:
        checkpoint = os.path.abspath(args.weights)
        training = {"steps": 0, "weights": checkpoint}
        print(f"no training: evaluating {checkpoint}")

    true_summary, random_summary, model = evaluate(args, config, checkpoint, evaluation,
                                                   eval_seen, eval_unseen)
    summary = combined_summary(true_summary, random_summary)
    comparison = key_comparison(true_summary, random_summary)
    summary["comparison"] = {"unseen_AP50": comparison}
    summary["training"] = training
    print("\none-shot COCO AP (%), corrected mode, "
          f"{args.runs} run(s) over {len(evaluation.image_ids)} images:")
    print(format_table(summary))
    print(f"({WRONG_REFERENCE_NOTE})")
    print("\nunseen categories, AP50: true reference vs random wrong-category reference")
    for iou_type, c in comparison.items():
        ratio = "" if c["ratio"] is None else f"  ({c['ratio']:.1f}x)"
        print(f"  {iou_type:5} {_fmt(c['true'])} vs {_fmt(c['random'])}{ratio}")

    figures = draw_figures(model, evaluation, {"seen": eval_seen, "unseen": eval_unseen},
                           model.config, args.figures_dir, args.seed)
    results = os.path.join(args.output_dir, "results.json")
    seeds = {"seed": args.seed, "reference_seed": args.seed,
             "random_reference_seed": args.seed + BASELINE_SEED_OFFSET, "runs": args.runs}
    write_report(results, summary, config, seeds, EvalMode.corrected())
    wall = time.monotonic() - wall_start
    print(f"\ndone in {wall / 60:.1f} min")
    print(f"checkpoint: {checkpoint}")
    print(f"results:    {results}")
    print("figures:    " + ", ".join(figures))
    return {"summary": summary, "checkpoint": checkpoint, "results": results,
            "figures": figures, "seconds": wall, "started": started}


def run_cli(args):
    """``siamese-mrcnn demo``: :func:`run` after :func:`finish_arguments`, a bad
    combination of options reported as a CliError (one line, exit status 2)."""
    try:
        finish_arguments(args)
    except DemoArgumentError as e:
        raise CliError(str(e)) from None
    return run(args)
