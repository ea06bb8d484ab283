"""The ``siamese-mrcnn`` command line: ``train``, ``evaluate``, ``detect``, ``export``
and ``demo``.

    siamese-mrcnn train --coco-dir /data/coco --split 1 --config small \\
        --weights imagenet --imagenet-weights resnet50_imagenet.h5
    siamese-mrcnn evaluate --coco-dir /data/coco --split 1 --weights last --runs 5
    siamese-mrcnn detect --weights last --image query.jpg --reference cat.jpg
    siamese-mrcnn export --weights last --output exported --format savedmodel
    siamese-mrcnn demo --quick

Also ``python -m siamese_mrcnn`` and ``scripts/{train,evaluate,detect,export,demo}.py``.
:func:`main` parses the arguments (without importing TensorFlow, so ``--help`` and
argument mistakes are instant) and runs :mod:`siamese_mrcnn.commands`. A user
mistake (missing file, unknown split or class, undecodable image, weights that do
not fit the model) ends with one line ``siamese-mrcnn: error: ...`` on stderr and
exit status 2; anything unexpected still raises with its traceback.
"""

import argparse
import logging
import os
import re
import sys

from mrcnn.backends import BACKENDS, BackendError, select_backend
from siamese_mrcnn.cli_inputs import BACKBONES, PRESETS, CliError

