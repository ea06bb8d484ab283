"""The embedded demo (scripts/demo.py): its pieces, and a --quick run end to end."""

import json
import os
import time
import types

import numpy as np
import pytest

from tests.scripts import load_script

demo = load_script("demo.py")


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


@pytest.mark.parametrize("argv", [["--minutes", "1", "--steps", "2"], ["--categories", "7"],
                                  ["--steps", "0"], ["--eval-images", "0"],
                                  ["--set", "lower=1"]])
def test_bad_arguments_exit(argv):
    with pytest.raises(SystemExit):
        demo.parse_args(argv)


def test_config_overrides():
    args = demo.parse_args(["--lr", "0.05", "--batch", "3", "--set", "TRAIN_BN=false",
                            "--set", "RPN_ANCHOR_SCALES=[8, 16, 32, 64, 128]"])
    config = demo.make_config(args)
    assert config.LEARNING_RATE == 0.05 and config.BATCH_SIZE == 3
    assert config.TRAIN_BN is False and tuple(config.RPN_ANCHOR_SCALES) == (8, 16, 32, 64, 128)
    assert config.FPN_FEATUREMAPS == config.TOP_DOWN_PYRAMID_SIZE
    assert config.TARGET_MAX_DIM % 32 == 0 and config.IMAGE_MAX_DIM % 64 == 0


# ---------------------------------------------------------------------- schedule
def test_learning_rate_schedule_by_hand():
    # Step 0: a tenth of the peak; warmed up at progress 0: the peak.
    assert demo.learning_rate_at(0.0, 0, 0.02, 10) == pytest.approx(0.002)
    assert demo.learning_rate_at(0.0, 5, 0.02, 10) == pytest.approx(0.02 * 0.55)
    assert demo.learning_rate_at(0.0, 10, 0.02, 10) == pytest.approx(0.02)
    # Half-way through the cosine: 0.05 + 0.95 * 0.5; the end: a twentieth.
    assert demo.learning_rate_at(0.5, 100, 0.02, 10) == pytest.approx(0.02 * 0.525)
    assert demo.learning_rate_at(1.0, 100, 0.02, 10) == pytest.approx(0.001)
    assert demo.learning_rate_at(3.0, 100, 0.02, 10) == pytest.approx(0.001)


def _fake_model():
    return types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=None),
                                 stop_training=False)


def test_budget_callback_stops_after_steps_and_sets_lr():
    callback = demo.make_budget_callback(max_steps=3, seconds=None, base_lr=0.1,
                                         warmup_steps=2)
    model = _fake_model()
    callback.set_model(model)
    callback.on_train_begin()
    seen_lr = []
    for batch in range(3):
        assert not model.stop_training
        callback.on_train_batch_begin(batch)
        seen_lr.append(model.optimizer.learning_rate)
        callback.on_train_batch_end(batch, {"loss": 1.5})
    callback.on_train_end()
    assert model.stop_training and callback.steps == 3
    expected = [demo.learning_rate_at(s / 3, s, 0.1, 2) for s in range(3)]
    np.testing.assert_allclose(seen_lr, expected)
    assert callback.last_logs == {"loss": 1.5}


def test_budget_callback_stops_when_time_is_up():
    callback = demo.make_budget_callback(max_steps=None, seconds=0.3, base_lr=0.1,
                                         warmup_steps=1)
    model = _fake_model()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_train_batch_begin(0)
    callback.on_train_batch_end(0, {"loss": 2.0})
    assert not model.stop_training
    time.sleep(0.35)
    callback.on_train_batch_begin(1)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.05)  # end of the cosine
    callback.on_train_batch_end(1, {"loss": 2.0})
    callback.on_train_end()
    assert model.stop_training and callback.steps == 2


# ---------------------------------------------------------------------- evaluation pieces
def test_choose_evaluated_is_seeded_and_within_groups():
    seen, unseen = list(range(2, 40, 2)), list(range(1, 40, 4))
    a = demo.choose_evaluated(seen, unseen, 4, seed=5)
    assert a == demo.choose_evaluated(seen, unseen, 4, seed=5)
    assert len(a[0]) == len(a[1]) == 4 and set(a[0]) <= set(seen) and set(a[1]) <= set(unseen)
    assert a[0] == sorted(a[0])
    # A group smaller than the count is taken whole.
    assert demo.choose_evaluated([2, 3], [1], 4, seed=0) == [[2, 3], [1]]


