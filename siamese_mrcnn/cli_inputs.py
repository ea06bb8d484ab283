"""Turning command-line arguments into configs, datasets, splits, weights and images.

Used by :mod:`siamese_mrcnn.cli` and :mod:`siamese_mrcnn.commands`. Nothing here
imports TensorFlow (except ``last_checkpoint``, which asks the model class), so
argument mistakes are reported in a second, before a model is built. Every user
mistake raises :class:`CliError` with a one-line message naming the offending path
or value.

Shape shorthand: ``H, W`` image height and width in pixels. Boxes are pixel
``(y1, x1, y2, x2)`` with y2/x2 exclusive.
"""

import contextlib
import json
import logging
import os
import tempfile
import types

from mrcnn.config import ConfigError, read_run_config
from siamese_mrcnn.config import PRESETS, SiameseConfig

logger = logging.getLogger(__name__)

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
RUN_RECORD_FILE = "run.json"  # MaskRCNN.RUN_RECORD_FILE: parent, dataset, split


class CliError(Exception):
    """A user mistake on the command line; ``main`` prints it as one line, exit 2."""


# ------------------------------------------------------------------ small parsers
def comma_list(text, what):
    """"a,b, c" -> ["a", "b", "c"]; CliError for an empty list or item."""
    items = [s.strip() for s in str(text).split(",")]
    if not items or any(not s for s in items):
        raise CliError(f"{what}: expected a comma-separated list, got {text!r}")
    return items


def int_list(text, what):
    try:
        return [int(s) for s in comma_list(text, what)]
    except ValueError:
        raise CliError(f"{what}: expected comma-separated integers, got {text!r}") from None


def parse_box(text, what="--reference-box"):
    """"y1,x1,y2,x2" -> 4 ints, a pixel box with y2 > y1 and x2 > x1. Negative values
    parse: whether the box lies inside its image is checked against the image."""
    values = int_list(text, what)
    if len(values) != 4:
        raise CliError(f"{what}: expected 4 integers y1,x1,y2,x2, got {text!r}")
    y1, x1, y2, x2 = values
    if y2 <= y1 or x2 <= x1:
        raise CliError(f"{what}: {text!r} is not a box y1,x1,y2,x2 with y1 < y2 and "
                       f"x1 < x2 (pixels, y2/x2 exclusive)")
    return values


_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")


def parse_setting(text):
    """"KEY=VALUE" -> (KEY, value); VALUE is read as JSON when it parses, else kept
    as a string (so NAME=my_run and RPN_ANCHOR_SCALES=[8,16,32,64,128] both work).
    Switches are read strictly by :func:`coerce_setting`."""
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key or not key.isupper():
        raise CliError(f"--set: expected KEY=VALUE with an UPPER_CASE config attribute, "
                       f"got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value


def coerce_setting(config_cls, key, value, text=None):
    """A --set value for attribute ``key`` of ``config_cls``: a switch (an attribute
    whose default is a bool, e.g. TRAIN_BN) takes only true/false, yes/no, on/off or
    1/0 (any case); anything else raises CliError. Other values pass unchanged (the
    config's validation checks them)."""
    if not isinstance(getattr(config_cls, key, None), bool) or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise CliError(f"--set {text or f'{key}={value}'}: {key} is a switch; expected true or "
                   f"false (also yes/no, on/off, 1/0)")


# ------------------------------------------------------------------ configuration
def run_record(weights_path):
    """The ``run.json`` a training run wrote beside a checkpoint (its parent, dataset
    and class split), as a dict; None when there is none or it does not parse."""
    if not weights_path:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(weights_path)), RUN_RECORD_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _scaled_min_dim(size, preset_min, preset_max):
    """The preset's min/max ratio applied to a new max dim (512 -> 400 for Small)."""
    return max(1, int(round(size * preset_min / preset_max)))


