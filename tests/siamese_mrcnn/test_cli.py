"""The ``siamese-mrcnn`` command line: help, one-line errors, train -> evaluate -> detect.

``main`` runs in-process (TensorFlow is imported once per test session). The
end-to-end tests share one tiny training run (module fixture ``trained_run``) on the
tiny COCO-format dataset of ``conftest.py``: 64x96 images, classes c2, c5, c9, c11
(contiguous 1..4), split 1 holds out c2. It trains with a learning rate of 1e-9 from
a seeded random initialisation, so the heads stay near their random state and match
some proposals: detect and evaluate then have detections to write.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import skimage.io
from pycocotools import mask as mask_utils

from siamese_mrcnn.cli import main
from siamese_mrcnn.cli_inputs import CliError, build_config
from siamese_mrcnn.config import SmallConfig
from tests.configs import TINY_CLI
from tests.siamese_mrcnn.conftest import data_flags, image_path, run_error

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = TINY_CLI  # the CPU-sized model of every CLI test


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command, flags", [
    ("train", ["--coco-dir", "--annotations", "--images", "--split", "--unseen-classes",
               "--unseen-every", "--config", "--images-per-gpu", "--steps-per-epoch",
               "--image-size", "--reference-size", "--backbone", "--shots", "--anchor-scales",
               "--set", "--weights", "--imagenet-weights", "--exclude", "--logs", "--schedule",
               "--epochs", "--lr", "--strategy", "--seed", "--procedural-images"]),
    ("evaluate", ["--weights", "--split", "--runs", "--shots", "--mode", "--limit", "--shard",
                  "--num-shards", "--partial", "--merge", "--output", "--procedural-dir",
                  "--figure", "--figure-rows"]),
    ("detect", ["--weights", "--image", "--reference", "--reference-image",
                "--reference-box", "--output-dir", "--min-confidence"]),
    ("demo", ["--minutes", "--steps", "--quick", "--weights", "--ap-every", "--ap-images",
              "--eval-images", "--figures-dir", "--backend"]),
])
def test_help_of_each_command_lists_its_flags(capsys, command, flags):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: siamese-mrcnn {command}")
    missing = [f for f in flags if f not in out]
    assert not missing


def test_console_entry_points_print_usage_without_importing_tensorflow():
    probe = ("import sys, runpy; sys.argv = ['siamese-mrcnn', 'detect', '--help']\n"
             "try:\n    runpy.run_module('siamese_mrcnn', run_name='__main__')\n"
             "except SystemExit as e:\n    print('exit', e.code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=REPO, timeout=120).stdout
    assert "usage: siamese-mrcnn detect" in out
    assert out.strip().endswith("exit 0 False")
    for command in ("train", "evaluate", "detect"):
        done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", f"{command}.py"),
                               "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0
        assert done.stdout.startswith(f"usage: siamese-mrcnn {command}")


# ------------------------------------------------------------------ one-line errors
def test_missing_annotation_file(capsys, tmp_path):
    missing = str(tmp_path / "no_such.json")
    line = run_error(capsys, ["train", "--annotations", missing, "--images", str(tmp_path),
                              "--weights", "none"])
    assert line == f"siamese-mrcnn: error: COCO annotation file not found: {missing}"
    line = run_error(capsys, ["evaluate", "--coco-dir", str(tmp_path), "--weights", "x.h5"])
    assert line.startswith("siamese-mrcnn: error: load_coco: annotation file not found: "
                           f"{tmp_path}/annotations/instances_val2017.json")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_unknown_split(capsys, tiny_coco, command):
    line = run_error(capsys, [command, *data_flags(tiny_coco), "--split", "7",
                              "--weights", "none" if command == "train" else "x.h5"])
    assert line == ("siamese-mrcnn: error: --split: unknown split '7'; valid splits are "
                    "1, 2, 3, 4 and 'all'")


def test_unknown_class_name(capsys, tiny_coco):
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--unseen-classes", "c2,dog",
                              "--weights", "x.h5"])
    assert line.startswith("siamese-mrcnn: error: --unseen-classes: ")
    assert "unknown class name(s) ['dog']" in line and "'c11'" in line


def test_image_that_does_not_decode(capsys, tiny_coco, tmp_path):
    corrupt = tmp_path / "query.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    line = run_error(capsys, ["detect", "--weights", "x.h5", "--image", str(corrupt),
                              "--reference", image_path(tiny_coco, 28)])
    assert line.startswith(f"siamese-mrcnn: error: query image {corrupt} does not decode")
    line = run_error(capsys, ["detect", "--weights", "x.h5", "--image", image_path(tiny_coco, 33),
                              "--reference", str(tmp_path / "absent.png")])
    assert line == f"siamese-mrcnn: error: reference image not found: {tmp_path}/absent.png"


def test_other_argument_mistakes(capsys, tiny_coco, tmp_path):
    query = image_path(tiny_coco, 33)
    line = run_error(capsys, ["detect", "--weights", "x.h5", "--image", query,
                              "--reference-image", query, "--reference-box", "10,20,70,40"])
    assert line == (f"siamese-mrcnn: error: --reference-box 10,20,70,40 exceeds the 64x96 "
                    f"reference image {query}")
    line = run_error(capsys, ["detect", "--weights", str(tmp_path / "w.h5"), "--image", query,
                              "--reference", query])
    assert line == f"siamese-mrcnn: error: weights file not found: {tmp_path}/w.h5"
    line = run_error(capsys, ["train", *data_flags(tiny_coco)])
    assert "--weights imagenet needs --imagenet-weights PATH" in line
    line = run_error(capsys, ["train", *data_flags(tiny_coco), "--weights", "none",
                              "--image-size", "100"])
    assert line.endswith("IMAGE_MAX_DIM: must be divisible by 64 (the coarsest FPN stride), "
                         "got 100")
    line = run_error(capsys, ["train", *data_flags(tiny_coco), "--weights", "none",
                              "--set", "NO_SUCH_ATTRIBUTE=3"])
    assert "unknown configuration attribute 'NO_SUCH_ATTRIBUTE'" in line
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--mode", "exact"])
    assert line.startswith("siamese-mrcnn evaluate: error: argument --mode: invalid choice: "
                           "'exact'")


# ------------------------------------------------------------------ configuration
def _args(**kw):
    import argparse
    base = dict(config=None, name=None, images_per_gpu=None, steps_per_epoch=None,
                validation_steps=None, backbone=None, shots=None, anchor_scales=None,
                image_size=None, reference_size=None, set=None)
    return argparse.Namespace(**{**base, **kw})


def test_config_from_preset_flags_and_set():
    config, origin = build_config(_args(image_size=256, reference_size=64, shots=3,
                                        anchor_scales="8,16,32,64,128",
                                        set=["DETECTION_MIN_CONFIDENCE=0.25", "NAME=run_x"]),
                                  extra={"GPU_COUNT": 1})
    assert origin == "the small preset"
    # The small preset's 400/512 ratio carries over to the new sizes: 256 -> 200, 64 -> 50.
    assert (config.IMAGE_MAX_DIM, config.IMAGE_MIN_DIM) == (256, 200)
    assert (config.TARGET_MAX_DIM, config.TARGET_MIN_DIM) == (64, 50)
    assert config.NUM_TARGETS == 3 and config.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)
    assert config.DETECTION_MIN_CONFIDENCE == 0.25 and config.NAME == "run_x"
    assert config.FPN_CLASSIF_FC_LAYERS_SIZE == 512  # untouched small value
    large, _ = build_config(_args(config="large"), extra={"GPU_COUNT": 2})
    assert (large.IMAGE_MAX_DIM, large.BATCH_SIZE) == (1024, 6)


def test_config_of_a_checkpoint_comes_from_its_run(tmp_path):
    class Run(SmallConfig):
        NAME = "my_run"
        BACKBONE = "resnet18"
        IMAGE_MIN_DIM = 96
        IMAGE_MAX_DIM = 128
    Run().save(str(tmp_path / "config.json"))
    weights = str(tmp_path / "siamese_mrcnn_0003.h5")
    config, origin = build_config(_args(), weights, extra={"GPU_COUNT": 1})
    assert origin == f"the training run's {tmp_path}/config.json"
    assert (config.NAME, config.BACKBONE, config.IMAGE_MAX_DIM) == ("my_run", "resnet18", 128)
    config, _ = build_config(_args(image_size=256), weights)
    assert (config.IMAGE_MAX_DIM, config.IMAGE_MIN_DIM) == (256, 192)  # the run's 96/128
    config, origin = build_config(_args(config="small"), weights)
    assert origin == "the small preset" and config.BACKBONE == "resnet50"
    with pytest.raises(CliError, match="--set: expected KEY=VALUE"):
        build_config(_args(set=["backbone=resnet18"]), weights)


def test_detections_json_round_trips_masks_and_boxes(tmp_path):
    from siamese_mrcnn.commands import detections_json
    masks = np.zeros((6, 8, 2), bool)
    masks[1:3, 2:6, 0] = True          # 8 pixels
    masks[4:6, 0:1, 1] = True          # 2 pixels
    result = {"rois": np.array([[1, 2, 3, 6], [4, 0, 6, 1]], np.int32),
              "scores": np.array([0.9, 0.75], np.float32),
              "class_ids": np.array([1, 1], np.int32), "masks": masks}
    doc = detections_json(result, "q.png", (6, 8, 3), [("r.png", None, (0, 0, 4, 4))],
                          str(tmp_path / "w.h5"), 0.7)
    json.dumps(doc)  # serialisable as it is
    assert doc["query"]["height"] == 6 and doc["query"]["width"] == 8
    assert doc["references"][0]["box"] == [0, 0, 4, 4]
    first, second = doc["detections"]
    assert first["box"] == [1, 2, 3, 6] and first["bbox_xywh"] == [2, 1, 4, 2]
    assert (first["mask_area"], second["mask_area"]) == (8, 2)
    assert first["score"] == pytest.approx(0.9)
    for k, det in enumerate(doc["detections"]):
        decoded = mask_utils.decode({"size": det["mask"]["size"],
                                     "counts": det["mask"]["counts"].encode("ascii")})
        np.testing.assert_array_equal(decoded.astype(bool), masks[:, :, k])
    empty = dict(result, rois=np.zeros((0, 4), np.int32), scores=np.zeros(0, np.float32),
                 class_ids=np.zeros(0, np.int32), masks=np.zeros((6, 8, 0), bool))
    assert detections_json(empty, "q.png", (6, 8, 3), [], "w.h5", 0.7)["detections"] == []


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def trained_run(tiny_coco, tmp_path_factory):
    """One epoch of two steps, lr 1e-9, seeded: (logs dir, checkpoint path)."""
    logs = str(tmp_path_factory.mktemp("cli_logs"))
    assert main(["train", *data_flags(tiny_coco), "--weights", "none", "--split", "1",
                 "--schedule", "quick", "--epochs", "1", "--steps-per-epoch", "2",
                 "--validation-steps", "0", "--images-per-gpu", "2", "--lr", "1e-9",
                 "--seed", "3", "--logs", logs, *TINY]) == 0
    runs = os.listdir(logs)
    assert len(runs) == 1 and runs[0].startswith("small_siamese_mrcnn")
    run_dir = os.path.join(logs, runs[0])
    return logs, os.path.join(run_dir, "siamese_mrcnn_0001.h5")


def test_train_writes_a_checkpoint_and_the_effective_config(trained_run):
    logs, checkpoint = trained_run
    assert os.path.isfile(checkpoint)
    with open(os.path.join(os.path.dirname(checkpoint), "config.json")) as f:
        saved = json.load(f)["config"]
    assert saved["BACKBONE"] == "resnet18" and saved["IMAGE_MAX_DIM"] == 64
    assert saved["IMAGE_MIN_DIM"] == 50 and saved["TARGET_MAX_DIM"] == 32
    assert saved["STEPS_PER_EPOCH"] == 2 and saved["BATCH_SIZE"] == 2
    assert saved["LEARNING_RATE"] == pytest.approx(1e-9)
    assert saved["RPN_ANCHOR_SCALES"] == [8, 16, 32, 64, 128]


EVAL_FLAGS = ["--runs", "1", "--limit", "3", "--mode", "corrected"]


@pytest.fixture(scope="module")
def evaluated(trained_run, tiny_coco, tmp_path_factory):
    """One single-process evaluation: (report, partial records, printed output)."""
    logs, _ = trained_run
    folder = tmp_path_factory.mktemp("cli_eval")
    out, partial = str(folder / "results.json"), str(folder / "partial.jsonl")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", *data_flags(tiny_coco), "--weights", "last", "--logs", logs,
                     *EVAL_FLAGS, "--output", out, "--partial", partial]) == 0
    with open(out) as f:
        report = json.load(f)
    return report, read_records(partial), printed.getvalue()


def read_records(path):
    """{(run, image): record} of a partial results file (header line skipped)."""
    with open(path) as f:
        lines = [json.loads(line) for line in f][1:]
    return {(r["run"], r["image"]): r for r in lines}


def test_evaluate_reports_seen_and_unseen(trained_run, evaluated):
    _, checkpoint = trained_run
    report, records, printed = evaluated
    assert "split 1: 3 seen classes, 1 unseen (c2)" in printed
    assert "classes  type  AP" in printed
    settings = report["summary"]["settings"]
    assert settings["runs"] == 1 and settings["limit"] == 3 and settings["num_images"] == 3
    assert settings["weights"] == checkpoint and report["mode"]["name"] == "corrected"
    assert settings["classes"] == {"seen": [2, 3, 4], "unseen": [1]}
    assert report["config"]["DETECTION_MIN_CONFIDENCE"] == 0.05  # corrected mode's cut
    run = report["summary"]["per_run"][0]
    # Images 3, 7, 12 hold c5, c11 and c2 but no c9: c9 has no AP, the others do.
    assert run["seen"]["bbox"]["per_category"]["c9"]["AP"] is None
    for group, name in (("seen", "c5"), ("seen", "c11"), ("unseen", "c2")):
        for iou_type in ("bbox", "segm"):
            assert 0.0 <= run[group][iou_type]["per_category"][name]["AP"] <= 1.0
    # Every (run, image) is in the partial file; corrected mode queries all 4 classes.
    assert sorted(records) == [(0, 0), (0, 1), (0, 2)]
    assert all(len(r["references"]) == 4 for r in records.values())
    assert sum(len(r["results"]) for r in records.values()) > 0  # near-random heads detect


@pytest.mark.parametrize("baseline", ["wrong-reference", "random-boxes"])
def test_evaluate_a_paper_baseline(trained_run, tiny_coco, tmp_path, capsys, baseline):
    logs, _ = trained_run
    out, partial = str(tmp_path / "baseline.json"), str(tmp_path / "baseline.jsonl")
    assert main(["evaluate", *data_flags(tiny_coco), "--weights", "last", "--logs", logs,
                 *EVAL_FLAGS, "--seed", "2", "--baseline", baseline, "--output", out,
                 "--partial", partial]) == 0
    printed = capsys.readouterr().out
    assert f"baseline {baseline} (its draws seeded by 9):" in printed
    with open(out) as f:
        settings = json.load(f)["summary"]["settings"]
    assert settings["baseline"]["name"] == baseline and settings["baseline"]["seed"] == 9
    records = read_records(partial)
    assert sorted(records) == [(0, 0), (0, 1), (0, 2)]
    refs = [ref for r in records.values() for ref in r["references"]]
    if baseline == "wrong-reference":
        assert refs and all(ref["reference_class_id"] != ref["class_id"] for ref in refs)
    else:
        assert refs and all("reference_class_id" not in ref for ref in refs)


def test_combine_split_reports_into_the_paper_table(trained_run, evaluated, tiny_coco,
                                                   tmp_path, capsys):
    logs, _ = trained_run
    report1, _, printed = evaluated
    assert "full COCO summary (percent):" in printed and "AP75" in printed
    assert report1["coco_table"][0].split()[2:] == ["AP", "AP50", "AP75", "APs", "APm", "APl",
                                                    "AR1", "AR10", "AR100", "ARs", "ARm",
                                                    "ARl"]
    first, second = str(tmp_path / "split1.json"), str(tmp_path / "split2.json")
    with open(first, "w") as f:
        json.dump(report1, f)
    assert main(["evaluate", *data_flags(tiny_coco), "--weights", "last", "--logs", logs,
                 *EVAL_FLAGS, "--split", "2", "--output", second]) == 0
    capsys.readouterr()
    out = str(tmp_path / "paper.json")
    assert main(["evaluate", "--combine", first, second, "--output", out]) == 0
    printed = capsys.readouterr().out
    assert "2 split(s) ['1', '2'], 1 run(s), 1-shot, corrected mode" in printed
    assert "det AP50" in printed and "segm AP50" in printed
    with open(out) as f:
        paper = json.load(f)
    with open(second) as f:
        report2 = json.load(f)
    for group in ("seen", "unseen"):
        for iou_type in ("bbox", "segm"):
            for metric in ("AP", "AP50", "AP75", "AR100"):
                a = report1["summary"]["per_run"][0][group][iou_type][metric]
                b = report2["summary"]["per_run"][0][group][iou_type][metric]
                got = paper["summary"]["groups"][group][iou_type][metric]["mean"]
                assert got == pytest.approx((a + b) / 2), (group, iou_type, metric)
    assert paper["paper_table"][0].split() == ["classes", "det", "AP", "det", "AP50", "segm",
                                               "AP", "segm", "AP50"]
    line = run_error(capsys, ["evaluate", "--combine", first, first])
    assert line == "siamese-mrcnn: error: --combine: combine_reports: split(s) ['1'] given " \
                   "more than once"
    line = run_error(capsys, ["evaluate", "--combine", str(tmp_path / "none.json")])
    assert line.startswith("siamese-mrcnn: error: --combine: report not found:")


def test_sharded_evaluation_merges_to_the_single_process_result(
        trained_run, evaluated, tiny_coco, tmp_path, capsys):
    logs, _ = trained_run
    report, records, _ = evaluated
    shards = [str(tmp_path / f"shard{i}.jsonl") for i in range(2)]
    for i, path in enumerate(shards):
        assert main(["evaluate", *data_flags(tiny_coco), "--weights", "last", "--logs", logs,
                     *EVAL_FLAGS, "--shard", str(i), "--num-shards", "2",
                     "--partial", path]) == 0
    assert sorted(read_records(shards[0])) == [(0, 0), (0, 2)]
    assert sorted(read_records(shards[1])) == [(0, 1)]
    joined = {**read_records(shards[0]), **read_records(shards[1])}
    for key, record in records.items():
        assert joined[key]["references"] == record["references"]
        got, want = joined[key]["results"], record["results"]
        assert [(r["category_id"], r.get("segmentation")) for r in got] == [
            (r["category_id"], r.get("segmentation")) for r in want]
        np.testing.assert_allclose([r["bbox"] + [r["score"]] for r in got],
                                   [r["bbox"] + [r["score"]] for r in want], atol=1e-4)

    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--merge", shards[0]])
    assert line == "siamese-mrcnn: error: --merge: merge_partials: shard(s) [1] of 2 missing"
    merged_out = str(tmp_path / "merged.json")
    assert main(["evaluate", *data_flags(tiny_coco), "--merge", *shards,
                 "--output", merged_out]) == 0
    with open(merged_out) as f:
        merged = json.load(f)
    assert merged["summary"]["per_run"] == report["summary"]["per_run"]
    assert merged["table"] == report["table"]


def test_detect_writes_json_and_figure(trained_run, tiny_coco, tmp_path, capsys):
    logs, checkpoint = trained_run
    out_dir = tmp_path / "det"
    assert main(["detect", "--weights", checkpoint, "--image", image_path(tiny_coco, 33),
                 "--reference-image", image_path(tiny_coco, 28), "--reference-box",
                 "8,60,30,92", "--min-confidence", "0.5", "--output-dir", str(out_dir)]) == 0
    with open(out_dir / "detections.json") as f:
        doc = json.load(f)
    assert doc["query"] == {"path": image_path(tiny_coco, 33), "height": 64, "width": 96}
    assert doc["references"] == [{"path": image_path(tiny_coco, 28), "box": [8, 60, 30, 92]}]
    assert doc["weights"] == checkpoint and doc["min_confidence"] == 0.5
    detections = doc["detections"]
    assert 1 <= len(detections) <= 8  # DETECTION_MAX_INSTANCES of the run's config
    scores = [d["score"] for d in detections]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    for d in detections:
        y1, x1, y2, x2 = d["box"]
        assert 0 <= y1 < y2 <= 64 and 0 <= x1 < x2 <= 96 and d["class_id"] == 1
        assert d["bbox_xywh"] == [x1, y1, x2 - x1, y2 - y1]
        mask = mask_utils.decode({"size": d["mask"]["size"],
                                  "counts": d["mask"]["counts"].encode("ascii")})
        assert mask.shape == (64, 96) and int(mask.sum()) == d["mask_area"]
        rows, cols = np.nonzero(mask)
        if len(rows):  # a mask lies inside its box
            assert y1 <= rows.min() and rows.max() < y2 and x1 <= cols.min() and cols.max() < x2
    figure = skimage.io.imread(out_dir / "detections.png")
    assert figure.ndim == 3 and figure.shape[0] == 600  # 6 inches at 100 dpi
    assert f"{len(detections)} detection(s); wrote" in capsys.readouterr().out


def test_weights_whose_layers_do_not_match(trained_run, tiny_coco, tmp_path, capsys):
    _, checkpoint = trained_run
    bad = str(tmp_path / "bad.h5")  # no config.json beside it: the flags give the model
    shutil.copy(checkpoint, bad)
    with h5py.File(bad, "r+") as f:
        group = f["fpn_distance_P2"]
        del group["fpn_distance_P2/kernel:0"]
        group.create_dataset("fpn_distance_P2/kernel:0", data=np.zeros((1, 1, 64, 7), "f4"))
    line = run_error(capsys, ["detect", "--weights", bad, "--image", image_path(tiny_coco, 33),
                              "--reference", image_path(tiny_coco, 28), *TINY])
    assert line.startswith(f"siamese-mrcnn: error: cannot load weights: {bad}: layer "
                           f"'fpn_distance_P2', weight 'fpn_distance_P2/kernel:0' has shape "
                           f"(1, 1, 64, 7) in the file")
    foreign = str(tmp_path / "foreign.h5")
    with h5py.File(foreign, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense_7"])
        f.create_group("dense_7").attrs["weight_names"] = np.array([b"dense_7/kernel:0"])
        f["dense_7"].create_dataset("dense_7/kernel:0", data=np.zeros((3, 3), "f4"))
    line = run_error(capsys, ["train", *data_flags(tiny_coco), "--weights", "imagenet",
                              "--imagenet-weights", foreign, "--schedule", "quick", "--epochs",
                              "1", "--logs", str(tmp_path / "logs"), *TINY])
    assert line.startswith(f"siamese-mrcnn: error: cannot load weights: no layer of {foreign} "
                           f"matches the model (resnet18 backbone)")


# ------------------------------------------------------------------ data wiring
def test_training_batches_use_only_the_seen_classes(tiny_coco, tiny_config):
    import types

    from siamese_mrcnn.cli_inputs import load_coco_dataset
    from siamese_mrcnn.model import SiameseMaskRCNN, class_key
    train = load_coco_dataset(lambda d: d.load_coco_file(tiny_coco["annotation_file"],
                                                         tiny_coco["image_dir"]))
    seen = [2, 3, 4]  # split 1 holds out c2 (contiguous 1)
    owner = types.SimpleNamespace(config=tiny_config,
                                  train_class_keys=tuple(class_key(train, c) for c in seen))
    make = SiameseMaskRCNN.make_data_generator
    generator = make(owner, train, shuffle=True, seed=0, steps=4)
    assert generator.active_class_ids.tolist() == seen
    drawn = set()
    for image_id in generator.image_ids:
        for draw in range(3):
            _, provenance = generator.draw_sample(image_id, np.random.default_rng([draw,
                                                                                  image_id]))
            if provenance is not None:
                drawn.add(provenance.class_id)
    assert drawn == set(seen)
    # A validation file numbered differently (only COCO ids 5 and 11 -> contiguous 1, 2)
    # gets the same classes by their source ids.
    val = load_coco_dataset(lambda d: d.load_coco_file(tiny_coco["annotation_file"],
                                                       tiny_coco["image_dir"], class_ids=[5, 11]))
    assert make(owner, val, seed=0, steps=1).active_class_ids.tolist() == [1, 2]
    only_unseen = types.SimpleNamespace(config=tiny_config, train_class_keys=("coco.2",))
    with pytest.raises(ValueError, match="has none of the training classes"):
        make(only_unseen, val, seed=0, steps=1)


def test_procedural_datasets_of_train_and_evaluate(tmp_path):
    import argparse

    from siamese_mrcnn.cli_inputs import exported_procedural
    from siamese_mrcnn.commands import _training_datasets
    args = argparse.Namespace(
        procedural_images=20, procedural_categories=12, procedural_image_size=64,
        procedural_seed=5, procedural_dir=str(tmp_path / "test"), split="2",
        unseen_classes=None, unseen_every=None, unseen_offset=None)
    train, val, split = _training_datasets(args, "procedural")
    assert split.unseen_ids == (2, 6, 10)  # every 4th from 2
    assert (train.num_images, val.num_images) == (20, 2)
    placed = set(np.concatenate(train.image_category_index + val.image_category_index).tolist())
    assert placed and placed <= set(split.seen_ids)
    assert [info["seed"] for info in (train.image_info[0], val.image_info[0])] == [5, 6]
    with exported_procedural(args, 6, args.procedural_seed + 2) as test:
        assert test.num_images == 6 and test.class_names[1:] == train.class_names[1:]
        assert os.path.isfile(tmp_path / "test" / "annotations.json")
    args.procedural_dir = None
    with exported_procedural(args, 2, 7) as test:
        folder = os.path.dirname(test.image_reference(0))
        assert os.path.isfile(test.image_reference(0))
    assert not os.path.exists(folder)  # the temporary export is removed afterwards
