"""What ``siamese-mrcnn train``, ``evaluate``, ``detect`` and ``export`` do with parsed
arguments.

Each ``run_*`` checks the arguments and reads every input (datasets, images) before
TensorFlow is imported and a model is built, so mistakes fail fast with a
:class:`~siamese_mrcnn.cli_inputs.CliError`.

Shape shorthand: ``H, W`` query image height and width in pixels, ``N``
detections, ``S`` shots, ``D`` reference side (TARGET_MAX_DIM). Boxes are pixel
``(y1, x1, y2, x2)`` of the original query image, y2/x2 exclusive.
"""

import json
import logging
import os
import re
import sys

import numpy as np

from mrcnn.config import run_config_path
from mrcnn.files import write_json
from siamese_mrcnn.cli_inputs import (PRESETS, CliError, apply_dataset_defaults,
                                      build_config, check_split_flags,
                                      checkpoint_continues_run, comma_list, dataset_kind,
                                      dataset_record, exported_procedural, load_coco_dataset,
                                      parse_box, procedural_dataset, read_image,
                                      resolve_run_split, resolve_weights, run_record)

logger = logging.getLogger(__name__)

CLASS_NAMES = ["BG", "match"]


# ------------------------------------------------------------------ models
def _make_strategy(name):
    """(tf.distribute strategy or None, replicas) of ``--strategy`` on this backend."""
    from mrcnn.backends import BackendError, make_strategy
    try:
        return make_strategy(name)
    except BackendError as e:
        raise CliError(str(e)) from None


def _weights_error(path, error, origin=None, training=False):
    """One line for a weight file that does not load: what does not fit (long name
    lists shortened), and why when that is known (the model came from a preset
    because no config.json was beside the checkpoint, or the file is a plain Mask
    R-CNN checkpoint), with the command line's way out."""
    message = _shorten(str(error))
    if path not in message:
        message = f"{path}: {message}"
    # weights.load_weights suggests an API argument the commands do not have.
    message = message.replace(
        "load with by_name=True to match layers by name",
        "siamese-mrcnn matches layers by name only when training (train --weights FILE)")
    if training and _is_plain_mask_rcnn(path):
        return CliError(f"cannot load weights: {message}. {path} is a plain Mask R-CNN "
                        f"checkpoint: leave out its class-specific heads with --exclude "
                        f"mrcnn_class_logits,mrcnn_bbox_fc,mrcnn_mask")
    if _is_plain_mask_rcnn(path):
        return CliError(f"cannot load weights: {path} is a plain Mask R-CNN checkpoint (no "
                        f"Siamese matching layers fpn_distance_P2..P6); evaluate and detect "
                        f"need a Siamese Mask R-CNN checkpoint. To start training from it: "
                        f"siamese-mrcnn train --weights {path} (its layers are matched by "
                        f"name)")
    if origin is not None and not origin.startswith("the training run's"):
        folder = os.path.dirname(os.path.abspath(path))
        if run_config_path(path) is not None:
            why = (f"--config chose it over the training run's config.json in {folder}; "
                   f"leave --config out to use the run's")
        else:
            why = (f"no config.json was found beside the checkpoint (in {folder}); give "
                   f"the training run's settings (--config, --backbone, --image-size, "
                   f"--reference-size, --set ...) or copy its config.json there")
        message += f". The model was built from {origin} and the flags: {why}"
    return CliError(f"cannot load weights: {message}")