def config_overrides(args):
    """{ATTRIBUTE: value} set by the configuration flags that were given."""
    out = {}
    if getattr(args, "name", None):
        out["NAME"] = args.name
    if getattr(args, "images_per_gpu", None) is not None:
        out["IMAGES_PER_GPU"] = args.images_per_gpu
    if getattr(args, "steps_per_epoch", None) is not None:
        out["STEPS_PER_EPOCH"] = args.steps_per_epoch
    if getattr(args, "validation_steps", None) is not None:
        out["VALIDATION_STEPS"] = args.validation_steps
    if getattr(args, "backbone", None):
        out["BACKBONE"] = args.backbone
    if getattr(args, "shots", None) is not None:
        out["NUM_TARGETS"] = args.shots
    if getattr(args, "anchor_scales", None):
        scales = int_list(args.anchor_scales, "--anchor-scales")
        out["RPN_ANCHOR_SCALES"] = tuple(scales)
    return out


def build_config(args, weights_path=None, extra=None):
    """The effective configuration of a command.

    Base: the ``--config`` preset when given; otherwise the ``config.json`` saved by
    training beside ``weights_path`` when there is one; otherwise Small. Then, in this
    order: the size flags (``--image-size``, ``--reference-size``), the other flags,
    ``--set``, and ``extra``: what the command itself must set (GPU_COUNT = replicas,
    a mode's DETECTION_MIN_CONFIDENCE, ...), which no flag can contradict.

    Returns (config, description of the base). Raises CliError for an invalid value.
    """
    preset_name = getattr(args, "config", None)
    try:
        values, saved = (None, None) if preset_name else read_run_config(weights_path)
    except ConfigError as e:
        raise CliError(str(e)) from None
    if saved:
        base_cls, origin = SiameseConfig, f"the training run's {saved}"
    else:
        values = {}
        base_cls = PRESETS[preset_name or "small"]
        origin = f"the {preset_name or 'small'} preset"
    reference = {**{k: getattr(base_cls, k) for k in dir(base_cls) if k.isupper()}, **values}
    size = getattr(args, "image_size", None)
    if size is not None:
        values["IMAGE_MAX_DIM"] = size
        values["IMAGE_MIN_DIM"] = _scaled_min_dim(size, reference["IMAGE_MIN_DIM"],
                                                  reference["IMAGE_MAX_DIM"])
    ref_size = getattr(args, "reference_size", None)
    if ref_size is not None:
        values["TARGET_MAX_DIM"] = ref_size
        values["TARGET_MIN_DIM"] = _scaled_min_dim(ref_size, reference["TARGET_MIN_DIM"],
                                                   reference["TARGET_MAX_DIM"])
    values.update(config_overrides(args))
    for setting in getattr(args, "set", None) or []:
        key, value = parse_setting(setting)
        values[key] = coerce_setting(base_cls, key, value, setting)
    values.update(extra or {})
    try:
        return base_cls.from_dict(values), origin
    except ConfigError as e:
        raise CliError(f"invalid configuration: {e}") from None
    except (TypeError, ValueError) as e:
        raise CliError(f"invalid configuration value: {e}") from None


# ------------------------------------------------------------------ weights
def resolve_weights(spec, logs, name, command, imagenet_weights=None):
    """Turn ``--weights`` into ("none" | "imagenet" | "path", path or None).

    ``last`` is the newest checkpoint of runs named ``name`` under ``logs`` (the rule
    of ``MaskRCNN.find_last``). Raises CliError naming the path or value.
    """
    if spec is None:
        raise CliError(f"{command}: --weights is required (last or a weights file)")
    if spec == "none":
        if command != "train":
            raise CliError(f"{command}: --weights none is only for training from scratch")
        return "none", None
    if spec == "imagenet":
        if command != "train":
            raise CliError(f"{command}: --weights imagenet is only for training; give a "
                           f"trained checkpoint (last or a path)")
        if not imagenet_weights:
            raise CliError("--weights imagenet needs --imagenet-weights PATH, a backbone file "
                           "written by scripts/convert_imagenet_weights.py (nothing is "
                           "downloaded)")
        if not os.path.isfile(imagenet_weights):
            raise CliError(f"ImageNet weights file not found: {imagenet_weights}")
        return "imagenet", imagenet_weights
    if spec == "last":
        path = last_checkpoint(name, logs)
        return "path", path
    if not os.path.isfile(spec):
        raise CliError(f"weights file not found: {spec}")
    return "path", spec


