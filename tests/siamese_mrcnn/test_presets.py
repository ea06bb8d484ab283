"""The named presets (small, large, and the demo's demo and quick) and what they give a
command-line user: a small model trained on a COCO-format folder with ``--config demo``
and no ``--set``, then evaluated with a grid figure."""

import csv
import json
import math
import os
import subprocess
import sys

import matplotlib.image
import pytest

from siamese_mrcnn.cli import main
from siamese_mrcnn.cli_inputs import build_config
from siamese_mrcnn.config import (PRESETS, DemoConfig, LargeConfig, QuickConfig,
                                  SiameseConfig, SmallConfig)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_presets_by_name():
    assert PRESETS == {"small": SmallConfig, "large": LargeConfig, "demo": DemoConfig,
                       "quick": QuickConfig}
    for name, cls in PRESETS.items():
        config = cls()  # each one is valid as it is
        assert isinstance(config, SiameseConfig) and config.NUM_CLASSES == 2, name
    demo, quick = DemoConfig(), QuickConfig()
    # The demo's model: quarter-width ResNet-18, 128 px queries, 64 px references,
    # anchors from 16 px, the corrected evaluation's score cut-off.
    assert (demo.BACKBONE, demo.BACKBONE_WIDTH, demo.IMAGE_MAX_DIM, demo.TARGET_MAX_DIM) == \
        ("resnet18", 0.25, 128, 64)
    assert tuple(demo.RPN_ANCHOR_SCALES) == (16, 32, 64, 128, 256)
    assert demo.DETECTION_MIN_CONFIDENCE == 0.05 and demo.BATCH_SIZE == 8
    assert (quick.IMAGE_MAX_DIM, quick.TARGET_MAX_DIM, quick.BATCH_SIZE) == (64, 32, 2)
    assert quick.BACKBONE == "resnet18" and quick.TRAIN_BN is True  # from the demo's


@pytest.mark.parametrize("name", ["demo", "quick"])
def test_config_flag_selects_the_demo_presets(name):
    from siamese_mrcnn.cli import build_parser
    args = build_parser().parse_args(["train", "--config", name, "--steps-per-epoch", "5"])
    config, origin = build_config(args, extra={"GPU_COUNT": 1})
    assert isinstance(config, PRESETS[name]) and origin == f"the {name} preset"
    assert config.STEPS_PER_EPOCH == 5 and config.NAME == PRESETS[name].NAME


def test_config_help_names_every_preset(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--config {demo,large,quick,small}" in help_text


@pytest.fixture(scope="module")
def demo_run(tiny_coco, tmp_path_factory):
    """``siamese-mrcnn train --config demo`` on the tiny COCO-format folder, as a user
    types it: no --set; the run's size is set by ordinary flags. Returns (logs folder,
    run folder, stdout)."""
    logs = str(tmp_path_factory.mktemp("demo_preset_logs"))
    command = [sys.executable, "-m", "siamese_mrcnn", "train", "--config", "demo",
               "--annotations", tiny_coco["annotation_file"], "--images",
               tiny_coco["image_dir"], "--unseen-classes", "c2", "--weights", "none",
               "--schedule", "quick", "--epochs", "1", "--heads-epochs", "0",
               "--steps-per-epoch", "2", "--logs", logs]
    assert "--set" not in command
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = os.listdir(logs)
    return logs, os.path.join(logs, run), done.stdout


def test_train_with_the_demo_preset_on_a_coco_folder(demo_run):
    logs, run_dir, printed = demo_run
    assert os.path.basename(run_dir).startswith("demo_siamese_mrcnn")
    assert "configuration (from the demo preset and the flags):" in printed
    assert "split custom: 3 seen classes, 1 unseen (c2)" in printed
    assert os.path.isfile(os.path.join(run_dir, "siamese_mrcnn_0001.h5"))
    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)["config"]
    # The demo preset as it is, but for what the flags and the command set.
    expected = {k: v for k, v in DemoConfig().to_dict().items()
                if k not in ("STEPS_PER_EPOCH", "LEARNING_RATE")}
    assert {k: saved[k] for k in expected} == json.loads(json.dumps(expected))
    assert saved["STEPS_PER_EPOCH"] == 2
    assert saved["LEARNING_RATE"] == pytest.approx(0.02 * 8 / 12)  # the paper's scaling
    with open(os.path.join(run_dir, "run.json")) as f:
        record = json.load(f)
    assert record["split"]["unseen_names"] == ["c2"]
    assert record["split"]["seen_names"] == ["c5", "c9", "c11"]
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert math.isfinite(float(row["loss"])) and float(row["loss"]) > 0


def test_evaluate_writes_a_grid_figure(demo_run, tiny_coco, tmp_path, capsys):
    logs, run_dir, _ = demo_run
    figure = tmp_path / "figs" / "grid.png"
    assert main(["evaluate", "--annotations", tiny_coco["annotation_file"], "--images",
                 tiny_coco["image_dir"], "--weights", "last", "--name", "demo_siamese_mrcnn",
                 "--logs", logs, "--runs", "1", "--limit", "4", "--mode", "corrected",
                 "--figure", str(figure), "--figure-rows", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {figure}" in printed
    pixels = matplotlib.image.imread(str(figure))
    # Seen and unseen column pairs of 1.5-inch panels at 150 dpi; 2 rows, each panel
    # with its label band, under the title and the group headers.
    from siamese_mrcnn.figures import LABEL_BAND
    assert pixels.shape[1] == pytest.approx(150 * (1.5 * 4.12 + 0.2), abs=1)
    assert pixels.shape[0] == pytest.approx(150 * (1.5 * (1 + LABEL_BAND) * 2 * 1.04 + 0.45),
                                            abs=1)
    assert pixels[..., :3].std() > 0.05


@pytest.mark.parametrize("flags, message", [
    (["--merge", "x.jsonl"], "--figure draws the model's detections: not with --merge"),
    (["--weights", "last", "--figure", "grid.jpg"], "--figure grid.jpg: expected a .png"),
])
def test_figure_argument_errors(capsys, tmp_path, flags, message):
    argv = ["evaluate", "--annotations", "a.json", "--images", str(tmp_path)] + flags
    if "--figure" not in flags:
        argv += ["--figure", "grid.png"]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
