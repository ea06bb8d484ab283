#!/usr/bin/env python
"""The embedded one-shot demo: train, evaluate and draw a small Siamese Mask R-CNN.

    python scripts/demo.py [--minutes M | --steps N | --weights CHECKPOINT] [--seed S]
        [--output-dir runs/demo] [--figures-dir figures] [--images N] [--categories K]
        [--eval-images N] [--runs R] [--quick]

What it does, on the procedural one-shot benchmark (:mod:`samples.procedural`; no
downloads):

1. Categories 1..K are split COCO style: every 4th (ids 1, 5, 9, ...) is *unseen*.
   Training images show only seen categories; evaluation images (another seed) show
   all of them.
2. Trains a CPU-sized Siamese Mask R-CNN (:class:`DemoConfig`: quarter-width
   ResNet-18, narrow FPN and heads, 128-pixel queries, 64-pixel references) from
   random weights on the seen categories, for a time or step budget, with SGD, a
   linear warm-up and a cosine decay of the learning rate. A progress bar shows the steps and the loss.
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
   reference), writes ``results.json`` (``write_report``) and two figures
   (reference | query with predicted masks) for a seen and an unseen category.

Shape shorthand: ``H, W`` image height and width in pixels, ``N`` detections, ``Q``
categories queried in one image, ``S`` shots, ``D`` reference side (TARGET_MAX_DIM).
Boxes are pixel ``(y1, x1, y2, x2)``, y2/x2 exclusive.
"""

import argparse
import math
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # samples/ is not an installed package

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from mrcnn.backends import BACKENDS, select_backend  # noqa: E402
from siamese_mrcnn.config import SiameseConfig  # noqa: E402

from siamese_mrcnn.baselines import BASELINE_SEED_OFFSET  # noqa: E402
from siamese_mrcnn.baselines import WRONG_REFERENCE_NOTE as RANDOM_REFERENCE_NOTE  # noqa: E402


class DemoConfig(SiameseConfig):
    """Siamese Mask R-CNN sized to learn the procedural benchmark in minutes on a CPU.

    The 128x128 images need no resizing; instances are 16-40 pixels, so anchors
    start at 16 pixels. The RPN runs on every other cell (RPN_ANCHOR_STRIDE 2): its
    3x3 conv (512 channels on the 384 matched channels) is the costliest layer at
    this image size, so it and the matching convs are narrowed to 128 channels
    (RPN_CONV_SIZE, MATCHED_CHANNELS; the paper's 512 and 384): with oneDNN and a
    full-width backbone a step of 8 images then takes 0.65-0.9 s on 2 cores, not 1.5 s.
    Batch norm trains (TRAIN_BN): the weights start random, and frozen BN layers at
    their initial statistics leave the classifier stuck at a constant output.
    The ResNet-18 is a quarter as wide (BACKBONE_WIDTH 0.25: 16 to 128 channels):
    a step then takes about 0.32 s, so the 12-minute budget holds about 2200 steps
    on an idle machine, and following the reference needs that many (measured, unseen
    AP50 against a wrong-category reference: no gap after 1000 steps at full width,
    1.7x after 1600 steps and 2.2x after the default 12 minutes at a quarter width).
    """

    NAME = "demo_siamese_mrcnn"
    BACKBONE = "resnet18"
    BACKBONE_WIDTH = 0.25
    TRAIN_BN = True
    IMAGES_PER_GPU = 8
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    TARGET_MIN_DIM = 48
    TARGET_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (16, 32, 64, 128, 256)
    RPN_ANCHOR_STRIDE = 2
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 600
    POST_NMS_ROIS_TRAINING = 100
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 16
    MAX_GT_INSTANCES = 10
    DETECTION_MAX_INSTANCES = 12
    # The corrected evaluation keeps detections down to 0.05 (EvalMode.corrected).
    DETECTION_MIN_CONFIDENCE = 0.05
    MINI_MASK_SHAPE = (28, 28)
    TOP_DOWN_PYRAMID_SIZE = 64
    FPN_FEATUREMAPS = 64
    MATCHED_CHANNELS = 128
    RPN_CONV_SIZE = 128
    FPN_CLASSIF_FC_LAYERS_SIZE = 128
    MASK_HEAD_CONV_SIZE = 16
    LEARNING_RATE = 0.02
    STEPS_PER_EPOCH = 200
    VALIDATION_STEPS = 0