def last_checkpoint(name, logs):
    """``SiameseMaskRCNN.find_last`` for runs of config NAME ``name`` under ``logs``,
    without building a model (the method reads only ``config.NAME``, ``model_dir``
    and the class's checkpoint naming)."""
    from siamese_mrcnn.model import SiameseMaskRCNN
    locator = types.SimpleNamespace(config=types.SimpleNamespace(NAME=name), model_dir=logs,
                                    CHECKPOINT_TEMPLATE=SiameseMaskRCNN.CHECKPOINT_TEMPLATE)
    try:
        return SiameseMaskRCNN.find_last(locator)
    except FileNotFoundError as e:
        raise CliError(f"--weights last: {e}") from None


def checkpoint_continues_run(path, name):
    """True when training from checkpoint ``path`` continues its run in its folder:
    it is the run's newest checkpoint (``MaskRCNN.set_log_dir``'s rule; an earlier
    one branches into a new run). ``name`` is the config NAME."""
    from siamese_mrcnn.model import SiameseMaskRCNN
    locator = types.SimpleNamespace(config=types.SimpleNamespace(NAME=name),
                                    CHECKPOINT_TEMPLATE=SiameseMaskRCNN.CHECKPOINT_TEMPLATE,
                                    RUN_DIR_SUFFIX=SiameseMaskRCNN.RUN_DIR_SUFFIX)
    epoch, later = SiameseMaskRCNN.checkpoint_position(locator, path)
    return epoch is not None and not later


# ------------------------------------------------------------------ images
def read_image(path, what):
    """RGB uint8 [H, W, 3] from an image file, by the project's one loader
    (:func:`mrcnn._dataset.read_image_file`: grayscale expanded, alpha dropped,
    palette/CMYK to RGB, 16-bit to its high byte, float [0, 1] scaled by 255).

    Raises CliError naming ``what`` and the path when the file is missing, does not
    decode, or has a mode or range without a defined 8-bit conversion.
    """
    from mrcnn._dataset import ImageLoadError, read_image_file
    if not os.path.isfile(path):
        raise CliError(f"{what} not found: {path}")
    try:
        return read_image_file(path)
    except ImageLoadError as e:
        if e.kind == "refused":
            raise CliError(f"{what} {path}: {e.reason}") from None
        raise CliError(f"{what} {path} does not decode as an image: {e.reason}") from None


# ------------------------------------------------------------------ datasets
# Dataset flags whose default is the training run's value, else this one:
# (argument, key in the run record's "dataset", kind it belongs to, default).
_DATASET_DEFAULTS = (("year", "year", "coco", "2017"),
                     ("procedural_categories", "categories", "procedural", 200),
                     ("procedural_image_size", "image_size", "procedural", 128),
                     ("procedural_seed", "seed", "procedural", 0))
_DATASET_FLAGS = ("dataset", "coco_dir", "annotations", "images")


def apply_dataset_defaults(args, record=None, command="evaluate", checkpoint=None):
    """Complete the dataset flags from a training run's record (``run.json``).

    With no dataset flag at all: ``train`` takes the run's dataset (any kind);
    ``evaluate`` takes the run's COCO folder or procedural benchmark, while for
    the run's own annotation files it raises CliError (they are not evaluation
    data). Then the flags not given (``--year``, ``--procedural-*``) take the run's
    values when the dataset is of the run's kind, else the documented defaults; a
    flag given with another value than the run's gets a warning.
    """
    recorded = dict((record or {}).get("dataset") or {})
    kind = recorded.get("kind")
    if recorded and not any(getattr(args, a, None) for a in _DATASET_FLAGS):
        where = f"the training run of {checkpoint}"
        if kind == "coco":
            args.coco_dir = recorded["coco_dir"]
            print(f"dataset: COCO in {args.coco_dir}, {where}'s")
        elif kind == "procedural":
            args.dataset = "procedural"
            print(f"dataset: the procedural benchmark, {where}'s")
        elif kind == "custom" and command == "train":
            args.annotations, args.images = recorded["annotations"], recorded["images"]
            if recorded.get("val_annotations"):
                args.val_annotations = recorded["val_annotations"]
                args.val_images = recorded["val_images"]
            print(f"dataset: {args.annotations}, {where}'s")
        elif kind == "custom":
            raise CliError(f"no dataset given; {where} trained on {recorded['annotations']}: "
                           f"give the evaluation data with --annotations FILE --images DIR")
    current = getattr(args, "dataset", None) or (
        "custom" if getattr(args, "annotations", None) else
        "coco" if getattr(args, "coco_dir", None) else None)
    for name, key, owner, default in _DATASET_DEFAULTS:
        if not hasattr(args, name):
            continue
        value = getattr(args, name)
        from_run = recorded.get(key) if kind == owner == current else None
        if value is None:
            setattr(args, name, default if from_run is None else from_run)
        elif from_run is not None and str(value) != str(from_run):
            flag = "--" + name.replace("_", "-")
            logger.warning("%s %s differs from the training run of %s (%s): the model was "
                           "trained on another %s", flag, value, checkpoint, from_run,
                           "dataset" if owner == "procedural" else "COCO year")


