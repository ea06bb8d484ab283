"""The embedded demo (siamese_mrcnn.demo, run by scripts/demo.py and `siamese-mrcnn
demo`): its arguments and summaries, and a --quick run end to end through each entry
point. The demo's data and callbacks have their own tests
(tests/siamese_mrcnn/test_procedural.py, test_callbacks.py)."""

import csv
import json
import math
import os
import subprocess
import sys

import pytest

from siamese_mrcnn import cli, demo
from siamese_mrcnn.baselines import WRONG_REFERENCE_NOTE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------- arguments
def test_defaults_full_and_quick():
    args = demo.parse_args([])
    assert (args.minutes, args.steps, args.image_size) == (12.0, None, 128)
    assert (args.categories, args.eval_categories, args.eval_images) == (80, 10, 100)
    assert args.output_dir == os.path.join("runs", "demo") and args.figures_dir == "figures"
    quick = demo.parse_args(["--quick"])
    assert (quick.minutes, quick.steps, quick.image_size) == (None, 3, 64)
    # A budget given explicitly replaces the default one, also with --quick.
    assert demo.parse_args(["--quick", "--minutes", "0.5"]).steps is None
    assert demo.parse_args(["--steps", "7"]).minutes is None
    # AP while training: every 2 epochs on 24 held-out images; --quick every epoch on 4.
    assert (args.ap_every, args.ap_images, quick.ap_every, quick.ap_images) == (2, 24, 1, 4)
    assert demo.parse_args(["--ap-every", "0"]).ap_every == 0


@pytest.mark.parametrize("argv", [["--minutes", "1", "--steps", "2"], ["--categories", "7"],
                                  ["--steps", "0"], ["--eval-images", "0"],
                                  ["--set", "lower=1"], ["--ap-every", "-1"],
                                  ["--ap-images", "0"]])
def test_bad_arguments_exit(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        demo.parse_args(argv)
    assert raised.value.code == 2
    assert capsys.readouterr().err.startswith("usage: scripts/demo.py")


def test_the_cli_demo_has_the_same_options(capsys):
    parser = cli.build_parser()
    script = demo.add_arguments(__import__("argparse").ArgumentParser())
    sub = parser._subparsers._group_actions[0].choices["demo"]
    # Every option of the script, and the CLI's --backend, with the same defaults.
    assert {a.dest: a.default for a in script._actions if a.dest != "help"} == \
        {a.dest: a.default for a in sub._actions if a.dest not in ("help", "command")}
    args = parser.parse_args(["demo", "--quick", "--steps", "4"])
    assert (args.command, args.quick, args.steps) == ("demo", True, 4)
    # A bad combination is a one-line CLI error, exit status 2.
    with pytest.raises(SystemExit) as raised:
        cli.main(["demo", "--quick", "--categories", "7"])
    assert raised.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "siamese-mrcnn: error: --categories must be >= 8 (every 4th category is unseen; "
        "at least 2 unseen are needed)")


def test_presets_are_the_demo_configurations():
    from siamese_mrcnn.config import PRESETS, DemoConfig, QuickConfig
    assert type(demo.make_config(demo.parse_args([]))) is DemoConfig is PRESETS["demo"]
    assert type(demo.make_config(demo.parse_args(["--quick"]))) is QuickConfig \
        is PRESETS["quick"]


def test_config_overrides():
    args = demo.parse_args(["--lr", "0.05", "--batch", "3", "--set", "TRAIN_BN=false",
                            "--set", "RPN_ANCHOR_SCALES=[8, 16, 32, 64, 128]"])
    config = demo.make_config(args)
    assert config.LEARNING_RATE == 0.05 and config.BATCH_SIZE == 3
    assert config.TRAIN_BN is False and tuple(config.RPN_ANCHOR_SCALES) == (8, 16, 32, 64, 128)
    assert config.FPN_FEATUREMAPS == config.TOP_DOWN_PYRAMID_SIZE
    assert config.TARGET_MAX_DIM % 32 == 0 and config.IMAGE_MAX_DIM % 64 == 0