class QuickConfig(DemoConfig):
    """A smoke-test version of :class:`DemoConfig`: 64-pixel queries, tiny heads."""

    NAME = "demo_siamese_mrcnn_quick"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    TARGET_MIN_DIM = 24
    TARGET_MAX_DIM = 32
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_ANCHOR_STRIDE = 1
    PRE_NMS_LIMIT = 256
    POST_NMS_ROIS_TRAINING = 32
    POST_NMS_ROIS_INFERENCE = 16
    TRAIN_ROIS_PER_IMAGE = 8
    MAX_GT_INSTANCES = 6
    DETECTION_MAX_INSTANCES = 6
    MINI_MASK_SHAPE = (14, 14)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_FEATUREMAPS = 32
    MATCHED_CHANNELS = 32
    RPN_CONV_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_HEAD_CONV_SIZE = 16
    STEPS_PER_EPOCH = 2


def make_config(args):
    """The configuration of a run: DemoConfig (QuickConfig with --quick) with the
    arguments' overrides (--lr, --batch, --set KEY=VALUE). With --weights, the
    ``config.json`` of the checkpoint's run directory (if there is one) replaces the
    class defaults, so the model built matches the checkpoint."""
    base = QuickConfig if args.quick else DemoConfig
    overrides = {}
    saved = None if args.weights is None else os.path.join(
        os.path.dirname(os.path.abspath(args.weights)), "config.json")
    if saved is not None and os.path.isfile(saved):
        overrides.update(base.load(saved).to_dict())
        print(f"configuration from {saved}")
    overrides.update(args.set)
    if args.lr is not None:
        overrides["LEARNING_RATE"] = float(args.lr)
    if args.batch is not None:
        overrides["IMAGES_PER_GPU"] = int(args.batch)
    return base.from_dict(overrides) if overrides else base()


def parse_setting(text):
    """"KEY=VALUE" -> (KEY, value); the value is read as JSON when it parses."""
    import json
    key, sep, value = text.partition("=")
    if not sep or not key.isupper():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with an UPPER_CASE config "
                                         f"attribute, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


# ---------------------------------------------------------------------- data
def procedural_layout(args):
    """Keyword arguments of ``load_procedural`` shared by training and evaluation:
    2-3 categories and 2-5 instances per image, instances 14-33% of the image side."""
    size = args.image_size
    return dict(image_size=size, num_categories=args.categories,
                categories_per_image=(2, 3), instances=(2, 5),
                scale=(round(0.14 * size), round(0.33 * size)))


def choose_evaluated(seen, unseen, count, seed):
    """``count`` seen and ``count`` unseen class ids drawn at random (all of a group
    if it has fewer), each list ascending."""
    rng = np.random.default_rng([int(seed), 271828])
    picks = []
    for ids in (seen, unseen):
        ids = np.asarray(ids)
        chosen = ids if len(ids) <= count else rng.choice(ids, count, replace=False)
        picks.append(sorted(int(c) for c in chosen))
    return picks