def dataset_kind(args):
    """"coco", "custom" or "procedural" from --dataset or the location flags."""
    kind = getattr(args, "dataset", None)
    if kind is None:
        if getattr(args, "annotations", None) or getattr(args, "images", None):
            kind = "custom"
        elif getattr(args, "coco_dir", None):
            kind = "coco"
        else:
            raise CliError("no dataset given: use --coco-dir DIR, --annotations FILE --images "
                           "DIR, or --dataset procedural")
    if kind == "coco" and not args.coco_dir:
        raise CliError("--dataset coco needs --coco-dir DIR (with annotations/ and the "
                       "image folders)")
    if kind == "custom" and not (args.annotations and args.images):
        raise CliError("a COCO-format dataset needs both --annotations FILE and --images DIR")
    if kind != "custom" and (args.annotations or args.images):
        raise CliError(f"--annotations/--images do not apply to --dataset {kind}")
    return kind


def dataset_record(args, kind):
    """JSON description of the dataset the arguments select (absolute paths), as a
    training run records it in its run.json."""
    if kind == "coco":
        return {"kind": "coco", "coco_dir": os.path.abspath(args.coco_dir),
                "year": str(args.year)}
    if kind == "custom":
        record = {"kind": "custom", "annotations": os.path.abspath(args.annotations),
                  "images": os.path.abspath(args.images)}
        if getattr(args, "val_annotations", None):
            record.update(val_annotations=os.path.abspath(args.val_annotations),
                          val_images=os.path.abspath(args.val_images))
        return record
    return {"kind": "procedural", "categories": int(args.procedural_categories),
            "image_size": int(args.procedural_image_size),
            "seed": int(args.procedural_seed)}


def load_coco_dataset(load):
    """Run a CocoDataset loader; file and format errors become CliError."""
    from siamese_mrcnn.coco import CocoDataset
    dataset = CocoDataset()
    try:
        load(dataset)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e)) from None
    dataset.prepare()
    if dataset.num_images == 0:
        raise CliError("the dataset has no images")
    return dataset


def import_procedural():
    """The procedural benchmark module (``samples.procedural``, installed with the
    project)."""
    import samples.procedural.procedural as procedural
    return procedural


def procedural_dataset(args, count, seed, categories=None):
    procedural = import_procedural()
    dataset = procedural.ProceduralOneShotDataset()
    try:
        dataset.load_procedural(count, image_size=args.procedural_image_size,
                                num_categories=args.procedural_categories,
                                categories=categories, seed=seed)
    except ValueError as e:
        raise CliError(f"--dataset procedural: {e}") from None
    dataset.prepare()
    return dataset


@contextlib.contextmanager
def exported_procedural(args, count, seed):
    """The procedural test images written as COCO files (in --procedural-dir or a
    temporary folder removed afterwards), loaded as a prepared CocoDataset
    (:func:`siamese_mrcnn.procedural.exported_dataset`)."""
    dataset = procedural_dataset(args, count, seed)  # imports samples.procedural first
    from siamese_mrcnn.procedural import exported_dataset
    with contextlib.ExitStack() as stack:
        folder = getattr(args, "procedural_dir", None)
        if not folder:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="procedural_"))
        yield exported_dataset(dataset, folder)


# ------------------------------------------------------------------ splits
def check_split_flags(args):
    """Validate --split / --unseen-* before any data is read."""
    from siamese_mrcnn.splits import get_split
    custom = args.unseen_classes or args.unseen_every is not None
    if args.split is not None and custom:
        raise CliError("give either --split or --unseen-classes / --unseen-every, not both")
    if args.unseen_classes and args.unseen_every is not None:
        raise CliError("give either --unseen-classes or --unseen-every, not both")
    if args.unseen_offset is not None and args.unseen_every is None:
        raise CliError("--unseen-offset needs --unseen-every")
    if args.split is not None:
        try:
            get_split(args.split)
        except ValueError as e:
            raise CliError(f"--split: {e}") from None


