"""Item 7: a run records its dataset and class split beside its checkpoints, and
evaluate, detect and a resumed train use them by default.

The session's run trained on split 2 of the tiny dataset: c5 (contiguous 2) held out,
c2, c9, c11 seen. Before the issue ``evaluate`` without ``--split`` fell back to split
1 and reported c2, a trained class, as "unseen".
"""

import argparse
import json
import logging
import os
import shutil

from siamese_mrcnn.cli import main
from siamese_mrcnn.cli_inputs import apply_dataset_defaults
from tests.robustness.conftest import QUICK, TINY, data_flags, image_path, run_error

EVAL = ["--runs", "1", "--limit", "2", "--mode", "faithful"]


def evaluate(tiny_coco, weights, tmp_path, *extra):
    out = str(tmp_path / "report.json")
    assert main(["evaluate", *data_flags(tiny_coco), "--weights", weights, *EVAL,
                 "--output", out, *extra]) == 0
    with open(out) as f:
        return json.load(f)["summary"]["settings"]


def test_the_run_records_its_dataset_and_split(trained_run, tiny_coco):
    with open(os.path.join(trained_run["run_dir"], "run.json")) as f:
        record = json.load(f)
    assert record["dataset"] == {"kind": "custom", "annotations": tiny_coco["annotation_file"],
                                 "images": tiny_coco["image_dir"]}
    assert record["split"]["name"] == "2"
    assert record["split"]["unseen_names"] == ["c5"]
    assert record["split"]["seen_names"] == ["c2", "c9", "c11"]


def test_evaluate_uses_the_recorded_split_by_default(trained_run, tiny_coco, tmp_path,
                                                     capsys):
    settings = evaluate(tiny_coco, trained_run["checkpoints"][1], tmp_path)
    assert settings["classes"] == {"seen": [1, 3, 4], "unseen": [2]}
    assert settings["split"] == "2"
    assert "split 2: 3 seen classes, 1 unseen (c5)" in capsys.readouterr().out


def test_evaluate_told_another_split_warns_naming_the_mislabelled_classes(
        trained_run, tiny_coco, tmp_path, caplog):
    checkpoint = trained_run["checkpoints"][1]
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.cli_inputs"):
        settings = evaluate(tiny_coco, checkpoint, tmp_path, "--split", "1")
    assert settings["classes"] == {"seen": [2, 3, 4], "unseen": [1]}  # as told
    (warning,) = [r.getMessage() for r in caplog.records if "differs" in r.getMessage()]
    assert warning == (f"--split 1 differs from the split {checkpoint} was trained with "
                       f"(split 2, held out: c5); labelled unseen but trained on: c2; "
                       f"labelled seen but never trained on: c5")


def test_a_checkpoint_without_a_record_says_its_split_is_unknown(trained_run, tiny_coco,
                                                                 tmp_path, caplog):
    lonely = str(tmp_path / "copied.h5")
    shutil.copy(trained_run["checkpoints"][1], lonely)
    shutil.copy(os.path.join(trained_run["run_dir"], "config.json"), tmp_path)
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.cli_inputs"):
        evaluate(tiny_coco, lonely, tmp_path)
    assert f"{lonely} has no run record (run.json) beside it: using split 1" in caplog.text


def test_evaluate_without_a_dataset_needs_evaluation_data_for_custom_annotations(
        trained_run, tiny_coco, capsys):
    line = run_error(capsys, ["evaluate", "--weights", trained_run["checkpoints"][1], *EVAL])
    assert line == (f"siamese-mrcnn: error: no dataset given; the training run of "
                    f"{trained_run['checkpoints'][1]} trained on {tiny_coco['annotation_file']}: "
                    f"give the evaluation data with --annotations FILE --images DIR")


def _dataset_args(**kw):
    base = dict(dataset=None, coco_dir=None, annotations=None, images=None, year=None,
                procedural_categories=None, procedural_image_size=None, procedural_seed=None)
    return argparse.Namespace(**{**base, **kw})


def test_procedural_settings_default_to_the_runs_and_a_different_one_is_warned(caplog):
    record = {"dataset": {"kind": "procedural", "categories": 12, "image_size": 64,
                          "seed": 5}}
    args = _dataset_args()
    apply_dataset_defaults(args, record, "evaluate", "ckpt.h5")
    assert (args.dataset, args.procedural_categories, args.procedural_image_size,
            args.procedural_seed) == ("procedural", 12, 64, 5)
    args = _dataset_args(dataset="procedural", procedural_categories=200)
    with caplog.at_level(logging.WARNING, logger="siamese_mrcnn.cli_inputs"):
        apply_dataset_defaults(args, record, "evaluate", "ckpt.h5")
    assert args.procedural_seed == 5 and args.procedural_categories == 200
    assert ("--procedural-categories 200 differs from the training run of ckpt.h5 (12)"
            in caplog.text)
    args = _dataset_args(dataset="procedural")  # no record: the documented defaults
    apply_dataset_defaults(args)
    assert (args.procedural_categories, args.procedural_image_size, args.year) == (200, 128,
                                                                                   "2017")


def test_detect_reports_what_the_model_was_trained_on(trained_run, tiny_coco, tmp_path,
                                                      capsys):
    out_dir = tmp_path / "det"
    assert main(["detect", "--weights", trained_run["checkpoints"][1], "--image",
                 image_path(tiny_coco, 33), "--reference", image_path(tiny_coco, 28),
                 "--output-dir", str(out_dir)]) == 0
    assert ("the model was trained holding out c5 (split 2); other classes were seen in "
            "training") in capsys.readouterr().out
    with open(out_dir / "detections.json") as f:
        run = json.load(f)["training_run"]
    assert run["split"] == {"name": "2", "seen_names": ["c2", "c9", "c11"],
                            "unseen_names": ["c5"]}
    assert run["dataset"]["kind"] == "custom"


def test_resuming_a_run_in_place_keeps_its_split(trained_run, tiny_coco, capsys):
    """No split flags: the run's split (training would otherwise switch to split 1);
    another split for the same folder is refused."""
    last = trained_run["checkpoints"][1]
    line = run_error(capsys, ["train", *data_flags(tiny_coco), "--weights", last,
                              "--split", "1", "--epochs", "2", *QUICK, *TINY])
    assert line.startswith(f"siamese-mrcnn: error: --split 1 differs from the split {last} "
                           f"was trained with (split 2, held out: c5)")
    assert "would mix two splits in one run" in line
    # Already at epoch 2: resolving the split, building the model and loading the
    # weights is all this does.
    assert main(["train", "--weights", last, "--epochs", "2", "--logs", trained_run["logs"],
                 *QUICK, *TINY]) == 0
    out = capsys.readouterr().out
    assert f"dataset: {tiny_coco['annotation_file']}, the training run of {last}'s" in out
    assert "split 2: 3 seen classes, 1 unseen (c5)" in out
    assert f"resuming {trained_run['run_dir']} after epoch 2" in out