def make_datasets(args, seen, evaluated):
    """(training dataset, evaluation CocoDataset).

    Training images show only ``seen`` categories (seed ``args.seed``); evaluation
    images (another seed) show only the ``evaluated`` ones, so every category queried
    in an image is one that is scored. The evaluation images are exported as COCO
    files to ``output_dir/eval_coco`` and read back, so the evaluation runs the same
    COCO code as on real COCO.
    """
    from samples.procedural import ProceduralOneShotDataset, export_coco
    from siamese_mrcnn.coco import CocoDataset

    train = ProceduralOneShotDataset()
    train.load_procedural(args.images, categories=seen, seed=args.seed,
                          **procedural_layout(args))
    train.prepare()
    generated = ProceduralOneShotDataset()
    generated.load_procedural(args.eval_images, categories=evaluated,
                              seed=args.seed + 1_000_003, **procedural_layout(args))
    generated.prepare()
    folder = os.path.join(args.output_dir, "eval_coco")
    annotations = export_coco(generated, folder)
    evaluation = CocoDataset()
    evaluation.load_coco_file(annotations, os.path.join(folder, "images"))
    evaluation.prepare()
    # Exported category ids are the procedural class ids, so the split carries over.
    for class_id in evaluation.class_ids[1:]:
        if evaluation.class_names[class_id] != generated.class_names[class_id]:
            raise RuntimeError(f"{annotations}: class {class_id} is "
                               f"{evaluation.class_names[class_id]!r}, expected "
                               f"{generated.class_names[class_id]!r}")
    return train, evaluation


def evaluable_categories(dataset, class_ids):
    """The class ids among ``class_ids`` shown in at least two images of ``dataset``
    (a query's reference must come from another image)."""
    index = dataset.category_image_index
    return [int(c) for c in class_ids if len(index.get(int(c), ())) >= 2]


# ---------------------------------------------------------------------- training
def learning_rate_at(progress, step, base_lr, warmup_steps):
    """Linear warm-up over ``warmup_steps`` steps (from base_lr / 10), then cosine
    decay over ``progress`` in [0, 1] of the budget down to base_lr / 20."""
    warm = min(1.0, 0.1 + 0.9 * step / max(1, warmup_steps))
    cosine = 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    return base_lr * warm * cosine


def make_budget_callback(max_steps, seconds, base_lr, warmup_steps):
    """A Keras callback that stops training after ``max_steps`` steps or ``seconds``
    seconds (whichever is given), sets the learning rate of every step
    (:func:`learning_rate_at`) and shows a tqdm progress bar."""
    import keras
    from tqdm import tqdm

    class TrainingBudget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = 0
            self.last_logs = {}
            self.start = None
            self.bar = None
            # Keras logs the epoch's running mean; each step's own loss is recovered
            # from consecutive means (n * mean_n - (n - 1) * mean_{n-1}).
            self.step_losses = []
            self._running = 0.0

        def progress(self):
            if max_steps is not None:
                return self.steps / max_steps
            return (time.monotonic() - self.start) / seconds

        def on_train_begin(self, logs=None):
            self.start = time.monotonic()
            total = max_steps if max_steps is not None else int(seconds)
            unit = "step" if max_steps is not None else "s"
            self.bar = tqdm(total=total, unit=unit, desc="training", file=sys.stdout,
                            dynamic_ncols=True, mininterval=1.0)

        def on_train_batch_begin(self, batch, logs=None):
            self.model.optimizer.learning_rate = learning_rate_at(
                self.progress(), self.steps, base_lr, warmup_steps)

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.last_logs = {k: float(v) for k, v in (logs or {}).items()}
            running = self.last_logs.get("loss", float("nan"))
            previous = self._running if batch > 0 else 0.0
            self.step_losses.append((batch + 1) * running - batch * previous)
            self._running = running
            if max_steps is not None:
                self.bar.update(1)
            else:
                self.bar.n = min(int(seconds), int(time.monotonic() - self.start))
                self.bar.refresh()
            self.bar.set_postfix(step=self.steps, loss=f"{self.last_logs.get('loss', 0):.3f}",
                                 lr=f"{float(self.model.optimizer.learning_rate):.4f}",
                                 refresh=False)
            if self.progress() >= 1.0:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self.bar.close()

    return TrainingBudget()


def loss_curve(step_losses, window=20):
    """{"first": mean loss of the first ``window`` steps, "last": of the last, "steps"}:
    whether training brought the loss down (the GPU check prints it)."""
    losses = np.asarray(step_losses, dtype=np.float64)
    if losses.size == 0:
        return {"first": None, "last": None, "steps": 0}
    n = min(window, losses.size)
    return {"first": round(float(losses[:n].mean()), 4),
            "last": round(float(losses[-n:].mean()), 4), "steps": int(losses.size),
            "window": n}