def resolve_split(args, dataset):
    """The seen/unseen :class:`~siamese_mrcnn.splits.Split` of a prepared dataset."""
    from siamese_mrcnn.splits import get_split, split_every_kth, split_from_names
    try:
        if args.unseen_classes:
            names = comma_list(args.unseen_classes, "--unseen-classes")
            return split_from_names(dataset, names, name="custom")
        if args.unseen_every is not None:
            offset = 1 if args.unseen_offset is None else args.unseen_offset
            return split_every_kth(dataset, args.unseen_every, offset)
        return get_split("1" if args.split is None else args.split,
                         num_classes=dataset.num_classes - 1,
                         class_names=dataset.class_names[1:])
    except ValueError as e:
        flag = ("--unseen-classes" if args.unseen_classes else
                "--unseen-every" if args.unseen_every is not None else "--split")
        raise CliError(f"{flag}: {e}") from None


def split_flags_given(args):
    return bool(args.split is not None or args.unseen_classes or args.unseen_every is not None)


def recorded_split(record, dataset):
    """The class split a run recorded (``run.json``), on ``dataset``: the run's seen
    classes (by name) are seen, every other class of the dataset unseen. None
    without a recorded split."""
    from siamese_mrcnn.splits import Split
    split = (record or {}).get("split")
    if not split:
        return None
    trained = set(split.get("seen_names", ()))
    names = list(dataset.class_names[1:])
    seen = [c for c, n in enumerate(names, 1) if n in trained]
    unseen = [c for c, n in enumerate(names, 1) if n not in trained]
    return Split(name=str(split.get("name")), seen_ids=tuple(seen), unseen_ids=tuple(unseen),
                 seen_names=tuple(names[c - 1] for c in seen),
                 unseen_names=tuple(names[c - 1] for c in unseen))


def _flags_text(args):
    if args.unseen_classes:
        return f"--unseen-classes {args.unseen_classes}"
    if args.unseen_every is not None:
        return f"--unseen-every {args.unseen_every}" + (
            "" if args.unseen_offset is None else f" --unseen-offset {args.unseen_offset}")
    return f"--split {args.split}"


def resolve_run_split(args, dataset, record=None, checkpoint=None, in_place=False):
    """The split of a command given a checkpoint (rule of the split flags' help).

    Without split flags: the run's recorded split, else split 1 with a warning that
    the checkpoint's split is unknown. With flags: their split; if it labels any
    class differently from the run's, a warning names those classes, or, when
    ``in_place`` (training continues the run in its own folder), CliError.
    """
    run_split = recorded_split(record, dataset)
    if not split_flags_given(args):
        if run_split is not None:
            print(f"class split: the training run's ({checkpoint})")
            return run_split
        if checkpoint:
            logger.warning("%s has no run record (run.json) beside it: using split 1; give "
                           "--split or --unseen-classes as it was trained", checkpoint)
        return resolve_split(args, dataset)
    split = resolve_split(args, dataset)
    if run_split is None:
        return split
    trained_unseen = sorted(set(split.unseen_names) & set(run_split.seen_names))
    never_seen = sorted(set(split.seen_names) & set(run_split.unseen_names))
    if trained_unseen or never_seen:
        held_out = ", ".join(run_split.unseen_names) or "none"
        parts = ([f"labelled unseen but trained on: {', '.join(trained_unseen)}"]
                 if trained_unseen else []) + (
            [f"labelled seen but never trained on: {', '.join(never_seen)}"]
            if never_seen else [])
        message = (f"{_flags_text(args)} differs from the split {checkpoint} was trained "
                   f"with (split {run_split.name}, held out: {held_out}); "
                   + "; ".join(parts))
        if in_place:
            raise CliError(f"{message}. Continuing the run in its folder with another split "
                           f"would mix two splits in one run: drop the split flags, or "
                           f"start a new run from a copy of the checkpoint outside its "
                           f"run folder")
        logger.warning("%s", message)
    return split