def _shorten(message, limit=400):
    """``message`` with every long bracketed list cut to its first names, and the
    whole cut at ``limit`` characters (a list of 300 weight names is no help)."""
    def cut(match):
        items = [i.strip() for i in match.group(1).split(",")]
        return "[" + ", ".join(items[:3]) + f", ... ({len(items)} in all)]"

    message = re.sub(r"\[([^\[\]]{120,})\]", cut, " ".join(message.split()))
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _is_plain_mask_rcnn(path):
    """True for a weight file with Mask R-CNN's layers (ResNet at top level or its
    heads) but none of Siamese Mask R-CNN's (no fpn_distance_P2, no resnet_model)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f and "layer_names" not in \
                f.attrs else f
            names = set(root.keys())
    except (OSError, KeyError):
        return False
    siamese = {"fpn_distance_P2", "resnet_model"} & names
    matterport = {"res2a_branch2a", "mrcnn_class_logits", "fpn_c5p5"} & names
    return bool(matterport) and not siamese


def _load_inference_weights(model, path, origin=None):
    """All layers from ``path``, strictly: every model layer (and every weight inside
    nested groups) matched by name, with the right shapes; file layers the model
    does not use are named in a warning. ``origin`` says where the model's
    configuration came from (for the error)."""
    from mrcnn.weights import WeightFileError
    try:
        report = model.load_weights(path, by_name=True)
    except (FileNotFoundError, WeightFileError, ValueError) as e:
        raise _weights_error(path, e, origin) from None
    check_names_matched(report, path)


def check_names_matched(report, path):
    """CliError unless every model layer and weight was matched by name (a
    :class:`mrcnn.weights.LoadReport`); print the file layers left unused."""
    if report.missing:
        raise CliError(f"cannot load weights: {path} has no weights for model layer(s) "
                       f"{', '.join(report.missing)}"
                       + (f"; file layers not loaded: {', '.join(report.unused)}"
                          if report.unused else ""))
    if report.by_order:
        raise CliError(f"cannot load weights: {path}: names that match nothing in the "
                       f"model (would pair by position): {'; '.join(report.by_order)}")
    if report.unused:
        print(f"warning: {path}: file layer(s) not used by the model: "
              f"{', '.join(report.unused)}")


def _inference_model(config, logs, path, origin=None):
    from siamese_mrcnn.model import SiameseMaskRCNN
    model = SiameseMaskRCNN("inference", config, logs)
    _load_inference_weights(model, path, origin)
    return model


def _preset_name(args):
    """The NAME ``--weights last`` looks for: --name, else the chosen preset's."""
    return args.name or PRESETS[args.config or "small"].NAME


def _fit_verbosity():
    return 1 if sys.stdout.isatty() else 2  # progress bars only on a terminal


def _print_split(split):
    print(f"split {split.name}: {len(split.seen_ids)} seen classes, "
          f"{len(split.unseen_ids)} unseen"
          + (f" ({', '.join(split.unseen_names[:8])}"
             f"{', ...' if len(split.unseen_names) > 8 else ''})" if split.unseen_ids else ""))