def test_evaluable_categories_need_two_images():
    dataset = types.SimpleNamespace(category_image_index={1: np.array([0, 3]),
                                                          2: np.array([4]), 3: np.array([])})
    assert demo.evaluable_categories(dataset, [1, 2, 3, 4]) == [1]


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
    assert combined["random_reference"]["how"] == demo.RANDOM_REFERENCE_NOTE
    assert "groups" in ours and list(ours["groups"]) == ["seen", "unseen"]  # not modified
    comparison = demo.key_comparison(ours, theirs)
    assert comparison["bbox"] == {"true": 0.30, "random": 0.05, "ratio": pytest.approx(6.0)}
    assert demo.key_comparison(ours, _fake_summary(0.0))["segm"]["ratio"] is None


# ---------------------------------------------------------------------- end to end
def test_quick_demo_end_to_end(tmp_path, capsys):
    out_dir, fig_dir = tmp_path / "run", tmp_path / "figs"
    result = demo.main(["--quick", "--output-dir", str(out_dir), "--figures-dir",
                        str(fig_dir), "--eval-images", "5"])
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

    import matplotlib.image
    for name in ("demo_seen.png", "demo_unseen.png"):
        path = fig_dir / name
        assert str(path) in result["figures"]
        pixels = matplotlib.image.imread(str(path))
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert sorted(os.listdir(fig_dir)) == ["demo_seen.png", "demo_unseen.png"]

    # --weights evaluates the checkpoint without training (its run's config.json
    # rebuilds the same model) and reproduces the numbers of the run that wrote it.
    again = demo.main(["--quick", "--weights", result["checkpoint"], "--output-dir",
                       str(tmp_path / "again"), "--figures-dir", str(tmp_path / "figs2"),
                       "--eval-images", "5"])
    printed = capsys.readouterr().out
    assert f"no training: evaluating {result['checkpoint']}" in printed
    assert "step/s" not in printed and "s/step" not in printed  # no progress bar
    assert again["summary"]["training"] == {"steps": 0, "weights": result["checkpoint"]}
    for name, group in summary["groups"].items():
        for iou_type in ("bbox", "segm"):
            for metric in ("AP", "AP50"):
                first = group[iou_type][metric]["mean"]
                second = again["summary"]["groups"][name][iou_type][metric]["mean"]
                assert (first is None and second is None) or \
                    second == pytest.approx(first, abs=1e-6), (name, iou_type, metric)


    # A float16 copy with its config.json (how checkpoints/ is made) is about half the
    # size and evaluates like the original up to float16 rounding.
    compact = load_script("compact_checkpoint.py")
    target = compact.main([result["checkpoint"], str(tmp_path / "shipped"), "--name",
                           "small.h5"])
    assert target == str(tmp_path / "shipped" / "small.h5")
    assert os.path.isfile(tmp_path / "shipped" / "config.json")
    assert os.path.getsize(target) < 0.6 * os.path.getsize(result["checkpoint"])
    small = demo.main(["--quick", "--weights", target, "--output-dir", str(tmp_path / "small"),
                       "--figures-dir", str(tmp_path / "figs3"), "--eval-images", "5"])
    assert "configuration from" in capsys.readouterr().out
    for name, group in summary["groups"].items():
        for iou_type in ("bbox", "segm"):
            a = group[iou_type]["AP50"]["mean"]
            b = small["summary"]["groups"][name][iou_type]["AP50"]["mean"]
            assert (a is None and b is None) or abs(a - b) <= 0.1, (name, iou_type, a, b)
    with pytest.raises(SystemExit):
        compact.main([str(tmp_path / "missing.h5"), str(tmp_path / "x")])

def test_weights_argument_errors(tmp_path):
    with pytest.raises(SystemExit):
        demo.parse_args(["--weights", str(tmp_path / "missing.h5")])
    present = tmp_path / "w.h5"
    present.write_bytes(b"")
    with pytest.raises(SystemExit):
        demo.parse_args(["--weights", str(present), "--steps", "5"])
    assert demo.parse_args(["--weights", str(present)]).minutes is None