PROG = "siamese-mrcnn"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _checked_number(convert, accept, expected):
    """argparse type: ``convert(text)`` that must satisfy ``accept``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _checked_number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked_number(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _checked_number(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# ------------------------------------------------------------------ option groups
def _add_dataset_options(parser, command):
    g = parser.add_argument_group(
        "dataset (one of --coco-dir, --annotations with --images, --dataset procedural)",
        {"train": "With --weights of a recorded run (its run.json) and no dataset "
                  "flags, the run's dataset is used.",
         "evaluate": "With --weights of a recorded run (its run.json) and no dataset "
                     "flags, the run's COCO folder or procedural benchmark is used (for "
                     "its own annotation files, give the evaluation data)."}.get(command))
    g.add_argument("--dataset", choices=("coco", "custom", "procedural"),
                   help="dataset kind; default: custom with --annotations, coco with "
                        "--coco-dir")
    if command == "train":
        coco = ("COCO in its standard layout (DIR/annotations/instances_train<YEAR>.json, "
                "DIR/train<YEAR>/): trains on train<YEAR> minus its last 3000 images "
                "(see --val-division) and validates on those 3000")
    else:
        coco = ("COCO in its standard layout (DIR/annotations/instances_val<YEAR>.json, "
                "DIR/val<YEAR>/): evaluates on val<YEAR>")
    g.add_argument("--coco-dir", metavar="DIR", help=coco)
    g.add_argument("--year", help="COCO year of --coco-dir (default: the training run's, "
                                  "else 2017)")
    if command == "train":
        g.add_argument("--val-division", choices=("sorted", "original"), default="sorted",
                       help="which 3000 train<YEAR> images --coco-dir holds out for "
                            "validation: sorted (the last by image id, of all images) or "
                            "original (the original project's: the last of the annotated "
                            "images in Python set order, which is deterministic). Default "
                            "sorted")
    g.add_argument("--annotations", metavar="FILE",
                   help="any COCO-format annotation file (instance masks as polygons or "
                        "RLE); its image file_names are relative to --images")
    g.add_argument("--images", metavar="DIR", help="image folder of --annotations")
    if command == "train":
        g.add_argument("--val-annotations", metavar="FILE",
                       help="optional validation annotation file for --annotations "
                            "(default: no validation)")
        g.add_argument("--val-images", metavar="DIR", help="image folder of --val-annotations")
    count = 2000 if command == "train" else 500
    g.add_argument("--procedural-images", type=_positive_int, default=count, metavar="N",
                   help=f"--dataset procedural: number of images (default {count})"
                        + ("; validation uses N/10 more, at least 1" if command == "train"
                           else ""))
    g.add_argument("--procedural-categories", type=_positive_int, metavar="K",
                   help="--dataset procedural: shape categories, class ids 1..K "
                        "(default: the training run's, else 200)")
    g.add_argument("--procedural-image-size", type=_positive_int, metavar="PX",
                   help="--dataset procedural: image side in pixels (default: the "
                        "training run's, else 128)")
    g.add_argument("--procedural-seed", type=_non_negative_int, metavar="S",
                   help="--dataset procedural: images are drawn from seed S (training), "
                        "S+1 (validation) and S+2 (evaluation), so train and evaluate with "
                        "the same S never share images (default: the training run's, "
                        "else 0)")
    if command == "evaluate":
        g.add_argument("--procedural-dir", metavar="DIR",
                       help="--dataset procedural: write the evaluation images and their "
                            "COCO annotations here (default: a temporary folder, removed "
                            "afterwards)")


def _add_split_options(parser, command):
    g = parser.add_argument_group(
        "class split (which classes are seen in training and which are held out)")
    g.add_argument("--split", metavar="{1,2,3,4,all}",
                   help="split i holds out classes {4k + i} (contiguous ids in order of "
                        "sorted category id; for COCO the paper's split i); 'all' holds out "
                        "none. Default: the split of the --weights checkpoint's training "
                        "run (its run.json), else 1")
    g.add_argument("--unseen-classes", metavar="NAME,NAME",
                   help="hold out these classes, by name (comma-separated) instead of --split")
    g.add_argument("--unseen-every", type=_positive_int, metavar="K",
                   help="hold out every K-th class, ids c with c = I (mod K), instead of "
                        "--split")
    g.add_argument("--unseen-offset", type=int, metavar="I",
                   help="the I of --unseen-every (default 1)")
    recorded = ("A training run records its split in run.json beside its checkpoints. "
                "Without split flags, a command given such a checkpoint uses the run's "
                "split (by class name: the run's seen classes are 'seen', every other "
                "class 'unseen')")
    if command == "train":
        g.description = ("Training uses only the seen classes as queries and references. "
                         + recorded + "; another split is refused when continuing the "
                         "run in place and warned about when branching.")
    else:
        g.description = ("Reported separately: 'seen' (training) and 'unseen' (held-out) "
                         "classes. " + recorded + "; another split given by the flags is "
                         "used, with a warning naming the classes it mislabels.")


def _add_config_options(parser, command):
    g = parser.add_argument_group(
        "configuration",
        "Base: --config when given; else, for a checkpoint, the config.json its training "
        "run saved beside it; else 'small'. The flags below override it, --set last; "
        "what the command fixes itself ("
        + {"train": "GPU_COUNT = replicas, LEARNING_RATE = the base lr",
           "evaluate": "GPU_COUNT = 1, RESAMPLING = --mode, the DETECTION_MIN_CONFIDENCE "
                       "of --mode corrected",
           "detect": "GPU_COUNT = IMAGES_PER_GPU = 1, NUM_TARGETS = number of "
                     "references",
           "export": "GPU_COUNT = IMAGES_PER_GPU = 1, RESAMPLING = corrected"}[command]
        + ") wins over both. The effective configuration is printed.")
    g.add_argument("--config", choices=sorted(PRESETS),
                   help="a preset: the paper's small (1 GPU x 12 images, queries "
                        "400-512 px, references 75-96 px) or large (4 GPUs x 3 images, "
                        "queries 800-1024 px, references 150-192 px); the demo's demo "
                        "(8 images, 128 px queries, 48-64 px references, quarter-width "
                        "ResNet-18: minutes on a CPU) or quick (2 images, 64 px, a smoke "
                        "test)")
    g.add_argument("--name", help="config NAME: names run folders and is what --weights "
                                  "last looks for (default: the preset's NAME)")
    if command not in ("detect", "export"):
        g.add_argument("--images-per-gpu", type=_positive_int, metavar="N",
                       help="IMAGES_PER_GPU: " + ("images per replica and step"
                                                  if command == "train" else
                                                  "reference sets matched per forward "
                                                  "pass against a query's features"))
    if command == "train":
        g.add_argument("--steps-per-epoch", type=_positive_int, metavar="N",
                       help="STEPS_PER_EPOCH (the paper: 1000)")
        g.add_argument("--validation-steps", type=_non_negative_int, metavar="N",
                       help="VALIDATION_STEPS after each epoch (0: no validation)")
    g.add_argument("--image-size", type=_positive_int, metavar="PX",
                   help="query size: IMAGE_MAX_DIM = PX (the padded square side, a "
                        "multiple of 64) and IMAGE_MIN_DIM scaled with it, keeping the "
                        "base's ratio (512 -> 400 in small)")
    g.add_argument("--reference-size", type=_positive_int, metavar="PX",
                   help="reference size: TARGET_MAX_DIM = PX (a multiple of 32) and "
                        "TARGET_MIN_DIM scaled with it (96 -> 75 in small)")
    g.add_argument("--backbone", choices=BACKBONES,
                   help="ResNet depth (the paper: resnet50; resnet18/34 for CPU-sized runs)")
    if command not in ("detect", "export"):
        g.add_argument("--shots", type=_positive_int, metavar="K",
                       help="references per query, NUM_TARGETS (k-shot; default: the "
                            "base configuration's, 1 in the presets)")
    g.add_argument("--anchor-scales", metavar="S2,S3,S4,S5,S6",
                   help="RPN_ANCHOR_SCALES in pixels, one per pyramid level (default: "
                        "the base configuration's, 32,64,128,256,512 in the presets). Not "
                        "derived from --image-size: for small images pass smaller scales, "
                        "e.g. 8,16,32,64,128 at 64 px")
    g.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config attribute (repeatable); VALUE is read as "
                        "JSON when it parses, e.g. --set TRAIN_ROIS_PER_IMAGE=32 --set "
                        "MEAN_PIXEL=[120,115,100]; switches such as TRAIN_BN take only "
                        "true/false, yes/no, on/off or 1/0. Every value is checked (type, "
                        "range, finiteness); a bad one is an error naming the attribute")


def _add_weights_options(parser, command):
    g = parser.add_argument_group("weights and run folders")
    # evaluate --merge scores finished shards and needs no weights: checked there.
    required = command in ("detect", "export")
    if command == "train":
        g.add_argument("--weights", default="imagenet", metavar="{imagenet,last,none,PATH}",
                       help="starting point: 'imagenet' (a ResNet backbone file given by "
                            "--imagenet-weights; the rest is initialised randomly), 'last' "
                            "(resume the newest run of --name under --logs: continue from "
                            "its last epoch in its folder), 'none' (train from scratch) or "
                            "the path of a legacy HDF5 weights file (ours, the original "
                            "project's or Matterport's; layers matched by name). A run's "
                            "newest checkpoint continues that run in its folder, like last; "
                            "an earlier one branches: a new run folder continuing after its "
                            "epoch, recording it as parent_checkpoint in run.json (the "
                            "parent's later epochs are never overwritten); one named like "
                            "the original's, siamese_mrcnn_0120.h5, outside a run folder "
                            "continues after its epoch; any other file starts a new run at "
                            "epoch 0. Default imagenet")
        g.add_argument("--imagenet-weights", metavar="PATH",
                       help="backbone file for --weights imagenet: written by "
                            "scripts/convert_imagenet_weights.py, or the original "
                            "project's imagenet-687 / 771 file (a whole-model Keras 2 file "
                            "around a nested resnet_model). Nothing is downloaded")
        g.add_argument("--exclude", metavar="LAYER,LAYER",
                       help="top-level layer names not to load from --weights (e.g. heads of a "
                            "model with other classes)")
    else:
        g.add_argument("--weights", required=required, metavar="{last,PATH}",
                       help="trained weights: 'last' (the newest checkpoint of --name "
                            "under --logs) or the path of a legacy HDF5 weights file (ours, "
                            "the original project's or Keras 2's). Every layer of the model "
                            "must be in the file under its name, with matching shapes; file "
                            "layers the model lacks are named in a warning"
                            + ("" if required else " (required unless --merge)"))
    g.add_argument("--logs", default="logs", metavar="DIR",
                   help="model_dir: a new training run writes DIR/<name><YYYYmmddTHHMM>/ "
                        "(with _2, _3, ... when a run of that minute exists: a new run never "
                        "writes into another's folder) with checkpoints "
                        "siamese_mrcnn_<epoch>.h5, config.json, run.json (parent "
                        "checkpoint, dataset, class split) and TensorBoard logs; --weights "
                        "last searches here (default ./logs)")


# ------------------------------------------------------------------ sub-commands
def _add_train(sub):
    p = sub.add_parser(
        "train", help="train a Siamese Mask R-CNN on the seen classes of a split",
        description="Train Siamese Mask R-CNN one-shot: each sample is a query image, "
                    "the instances of one seen class present in it, and reference crops "
                    "of that class from other (or the same) images. A checkpoint is "
                    "saved after every epoch; rerun with --weights last to resume.")
    _add_dataset_options(p, "train")
    _add_split_options(p, "train")
    _add_config_options(p, "train")
    _add_weights_options(p, "train")
    g = p.add_argument_group("schedule")
    g.add_argument("--schedule", choices=("paper", "quick"), default="paper",
                   help="paper: heads to epoch 1, all layers to 120, all to 160 at lr/10. "
                        "quick: the same shape in --epochs epochs: heads to "
                        "--heads-epochs, all to round(0.75 x epochs), all at lr/10 to "
                        "epochs (stages without epochs are dropped). Default paper")
    g.add_argument("--epochs", type=_positive_int, metavar="N",
                   help="total epochs of the quick schedule (required with it)")
    g.add_argument("--heads-epochs", type=_non_negative_int, default=1, metavar="N",
                   help="quick schedule: epochs of heads-only training first (default 1)")
    g.add_argument("--lr", type=_positive_float, metavar="LR",
                   help="base learning rate (default: 0.02 x global batch / 12, the paper's "
                        "linear scaling)")
    g.add_argument("--strategy", choices=("default", "mirrored", "multiworker",
                                          "data-parallel"),
                   default="default",
                   help="default (one device); TensorFlow's tf.distribute: mirrored (all "
                        "local GPUs) or multiworker (MultiWorkerMirroredStrategy, from "
                        "TF_CONFIG); JAX's keras.distribution: data-parallel (all visible "
                        "devices). GPU_COUNT is set to the number of replicas; global batch "
                        "= IMAGES_PER_GPU x replicas")
    g.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the initial weights of layers not loaded from --weights, "
                        "the batch order and every sampling choice (default 0)")
    p.set_defaults(command="train")


def _add_evaluate(sub):
    p = sub.add_parser(
        "evaluate", help="one-shot COCO-style evaluation (AP, AP50 for seen and unseen)",
        description="Evaluate one-shot: for every image and every evaluated class (only "
                    "those present, in faithful mode), draw a reference of the class, "
                    "detect, and score all runs with COCOeval (bbox and segm). Prints "
                    "mean +- 1.96 std / sqrt(runs) in percent: AP and AP50, then the full "
                    "COCO summary (AP75, APs/m/l, AR1/10/100, ARs/m/l). --combine joins "
                    "the four splits' reports into the paper's table.")
    _add_dataset_options(p, "evaluate")
    _add_split_options(p, "evaluate")
    _add_config_options(p, "evaluate")
    _add_weights_options(p, "evaluate")
    g = p.add_argument_group("protocol")
    g.add_argument("--runs", type=_positive_int, default=5,
                   help="repetitions with freshly drawn references (default 5, the paper's)")
    g.add_argument("--mode", choices=("faithful", "corrected"), default="faithful",
                   help="faithful: the original protocol (only classes present after the "
                        "resize are queried, reference may come from the query image, "
                        "references not mean-subtracted, detections below "
                        "DETECTION_MIN_CONFIDENCE dropped, the original's scikit-image "
                        "resampling: RESAMPLING=faithful). corrected: every evaluated class "
                        "queried in every image, references from other images only and "
                        "mean-subtracted, scores down to 0.05 kept, RESAMPLING=corrected. "
                        "Default faithful")
    g.add_argument("--limit", type=_positive_int, metavar="N",
                   help="evaluate only the first N images (by sorted image id)")
    g.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed of the reference draws (default 0)")
    g.add_argument("--baseline", choices=("random-boxes", "wrong-reference"),
                   help="score one of the paper's baselines instead of the model as it "
                        "is: random-boxes (the model's detections moved to random places "
                        "in the image, sizes kept: the original's random detections) or "
                        "wrong-reference (each reference replaced by one of another "
                        "evaluated class, as the demo's baseline). Their own draws are "
                        "seeded by --seed + 7")
    g.add_argument("--output", metavar="FILE.json",
                   help="write a JSON report (table, per-run and per-class AP, config, "
                        "mode, seeds, package versions)")
    g = p.add_argument_group("figure")
    g.add_argument("--figure", metavar="FILE.png",
                   help="also write a grid figure: for the seen and the unseen classes, "
                        "--figure-rows rows of reference | query with the predicted masks, "
                        "boxes and scores (the first images showing a class of the group, "
                        "references from other images, drawn by --seed). Not with --merge "
                        "or --combine; with --num-shards > 1 shard 0 draws it")
    g.add_argument("--figure-rows", type=_positive_int, default=3, metavar="N",
                   help="rows per class group in --figure (default 3)")
    g = p.add_argument_group("sharding and resuming")
    g.add_argument("--partial", metavar="FILE.jsonl",
                   help="append each finished (run, image) here and skip those already in "
                        "it, so an interrupted evaluation resumes. The file records the "
                        "weights (SHA-1), configuration, mode, split and protocol that "
                        "wrote it; resuming or merging with any of them different is "
                        "refused, naming it")
    g.add_argument("--shard", type=_non_negative_int, default=0, metavar="I",
                   help="evaluate the images at positions p with p %% num-shards == I "
                        "(default 0)")
    g.add_argument("--num-shards", type=_positive_int, default=1, metavar="N",
                   help="number of shards (default 1); with N > 1, --partial is required "
                        "and the shards are scored by --merge")
    g.add_argument("--merge", nargs="+", metavar="PARTIAL",
                   help="score the --partial files of all shards together (needs the "
                        "dataset, not --weights) instead of detecting")
    g = p.add_argument_group("the paper's table")
    g.add_argument("--combine", nargs="+", metavar="REPORT",
                   help="combine the --output reports of the four splits (same mode, "
                        "shots and runs) into the paper's table: each run's AP averaged "
                        "over the splits, then mean +- 1.96 std / sqrt(runs) over the runs, "
                        "for seen/unseen x det/segm x AP/AP50 and the full COCO summary. "
                        "Needs neither dataset nor weights; --output writes the result")
    p.set_defaults(command="evaluate")


def _add_detect(sub):
    p = sub.add_parser(
        "detect", help="find the instances of a reference's category in a query image",
        description="Detect and segment every instance in --image of the category shown "
                    "by the reference(s). Writes OUTPUT_DIR/detections.json and "
                    "OUTPUT_DIR/detections.png. The number of references is the number "
                    "of shots (their features are averaged).")
    g = p.add_argument_group("inputs")
    g.add_argument("--image", required=True, metavar="QUERY", help="query image file")
    g.add_argument("--reference", nargs="+", metavar="REF",
                   help="reference image file(s), each showing one object (e.g. a crop "
                        "of at least 8x8 pixels), one per shot; resized and zero-padded to "
                        "TARGET_MAX_DIM")
    g.add_argument("--reference-image", action="append", metavar="IMG",
                   help="an image holding the reference object; pair it with "
                        "--reference-box (repeat both for more shots)")
    g.add_argument("--reference-box", action="append", metavar="Y1,X1,Y2,X2",
                   help="the object's pixel box in the matching --reference-image (y2, x2 "
                        "exclusive; inside the image, at least 8 pixels a side); cropped "
                        "after the query-style resize, as in training")
    g.add_argument("--output-dir", default="detections", metavar="DIR",
                   help="folder for detections.json and detections.png (default "
                        "./detections)")
    g.add_argument("--min-confidence", type=_fraction, metavar="P",
                   help="DETECTION_MIN_CONFIDENCE: drop detections scoring below P "
                        "(default: the configuration's, 0.7 in the presets)")
    _add_config_options(p, "detect")
    _add_weights_options(p, "detect")
    p.set_defaults(command="detect")


def _add_export(sub):
    p = sub.add_parser(
        "export", help="export a trained model for serving (SavedModel or ONNX)",
        description="Write the model with its whole inference path, pre- and "
                    "post-processing included, as a TensorFlow SavedModel or an ONNX file. "
                    "Signature 'serve': image uint8 [H, W, 3] and references uint8 "
                    "[S, h, w, 3] (one or more crops, any size) in; boxes int32 [N, 4] "
                    "(y1, x1, y2, x2 query pixels, y2/x2 exclusive), class_ids int32 [N], "
                    "scores float32 [N], masks bool [N, H, W] and count int32 out, as "
                    "detect() gives them. Needs the TensorFlow backend; ONNX also needs "
                    "pip install -e '.[export]' (tf2onnx). See README, 'Serving'.")
    g = p.add_argument_group("output")
    g.add_argument("--output", required=True, metavar="DIR",
                   help="a new folder: the SavedModel itself (load it with "
                        "tf.saved_model.load(DIR)), or for onnx DIR/model.onnx; "
                        "export.json beside them records the weights, configuration and "
                        "signature. An existing non-empty folder is refused")
    g.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                   help="savedmodel (endpoints serve and serve_padded, for crops of "
                        "different sizes) or onnx (the serve signature). Default "
                        "savedmodel")
    g.add_argument("--min-confidence", type=_fraction, metavar="P",
                   help="DETECTION_MIN_CONFIDENCE built into the graph: drop detections "
                        "scoring below P (default: the configuration's)")
    _add_config_options(p, "export")
    _add_weights_options(p, "export")
    p.set_defaults(command="export")


def _add_demo(sub):
    from siamese_mrcnn import demo
    p = sub.add_parser(
        "demo", help="the embedded demo: train, evaluate and draw a small model on the "
                     "procedural benchmark (CPU, minutes; also scripts/demo.py)",
        description=demo.DESCRIPTION + " The same as scripts/demo.py (bash "
                                       "scripts/demo.sh), with the same options.")
    demo.add_arguments(p, backend=False)
    p.set_defaults(command="demo")


def build_parser():
    """The argparse parser of ``siamese-mrcnn`` with its sub-commands."""
    parser = _Parser(prog=PROG, description="Siamese Mask R-CNN: one-shot instance "
                                            "segmentation (train, evaluate, detect, "
                                            "export, demo).")
    sub = parser.add_subparsers(dest="command",
                                metavar="{train,evaluate,detect,export,demo}",
                                parser_class=_Parser)
    sub.required = True
    _add_train(sub)
    _add_evaluate(sub)
    _add_detect(sub)
    _add_export(sub)
    _add_demo(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--backend", choices=BACKENDS,
            help="Keras backend (default: $KERAS_BACKEND, else tensorflow). jax and torch "
                 "need the extras: pip install -e '.[jax]' or '.[torch]'; a run's "
                 "config.json records the backend that trained it")
    return parser


def _configure_logging():
    root = logging.getLogger()
    if not root.handlers:  # leave an embedding application's (or pytest's) setup alone
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# Options whose value may start with "-" (a negative number): argparse would take
# "-4,10,20,30" for an option and say "expected one argument".
_VALUES_MAY_BE_NEGATIVE = ("--reference-box",)


def _attach_negative_values(argv):
    """``["--reference-box", "-4,1,2,3"]`` -> ``["--reference-box=-4,1,2,3"]``, so the
    value reaches its own check (which names the real problem)."""
    out, argv = [], list(argv)
    i = 0
    while i < len(argv):
        token = argv[i]
        if (token in _VALUES_MAY_BE_NEGATIVE and i + 1 < len(argv)
                and re.fullmatch(r"-\d[\d,\s-]*", argv[i + 1])):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv=None):
    """Run ``siamese-mrcnn`` with ``argv`` (default ``sys.argv[1:]``); returns 0.

    User mistakes exit with status 2 and one line on stderr (SystemExit).
    """
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(_attach_negative_values(argv))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _configure_logging()
    try:
        if args.backend:
            try:
                select_backend(args.backend)  # before anything imports Keras
            except BackendError as e:
                raise CliError(str(e)) from None
        from siamese_mrcnn import commands
        from mrcnn.utils import ImageLoadError
        try:
            from siamese_mrcnn import demo
            runner = {"train": commands.run_train, "evaluate": commands.run_evaluate,
                      "detect": commands.run_detect,
                      "export": commands.run_export, "demo": demo.run_cli}[args.command]
            runner(args)
        except ImageLoadError as e:  # an image of a dataset (annotations) does not decode
            raise CliError(str(e)) from None
    except CliError as e:
        message = " ".join(str(e).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        sys.exit(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