# ------------------------------------------------------------------ train
def _training_datasets(args, kind, record=None, checkpoint=None, in_place=False):
    """(train, validation or None, split) of the training command; the split follows
    :func:`~siamese_mrcnn.cli_inputs.resolve_run_split` for a recorded checkpoint."""

    def resolve(dataset):
        return resolve_run_split(args, dataset, record, checkpoint, in_place)

    if kind == "coco":
        # CocoDataset.load_coco(dir, "train_split") and (dir, "val_split"), with the
        # annotation file (450 MB for 2017) read and held once for both.
        from siamese_mrcnn.coco import divide_train_val, read_coco
        annotation_file = os.path.join(args.coco_dir, "annotations",
                                       f"instances_train{args.year}.json")
        image_dir = os.path.join(args.coco_dir, f"train{args.year}")
        try:
            coco = read_coco(annotation_file)
            train_ids, val_ids = divide_train_val(coco, division=args.val_division)
        except (FileNotFoundError, ValueError) as e:
            raise CliError(f"--coco-dir: {e}") from None
        print(f"train{args.year}: {len(train_ids)} training and {len(val_ids)} validation "
              f"images ({args.val_division} division)")
        train = load_coco_dataset(lambda d: d.load_coco_file(coco, image_dir,
                                                             image_ids=train_ids))
        split = resolve(train)
        val = load_coco_dataset(lambda d: d.load_coco_file(coco, image_dir, image_ids=val_ids))
        return train, val, split
    if kind == "custom":
        if bool(args.val_annotations) != bool(args.val_images):
            raise CliError("--val-annotations and --val-images go together")
        train = load_coco_dataset(lambda d: d.load_coco_file(args.annotations, args.images))
        split = resolve(train)
        val = None
        if args.val_annotations:
            val = load_coco_dataset(lambda d: d.load_coco_file(args.val_annotations,
                                                               args.val_images))
        return train, val, split
    # procedural: the split is made on the class list, then only seen classes are placed
    classes = procedural_dataset(args, 0, args.procedural_seed)
    split = resolve(classes)
    seen = list(split.seen_ids)
    train = procedural_dataset(args, args.procedural_images, args.procedural_seed, seen)
    val = procedural_dataset(args, max(1, args.procedural_images // 10),
                             args.procedural_seed + 1, seen)
    return train, val, split


def _load_training_weights(model, kind, path, exclude, origin=None):
    """Load the starting weights by layer name; at least one layer must match."""
    from mrcnn import weights as weights_io
    if kind == "none":
        print("starting from random weights (--weights none)")
        return
    try:
        if kind == "imagenet":
            report = weights_io.load_weights(model.keras_model.get_layer("resnet_model"),
                                             path, by_name=True, exclude=exclude)
        else:
            report = model.load_weights(path, by_name=True, exclude=exclude)
    except (FileNotFoundError, weights_io.WeightFileError, ValueError) as e:
        raise _weights_error(path, e, origin if kind == "path" else None,
                             training=True) from None
    if not report.loaded:
        raise CliError(f"cannot load weights: no layer of {path} matches the model "
                       f"({model.config.BACKBONE} backbone); file layers: "
                       f"{report.unused[:6]}")
    print(f"loaded {len(report.loaded)} layers from {path}"
          + (f"; randomly initialised: {', '.join(report.missing)}"
             if report.missing and kind != "imagenet" else ""))
    if report.unused:
        print(f"not loaded from {path} (no such layer in the model): "
              f"{', '.join(report.unused)}")
    if report.by_order:
        print(f"warning: {path}: paired by position, the names differ: "
              f"{'; '.join(report.by_order)}")


def run_train(args):
    from siamese_mrcnn.schedule import make_schedule, run_schedule, scaled_learning_rate
    check_split_flags(args)
    try:
        schedule = make_schedule(args.schedule, args.epochs, args.heads_epochs)
    except ValueError as e:
        raise CliError(f"--schedule {args.schedule}: {e}") from None
    exclude = comma_list(args.exclude, "--exclude") if args.exclude else None
    weights_kind, weights_path = resolve_weights(args.weights, args.logs, _preset_name(args),
                                                 "train", args.imagenet_weights)
    # Only a checkpoint has a training run's config.json and run.json beside it.
    checkpoint = weights_path if weights_kind == "path" else None
    record = run_record(checkpoint)
    apply_dataset_defaults(args, record, "train", checkpoint)
    kind = dataset_kind(args)
    config, _ = build_config(args, checkpoint, extra={"GPU_COUNT": 1})  # fail early
    in_place = checkpoint is not None and checkpoint_continues_run(checkpoint, config.NAME)
    train, val, split = _training_datasets(args, kind, record, checkpoint, in_place)
    _print_split(split)

    strategy, replicas = _make_strategy(args.strategy)
    config, origin = build_config(args, checkpoint, extra={"GPU_COUNT": replicas})
    base_lr = args.lr if args.lr is not None else scaled_learning_rate(int(config.BATCH_SIZE))
    config, origin = build_config(args, checkpoint,
                                  extra={"GPU_COUNT": replicas, "LEARNING_RATE": base_lr})
    if not config.VALIDATION_STEPS:
        val = None
    print(f"configuration (from {origin} and the flags):")
    config.display()
    print(f"schedule {args.schedule}: " + ", ".join(
        f"{s.layers} to epoch {s.epochs} at lr {base_lr * s.lr_factor:g}" for s in schedule)
        + f"; global batch {config.BATCH_SIZE} on {replicas} replica(s)")

    import keras
    keras.utils.set_random_seed(args.seed)  # reproducible initialisation of new layers
    from siamese_mrcnn.model import SiameseMaskRCNN
    model = SiameseMaskRCNN("training", config, args.logs, strategy=strategy)
    # Beside the checkpoints, so evaluate and detect know what the model has seen.
    model.run_info = {"dataset": dataset_record(args, kind), "split": split.to_dict()}
    if weights_kind == "imagenet":
        model.run_info["imagenet_weights"] = os.path.abspath(weights_path)
    _load_training_weights(model, weights_kind, weights_path, exclude, origin)
    if model.epoch and model.parent_checkpoint:
        print(f"branching a new run from {model.parent_checkpoint} (epoch {model.epoch}): "
              f"later epochs exist in its run folder, which is left as it is")
    elif model.epoch:
        print(f"resuming {model.log_dir} after epoch {model.epoch}")
    try:
        run_schedule(model, train, val, schedule, base_lr, seed=args.seed,
                     verbose=_fit_verbosity(), active_class_ids=split.seen_ids)
    except ValueError as e:
        if "has none of the training classes" in str(e):
            raise CliError(str(e)) from None
        raise
    print(f"checkpoints and config.json in {model.log_dir} (epoch {model.epoch})")


# ------------------------------------------------------------------ evaluate
def _evaluation_dataset(args, kind):
    """Context manager of the prepared CocoDataset to evaluate on."""
    import contextlib
    if kind == "procedural":
        return exported_procedural(args, args.procedural_images, args.procedural_seed + 2)
    if kind == "coco":
        dataset = load_coco_dataset(lambda d: d.load_coco(args.coco_dir, "val",
                                                          year=args.year))
    else:
        dataset = load_coco_dataset(lambda d: d.load_coco_file(args.annotations, args.images))
    return contextlib.nullcontext(dataset)


def _finish_evaluation(args, summary, config, mode, weights):
    """Print the tables and write the --output report."""
    from siamese_mrcnn.evaluation import format_table, write_report
    from siamese_mrcnn.evaluation_results import COCO_METRICS
    settings = summary.setdefault("settings", {})
    settings["weights"] = weights
    baseline = settings.get("baseline")
    if baseline:
        print(f"baseline {baseline['name']} (its draws seeded by {baseline['seed']}):")
    print(format_table(summary))
    print("\nfull COCO summary (percent):")
    print(format_table(summary, COCO_METRICS))
    for key, what in (("same_image_references", "drew their reference from the query image "
                                                "itself (no other image holds the class)"),
                      ("unreferenced_queries", "were skipped (no image holds a usable "
                                               "instance of the class)")):
        if settings.get(key):
            print(f"note: {settings[key]} of {settings['queries']} queries {what}")
    if args.output:
        seeds = {"reference_seed": summary["settings"].get("seed"),
                 "runs": summary["settings"].get("runs")}
        write_report(args.output, summary, config, seeds, mode)
        print(f"wrote {args.output}")


def _evaluation_baseline(args, split):
    """The --baseline of an evaluation (None without one), seeded by --seed + 7."""
    if not args.baseline:
        return None
    from siamese_mrcnn.baselines import BASELINE_SEED_OFFSET, make_baseline
    evaluated = sorted({int(c) for ids in split.groups.values() for c in ids})
    try:
        baseline = make_baseline(args.baseline, evaluated, args.seed + BASELINE_SEED_OFFSET)
    except ValueError as e:
        raise CliError(f"--baseline {args.baseline}: {e}") from None
    print(f"baseline {baseline.name}: {baseline.note}")
    return baseline


def _combine_reports(args):
    """--combine: the paper's table from the per-split reports."""
    from siamese_mrcnn.evaluation_results import (COCO_METRICS, combine_reports,
                                                  format_paper_table, format_table,
                                                  write_report)
    reports = []
    for path in args.combine:
        try:
            with open(path, encoding="utf-8") as f:
                reports.append(json.load(f))
        except FileNotFoundError:
            raise CliError(f"--combine: report not found: {path}") from None
        except (OSError, ValueError) as e:
            raise CliError(f"--combine: {path} is not a JSON report: {e}") from None
    try:
        combined = combine_reports(reports, args.combine)
    except ValueError as e:
        raise CliError(f"--combine: {e}") from None
    settings = combined["settings"]
    mode = settings["mode"] or {}
    print(f"{len(reports)} split(s) {settings['splits']}, {settings['runs']} run(s), "
          f"{settings['shots']}-shot, {mode.get('name')} mode"
          + (f", baseline {settings['baseline']['name']}" if settings["baseline"] else "")
          + "; each run averaged over the splits, then mean ± 1.96 std / sqrt(runs):")
    paper = format_paper_table(combined)
    print(paper)
    print("\nfull COCO summary (percent):")
    print(format_table(combined, COCO_METRICS))
    if args.output:
        write_report(args.output, combined, None, {"runs": settings["runs"]}, mode,
                     extra={"paper_table": paper.splitlines()})
        print(f"wrote {args.output}")


def run_evaluate(args):
    from siamese_mrcnn.evaluation import EvalMode, merge_partials, summarize
    if args.figure and (args.merge or args.combine):
        raise CliError("--figure draws the model's detections: not with --merge or "
                       "--combine (which run no model)")
    if args.combine:
        _combine_reports(args)
        return
    if args.merge:
        apply_dataset_defaults(args)
        kind = dataset_kind(args)
        for path in args.merge:
            if not os.path.isfile(path):
                raise CliError(f"--merge: partial results file not found: {path}")
        try:
            merged = merge_partials(args.merge)
        except (ValueError, KeyError) as e:
            raise CliError(f"--merge: {e}") from None
        with _evaluation_dataset(args, kind) as dataset:
            try:
                summary = summarize(dataset, merged)
            except ValueError as e:
                raise CliError(f"--merge: {e}") from None
        _finish_evaluation(args, summary, None, merged.settings["mode"],
                           (merged.settings.get("weights") or {}).get("path"))
        return

    check_split_flags(args)
    if args.weights is None:
        raise CliError("evaluate: --weights is required (last or a weights file) unless "
                       "--merge")
    _check_figure_path(args)
    if args.shard >= args.num_shards:
        raise CliError(f"--shard {args.shard} must be below --num-shards {args.num_shards}")
    if args.num_shards > 1 and not args.partial:
        raise CliError("--num-shards > 1 needs --partial FILE for this shard's results")
    mode = EvalMode.from_name(args.mode)
    # The checkpoint's run.json gives the dataset and split defaults. A weights file
    # that is not there is reported after the dataset's own mistakes, as before.
    weights_error = None
    try:
        _, weights_path = resolve_weights(args.weights, args.logs, _preset_name(args),
                                          "evaluate")
    except CliError as e:
        weights_path, weights_error = None, e
    record = run_record(weights_path)
    apply_dataset_defaults(args, record, "evaluate", weights_path)
    kind = dataset_kind(args)
    with _evaluation_dataset(args, kind) as dataset:
        split = resolve_run_split(args, dataset, record, weights_path)
        _print_split(split)
        if weights_error is not None:
            raise weights_error
        # The mode decides how images, references and masks are resampled.
        fixed = {"GPU_COUNT": 1, "RESAMPLING": mode.resampling}
        config, origin = build_config(args, weights_path, extra=fixed)
        if mode.min_confidence is not None:
            config, origin = build_config(args, weights_path, extra=dict(
                fixed, DETECTION_MIN_CONFIDENCE=mode.detection_min_confidence(config)))
        print(f"configuration (from {origin} and the flags):")
        config.display()
        from siamese_mrcnn.evaluation import evaluate_one_shot, make_model_detector
        baseline = _evaluation_baseline(args, split)
        model = _inference_model(config, args.logs, weights_path, origin)
        try:
            result = evaluate_one_shot(
                dataset, make_model_detector(model, mode, weights_path), split, config,
                runs=args.runs, shots=int(config.NUM_TARGETS), mode=mode, seed=args.seed,
                limit=args.limit, shard=args.shard, num_shards=args.num_shards,
                partial_path=args.partial, progress=sys.stderr.isatty(), baseline=baseline)
        except ValueError as e:
            if args.partial and str(e).startswith(str(args.partial)):
                raise CliError(f"--partial: {e}") from None  # written with other settings
            raise
        if args.figure and args.shard == 0:
            _evaluation_figure(args, model, dataset, split, config, mode)
        if args.num_shards > 1:
            print(f"shard {args.shard} of {args.num_shards} done: {args.partial}; once all "
                  f"shards are done, score them with --merge FILE [FILE ...]")
            return
        _finish_evaluation(args, result, config, mode, weights_path)


def _check_figure_path(args):
    """--figure needs the model, and a PNG path in a folder that can be made."""
    if not args.figure:
        return
    if not args.figure.lower().endswith(".png"):
        raise CliError(f"--figure {args.figure}: expected a .png file name")
    folder = os.path.dirname(os.path.abspath(args.figure))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise CliError(f"--figure {args.figure}: {folder} is not a folder")


def _evaluation_figure(args, model, dataset, split, config, mode):
    """--figure: the grid of reference | query with predicted masks, seen and unseen."""
    from siamese_mrcnn.figures import draw_one_shot_grid
    try:
        path = draw_one_shot_grid(model, dataset, split.groups, config, args.figure,
                                  seed=args.seed, rows=args.figure_rows,
                                  subtract_reference_mean=mode.subtract_reference_mean,
                                  resampling=mode.resampling,
                                  title=f"split {split.name}: reference | query with "
                                        f"predicted masks ({mode.name} mode)")
    except RuntimeError as e:  # no image of the classes has a reference elsewhere
        raise CliError(f"--figure: {e}") from None
    print(f"wrote {path}")


# ------------------------------------------------------------------ detect
def _detect_inputs(args):
    """(query image, [(path, image, box or None)]) read from the files; a box is
    checked to lie inside its image, and every reference to be at least
    ``references.MIN_REFERENCE_SIZE`` pixels on a side."""
    from siamese_mrcnn.references import check_reference_size
    pairs_given = bool(args.reference_image or args.reference_box)
    if bool(args.reference) == pairs_given:
        raise CliError("give the references either as --reference REF [REF ...] or as "
                       "--reference-image IMG --reference-box Y1,X1,Y2,X2 pairs")
    query = read_image(args.image, "query image")
    references = []
    try:
        if args.reference:
            for path in args.reference:
                image = read_image(path, "reference image")
                check_reference_size(*image.shape[:2], what=f"reference image {path}")
                references.append((path, image, None))
        else:
            images, boxes = args.reference_image or [], args.reference_box or []
            if len(images) != len(boxes):
                raise CliError(f"{len(images)} --reference-image but {len(boxes)} "
                               f"--reference-box; give one box per image")
            for path, text in zip(images, boxes):
                box = parse_box(text)
                image = read_image(path, "reference image")
                height, width = image.shape[:2]
                if box[0] < 0 or box[1] < 0:
                    raise CliError(f"--reference-box {text} starts outside the {height}x"
                                   f"{width} reference image {path} (pixel coordinates "
                                   f"start at 0)")
                if box[2] > height or box[3] > width:
                    raise CliError(f"--reference-box {text} exceeds the {height}x{width} "
                                   f"reference image {path}")
                check_reference_size(box[2] - box[0], box[3] - box[1],
                                     what=f"--reference-box {text}")
                references.append((path, image, box))
    except ValueError as e:  # below the minimum reference size
        raise CliError(str(e)) from None
    return query, references


def detections_json(result, query_path, query_shape, references, weights, min_confidence,
                    training_run=None):
    """The JSON document of one detection: boxes, scores and COCO RLE masks.

    ``result``: SiameseMaskRCNN.detect's dict (rois [N, 4], scores [N], class_ids [N],
    masks bool [H, W, N]). ``training_run``: the dataset and split the weights'
    training run recorded (run.json), or None when unknown.
    """
    from siamese_mrcnn.coco import encode_masks
    masks = np.asarray(result["masks"], dtype=bool)
    rles = encode_masks(masks)
    detections = []
    for i, (box, score) in enumerate(zip(result["rois"], result["scores"])):
        y1, x1, y2, x2 = (int(v) for v in box)
        detections.append({
            "box": [y1, x1, y2, x2], "bbox_xywh": [x1, y1, x2 - x1, y2 - y1],
            "score": float(score), "class_id": int(result["class_ids"][i]),
            "mask_area": int(masks[:, :, i].sum()), "mask": rles[i]})
    return {
        "query": {"path": os.path.abspath(query_path), "height": int(query_shape[0]),
                  "width": int(query_shape[1])},
        "references": [{"path": os.path.abspath(path),
                        "box": None if box is None else list(box)}
                       for path, _, box in references],
        "weights": os.path.abspath(weights), "min_confidence": float(min_confidence),
        "training_run": training_run,
        "box_format": "y1, x1, y2, x2 in query pixels, y2 and x2 exclusive; bbox_xywh is "
                      "COCO's x, y, width, height",
        "mask_format": "COCO run-length encoding (pycocotools.mask.decode) of the "
                       "query-sized mask",
        "detections": detections}


def detection_figure(query, reference_crops, result, path):
    """Write a PNG: the reference crops (as the model sees them) | the query with
    the detected masks, boxes and scores."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mrcnn import visualize
    count = len(reference_crops)
    fig = Figure(figsize=(3 * count + 8, 6))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, count + 1, width_ratios=[1] * count + [3])
    for i, crop in enumerate(reference_crops):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(crop)
        ax.set_title(f"reference {i + 1}" if count > 1 else "reference")
        ax.axis("off")
    ax = fig.add_subplot(grid[0, count])
    visualize.display_instances(query, result["rois"], result["masks"], result["class_ids"],
                                CLASS_NAMES, scores=result["scores"], ax=ax, seed=0,
                                title=f"{len(result['scores'])} detection(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _training_run_summary(weights_path):
    """{"dataset", "split"} of the weights' training run (run.json), printed so the
    user knows whether the reference's category was seen in training; None (with
    a note) when the checkpoint has no record."""
    record = run_record(weights_path) or {}
    split = record.get("split")
    if not split:
        print(f"{weights_path} has no run record (run.json) beside it: the classes it "
              f"was trained on are unknown")
        return None
    held_out = ", ".join(split.get("unseen_names", ())) or "no class"
    print(f"the model was trained holding out {held_out} (split {split.get('name')}); "
          f"other classes were seen in training")
    return {"dataset": record.get("dataset"),
            "split": {k: split.get(k) for k in ("name", "seen_names", "unseen_names")}}


def run_detect(args):
    from siamese_mrcnn.references import resize_reference
    query, references = _detect_inputs(args)
    _, weights_path = resolve_weights(args.weights, args.logs, _preset_name(args), "detect")
    training_run = _training_run_summary(weights_path)
    extra = {"GPU_COUNT": 1, "IMAGES_PER_GPU": 1, "NUM_TARGETS": len(references)}
    if args.min_confidence is not None:
        extra["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    config, origin = build_config(args, weights_path, extra=extra)
    print(f"configuration (from {origin} and the flags):")
    config.display()

    model = _inference_model(config, args.logs, weights_path, origin)
    # The crops the model sees (before mean subtraction), also drawn in the figure.
    try:
        crops = [resize_reference(image, config) if box is None
                 else model.reference_from_box(image, box)
                 for _, image, box in references]
    except ValueError as e:  # a box too small once resized the query way
        raise CliError(f"--reference-box: {e}") from None
    result = model.detect([crops], [query])[0]
    document = detections_json(result, args.image, query.shape, references, weights_path,
                               config.DETECTION_MIN_CONFIDENCE, training_run)
    os.makedirs(args.output_dir, exist_ok=True)  # only once there is something to write
    json_path = os.path.join(args.output_dir, "detections.json")
    write_json(json_path, document, indent=1, sort_keys=False)
    png_path = os.path.join(args.output_dir, "detections.png")
    detection_figure(query, crops, result, png_path)
    print(f"{len(result['scores'])} detection(s); wrote {json_path} and {png_path}")


# ------------------------------------------------------------------ export
EXPORT_RECORD = "export.json"  # written beside the exported model
ONNX_FILE = "model.onnx"


def _check_export_output(path):
    """CliError unless ``path`` is a new folder (or an empty one) whose parent exists."""
    if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
        raise CliError(f"--output {path} exists and is not an empty folder; choose a new "
                       f"folder (an export never overwrites files)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CliError(f"--output {path}: its parent folder {parent} does not exist")


def run_export(args):
    """Export for serving (:mod:`siamese_mrcnn.export`): into a temporary folder beside
    ``--output``, renamed into place once complete, so an interrupted export leaves
    no half-written model."""
    import importlib.util
    import secrets
    import shutil

    from mrcnn.backends import requested_backend
    backend = requested_backend()
    if backend != "tensorflow":
        raise CliError(f"export writes a TensorFlow graph (the SavedModel, from which the "
                       f"ONNX file is converted), so it runs on the TensorFlow backend, not "
                       f"{backend!r}: run it with --backend tensorflow (weights trained on "
                       f"any backend load there)")
    if args.format == "onnx":
        missing = [m for m in ("tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
        if missing:
            raise CliError(f"--format onnx needs {' and '.join(missing)}: pip install -e "
                           f"'.[export]'")
    _check_export_output(args.output)
    _, weights_path = resolve_weights(args.weights, args.logs, _preset_name(args), "export")
    extra = {"GPU_COUNT": 1, "IMAGES_PER_GPU": 1, "RESAMPLING": "corrected"}
    if args.min_confidence is not None:
        extra["DETECTION_MIN_CONFIDENCE"] = args.min_confidence
    config, origin = build_config(args, weights_path, extra=extra)
    from siamese_mrcnn import export as serving
    try:
        serving.check_exportable(config)
    except serving.ExportError as e:
        raise CliError(str(e)) from None
    print(f"configuration (from {origin} and the flags):")
    config.display()
    model = _inference_model(config, args.logs, weights_path, origin)

    from siamese_mrcnn.evaluation import weights_fingerprint
    output = os.path.abspath(args.output)
    # os.mkdir, unlike tempfile.mkdtemp (0700), gives the umask's permissions, so
    # teammates can read the export as they read checkpoints.
    staging = f"{output}.{secrets.token_hex(4)}.tmp"
    os.mkdir(staging)
    try:
        if args.format == "savedmodel":
            serving.export_savedmodel(model, staging)
            target = output
        else:
            serving.export_onnx(model, os.path.join(staging, ONNX_FILE))
            target = os.path.join(output, ONNX_FILE)
        import keras
        record = {"format": args.format, "model": target,
                  "weights": weights_fingerprint(weights_path),
                  "endpoints": (["serve", "serve_padded"] if args.format == "savedmodel"
                                else ["serve"]),
                  "signature": serving.SIGNATURE,
                  "versions": {"keras": keras.version(), "backend": backend},
                  "config": config.to_dict()}
        with open(os.path.join(staging, EXPORT_RECORD), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        if os.path.isdir(output):
            os.rmdir(output)  # empty (checked): the complete export takes its place
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    what = ("a SavedModel: tf.saved_model.load(DIR).serve(image, references)"
            if args.format == "savedmodel" else
            f"an ONNX file: onnxruntime.InferenceSession('{target}')")
    print(f"exported {weights_path} to {output} ({what}; signature in "
          f"{os.path.join(output, EXPORT_RECORD)})")