def train_model(args, config, train, seen):
    """Train on the seen categories; returns (checkpoint path, training record)."""
    import keras
    from siamese_mrcnn.model import SiameseMaskRCNN

    keras.utils.set_random_seed(args.seed)
    model = SiameseMaskRCNN("training", config, args.output_dir)
    if args.steps is not None:
        max_steps, seconds = int(args.steps), None
        epochs = -(-max_steps // config.STEPS_PER_EPOCH)
    else:
        max_steps, seconds = None, 60.0 * float(args.minutes)
        epochs = 1_000_000  # the callback ends training when the time is up
    budget = make_budget_callback(max_steps, seconds, config.LEARNING_RATE,
                                  warmup_steps=args.warmup)
    start = time.monotonic()
    model.train(train, None, config.LEARNING_RATE, epochs, "all", seed=args.seed,
                custom_callbacks=[budget], verbose=0, active_class_ids=seen)
    elapsed = time.monotonic() - start
    checkpoint = model.find_last()
    record = {"steps": budget.steps, "seconds": round(elapsed, 1),
              "images_seen": budget.steps * config.BATCH_SIZE,
              "final_losses": {k: round(v, 4) for k, v in budget.last_logs.items()},
              "loss_curve": loss_curve(budget.step_losses),
              "checkpoint": checkpoint, "log_dir": model.log_dir}
    return checkpoint, record


# ---------------------------------------------------------------------- evaluation
def evaluate(args, config, checkpoint, evaluation, seen, unseen):
    """(true-reference summary, random-reference summary, inference model)."""
    from siamese_mrcnn.baselines import WrongReference
    from siamese_mrcnn.evaluation import EvalMode, evaluate_one_shot, make_model_detector
    from siamese_mrcnn.model import SiameseMaskRCNN

    mode = EvalMode.corrected()
    # One head batch holds every category queried in an image (detect_multi).
    config = type(config).from_dict(dict(config.to_dict(),
                                         IMAGES_PER_GPU=len(seen) + len(unseen)))
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
    summary = dict(true_summary)
    summary["groups"] = dict(true_summary["groups"])
    for group, stats in random_summary["groups"].items():
        summary["groups"][f"{group}, random ref"] = stats
    summary["random_reference"] = dict(random_summary, how=RANDOM_REFERENCE_NOTE)
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


# ---------------------------------------------------------------------- main
# Defaults of the full demo and of --quick.
DEFAULTS = {"images": (4000, 40), "categories": (80, 8), "eval_categories": (10, 2),
            "eval_images": (100, 6), "warmup": (40, 1), "minutes": (12.0, None),
            "steps": (None, 3), "image_size": (128, 64)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="scripts/demo.py",
        description="Train a small Siamese Mask R-CNN on the seen categories of the "
                    "procedural one-shot benchmark, evaluate one-shot COCO AP on seen "
                    "and unseen categories against a random-reference baseline, and draw "
                    "figures.")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None,
                        help="training time budget in minutes, tracing included (default 12)")
    budget.add_argument("--steps", type=int, default=None,
                        help="train exactly this many steps instead (default with --quick: 3)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of data, weights and references (default 0)")
    parser.add_argument("--output-dir", default=os.path.join("runs", "demo"),
                        help="checkpoints, evaluation data and results.json (default runs/demo)")
    parser.add_argument("--figures-dir", default="figures",
                        help="where demo_seen.png and demo_unseen.png go (default figures)")
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
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default {DemoConfig.LEARNING_RATE})")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"images per step (default {DemoConfig.IMAGES_PER_GPU})")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up steps of the learning rate (default 40)")
    parser.add_argument("--set", type=parse_setting, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a configuration attribute, e.g. --set TRAIN_BN=false")
    parser.add_argument("--weights", default=None, metavar="CHECKPOINT",
                        help="evaluate this checkpoint (.h5 written by the demo) instead of "
                             "training; its run's config.json, when present beside it, "
                             "replaces the demo configuration")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend: tensorflow, jax or torch (default: "
                             "$KERAS_BACKEND, else tensorflow); results.json records it")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny smoke-test version: 64-pixel images, 3 steps, 6 "
                             "evaluation images")
    args = parser.parse_args(argv)
    budget_given = args.minutes is not None or args.steps is not None
    for name, (full, small) in DEFAULTS.items():
        if name in ("minutes", "steps") and (budget_given or args.weights is not None):
            continue
        if getattr(args, name, None) is None:
            setattr(args, name, small if args.quick else full)
    for name in ("images", "categories", "eval_categories", "eval_images", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.categories < 8:
        parser.error("--categories must be >= 8 (every 4th category is unseen; at least "
                     "2 unseen are needed)")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.minutes is not None and args.minutes <= 0:
        parser.error("--minutes must be > 0")
    if args.weights is not None:
        if budget_given:
            parser.error("--weights evaluates a checkpoint without training: it takes no "
                         "--minutes or --steps")
        if not os.path.isfile(args.weights):
            parser.error(f"--weights: no such checkpoint file: {args.weights}")
    return args


def _fmt(value):
    return "-" if value is None else f"{100 * value:.1f}"


def main(argv=None):
    args = parse_args(argv)
    if args.backend:
        select_backend(args.backend)  # before the first import of Keras
    started = time.time()
    wall_start = time.monotonic()
    os.makedirs(args.output_dir, exist_ok=True)
    from samples.procedural import procedural_split
    from siamese_mrcnn.evaluation import EvalMode, format_table, write_report
    from siamese_mrcnn.figures import draw_reference_query_figure

    config = make_config(args)
    seen, unseen = procedural_split(args.categories)
    chosen_seen, chosen_unseen = choose_evaluated(seen, unseen, args.eval_categories, args.seed)
    print(f"procedural one-shot benchmark: {args.categories} categories, {len(seen)} seen, "
          f"{len(unseen)} unseen (ids 1, 5, 9, ...); {args.images} training images of seen "
          f"categories only; {args.eval_images} evaluation images of {len(chosen_seen)} "
          f"seen and {len(chosen_unseen)} unseen categories drawn at random")
    train, evaluation = make_datasets(args, seen, chosen_seen + chosen_unseen)
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
        budget = (f"{args.steps} steps" if args.steps is not None
                  else f"{args.minutes:g} minutes")
        print(f"training {config.NAME} ({config.BACKBONE}, width {config.BACKBONE_WIDTH:g}, "
              f"{config.IMAGE_MAX_DIM}px queries, {config.TARGET_MAX_DIM}px references, "
              f"batch {config.BATCH_SIZE}, peak lr {config.LEARNING_RATE}) for {budget}; the "
              f"first step includes tracing the graph")
        checkpoint, training = train_model(args, config, train, seen)
        print(f"trained {training['steps']} steps ({training['images_seen']} images) in "
              f"{training['seconds']:.0f} s; final losses {training['final_losses']}")
        curve = training["loss_curve"]
        if curve["steps"]:
            print(f"loss: {curve['first']:.3f} (mean of the first {curve['window']} steps) "
                  f"-> {curve['last']:.3f} (mean of the last {curve['window']})")
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
    print(f"({RANDOM_REFERENCE_NOTE})")
    print("\nunseen categories, AP50: true reference vs random wrong-category reference")
    for iou_type, c in comparison.items():
        ratio = "" if c["ratio"] is None else f"  ({c['ratio']:.1f}x)"
        print(f"  {iou_type:5} {_fmt(c['true'])} vs {_fmt(c['random'])}{ratio}")

    figures = []
    for group, ids in (("seen", eval_seen), ("unseen", eval_unseen)):
        path = os.path.join(args.figures_dir, f"demo_{group}.png")
        figures.append(draw_reference_query_figure(
            model, evaluation, ids, config, path, seed=args.seed,
            title=f"{group} categories: reference | query with predicted masks"))
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


if __name__ == "__main__":
    main()
    sys.exit(0)