# ---------------------------------------------------------------------- summaries
def _fake_summary(unseen_ap50):
    stat = {"mean": unseen_ap50, "ci95": 0.0, "values": [unseen_ap50]}
    groups = {g: {t: {"AP": stat, "AP50": stat} for t in ("bbox", "segm")}
              for g in ("seen", "unseen")}
    return {"iou_types": ["bbox", "segm"], "groups": groups, "per_run": []}


def test_combined_summary_and_comparison():
    ours, theirs = _fake_summary(0.30), _fake_summary(0.05)
    combined = demo.combined_summary(ours, theirs)
    assert list(combined["groups"]) == ["seen", "unseen", "seen, random ref",
                                        "unseen, random ref"]
    assert combined["random_reference"]["how"] == WRONG_REFERENCE_NOTE
    assert "groups" in ours and list(ours["groups"]) == ["seen", "unseen"]  # not modified
    comparison = demo.key_comparison(ours, theirs)
    assert comparison["bbox"] == {"true": 0.30, "random": 0.05, "ratio": pytest.approx(6.0)}
    assert demo.key_comparison(ours, _fake_summary(0.0))["segm"]["ratio"] is None


# ---------------------------------------------------------------------- end to end
def _history(log_dir):
    with open(os.path.join(log_dir, "history.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_quick_demo_end_to_end(tmp_path, capsys):
    out_dir, fig_dir = tmp_path / "run", tmp_path / "figs"
    result = demo.run(demo.parse_args(["--quick", "--output-dir", str(out_dir),
                                       "--figures-dir", str(fig_dir), "--eval-images", "5"]))
    printed = capsys.readouterr().out

    # The table holds both evaluations, bbox and segm; the key comparison follows.
    for row in ("seen", "unseen", "seen, random ref", "unseen, random ref"):
        for iou_type in ("bbox", "segm"):
            assert any(line.split("  ")[0].strip() == row and iou_type in line
                       for line in printed.splitlines()), (row, iou_type)
    assert "classes" in printed and "AP50" in printed
    assert "true reference vs random wrong-category reference" in printed
    assert f"checkpoint: {result['checkpoint']}" in printed
    assert os.path.isfile(result["checkpoint"]) and result["checkpoint"].endswith(".h5")
    assert str(out_dir) in result["checkpoint"]

    with open(out_dir / "results.json", encoding="utf-8") as f:
        report = json.load(f)
    summary = report["summary"]
    assert report["mode"]["name"] == "corrected" and report["config"]["BACKBONE"] == "resnet18"
    assert summary["training"]["steps"] == 3
    assert summary["settings"]["num_images"] == 5
    assert set(summary["groups"]) == {"seen", "unseen", "seen, random ref",
                                      "unseen, random ref"}
    for group in summary["groups"].values():
        for iou_type in ("bbox", "segm"):
            for metric in ("AP", "AP50"):
                value = group[iou_type][metric]["mean"]
                assert value is None or 0.0 <= value <= 1.0
    assert set(summary["comparison"]["unseen_AP50"]) == {"bbox", "segm"}
    assert summary["random_reference"]["settings"]["mode"]["name"] == "corrected"
    assert len(report["table"]) == 2 + 8

    # AP while training: 3 steps of 2 per epoch are 2 epochs, each evaluated on the 4
    # held-out images; history.csv has an AP50 column per (type, group), a number in
    # [0, 1] in each epoch's row, and the same numbers as the printed record.
    monitor = summary["training"]["ap_while_training"]
    keys = ["ap50_bbox_seen", "ap50_bbox_unseen", "ap50_segm_seen", "ap50_segm_unseen"]
    assert monitor["images"] == 4 and monitor["every_epochs"] == 1
    assert [e["epoch"] for e in monitor["evaluations"]] == [1, 2]
    rows = _history(summary["training"]["log_dir"])
    assert monitor["history"] == os.path.join(summary["training"]["log_dir"], "history.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1] and set(keys) <= set(rows[0])
    for row, evaluation in zip(rows, monitor["evaluations"]):
        for key in keys:
            assert 0.0 <= float(row[key]) <= 1.0
            assert float(row[key]) == pytest.approx(evaluation[key], abs=1e-6)
        assert math.isfinite(float(row["loss"]))
    assert "one-shot AP50 (%) while training, 4 held-out images" in printed
    assert "epoch 1: one-shot AP50 (%) on 4 held-out images: bbox seen" in printed
    assert os.path.isdir(os.path.join(summary["training"]["log_dir"], "one_shot_ap"))

    import matplotlib.image
    assert result["figures"] == [str(fig_dir / n) for n in
                                 ("demo_seen.png", "demo_unseen.png", "demo_grid.png")]
    for name in ("demo_seen.png", "demo_unseen.png", "demo_grid.png"):
        pixels = matplotlib.image.imread(str(fig_dir / name))
        assert pixels.ndim == 3 and pixels.shape[0] > 400 and pixels.shape[1] >= 480
        assert pixels[..., :3].std() > 0.05  # not a blank canvas
    # The grid holds both groups side by side: twice the column pairs, a gap between.
    grid = matplotlib.image.imread(str(fig_dir / "demo_grid.png"))
    single = matplotlib.image.imread(str(fig_dir / "demo_seen.png"))
    assert grid.shape[1] > 2 * single.shape[1] - 60
    assert sorted(os.listdir(fig_dir)) == ["demo_grid.png", "demo_seen.png",
                                           "demo_unseen.png"]

    # `siamese-mrcnn demo --weights` evaluates the checkpoint without training (its
    # run's config.json rebuilds the same model) and reproduces the numbers of the run
    # that wrote it: the CLI runs the same code.
    again_dir = tmp_path / "again"
    assert cli.main(["demo", "--quick", "--weights", result["checkpoint"], "--output-dir",
                     str(again_dir), "--figures-dir", str(tmp_path / "figs2"),
                     "--eval-images", "5"]) == 0
    printed = capsys.readouterr().out
    assert f"no training: evaluating {result['checkpoint']}" in printed
    assert "step/s" not in printed and "s/step" not in printed  # no progress bar
    with open(again_dir / "results.json", encoding="utf-8") as f:
        again = json.load(f)["summary"]
    assert again["training"] == {"steps": 0, "weights": result["checkpoint"]}
    for name, group in summary["groups"].items():
        for iou_type in ("bbox", "segm"):
            for metric in ("AP", "AP50"):
                first = group[iou_type][metric]["mean"]
                second = again["groups"][name][iou_type][metric]["mean"]
                assert (first is None and second is None) or \
                    second == pytest.approx(first, abs=1e-6), (name, iou_type, metric)

    # A float16 copy with its config.json (scripts/compact_checkpoint.py, how
    # checkpoints/ is made) is about half the size and evaluates like the original up to
    # float16 rounding, through scripts/demo.py.
    shipped = tmp_path / "shipped"
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "compact_checkpoint.py"),
                           result["checkpoint"], str(shipped), "--name", "small.h5"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    target = shipped / "small.h5"
    assert f"{target}: " in done.stdout and os.path.isfile(shipped / "config.json")
    assert os.path.getsize(target) < 0.6 * os.path.getsize(result["checkpoint"])
    small_dir = tmp_path / "small"
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "demo.py"), "--quick",
                           "--weights", str(target), "--output-dir", str(small_dir),
                           "--figures-dir", str(tmp_path / "figs3"), "--eval-images", "5"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "configuration from" in done.stdout and "figures:    " in done.stdout
    with open(small_dir / "results.json", encoding="utf-8") as f:
        small = json.load(f)["summary"]
    for name, group in summary["groups"].items():
        for iou_type in ("bbox", "segm"):
            a = group[iou_type]["AP50"]["mean"]
            b = small["groups"][name][iou_type]["AP50"]["mean"]
            assert (a is None and b is None) or abs(a - b) <= 0.1, (name, iou_type, a, b)
    done = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "compact_checkpoint.py"),
                           str(tmp_path / "missing.h5"), str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no such checkpoint file" in done.stderr


def test_weights_argument_errors(tmp_path):
    with pytest.raises(SystemExit):
        demo.parse_args(["--weights", str(tmp_path / "missing.h5")])
    present = tmp_path / "w.h5"
    present.write_bytes(b"")
    with pytest.raises(SystemExit):
        demo.parse_args(["--weights", str(present), "--steps", "5"])
    assert demo.parse_args(["--weights", str(present)]).minutes is None
