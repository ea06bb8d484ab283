"""Item 11: a checkpoint that does not fit says why, in one short line.

Before the issue a checkpoint copied without its config.json failed with a
15,000-character message listing weight names, and a plain Mask R-CNN checkpoint
was answered with "load with by_name=True", an argument the command line lacks.
"""

import os
import shutil

import pytest

from siamese_mrcnn.cli import main
from tests.robustness.conftest import QUICK, TINY, data_flags, image_path, run_error


@pytest.fixture(scope="module")
def plain_checkpoint(tmp_path_factory):
    """A real Mask R-CNN (not Siamese) checkpoint, Matterport's layout."""
    from mrcnn.model import MaskRCNN
    from tests.configs import TinyConfig
    folder = tmp_path_factory.mktemp("plain")
    # Widths of the CLI's TINY model, so only the class-specific heads differ.
    config = type("Plain", (TinyConfig,), {"BACKBONE": "resnet18", "RPN_CONV_SIZE": 32})()
    model = MaskRCNN("inference", config, str(folder))
    path = str(folder / "mask_rcnn_plain.h5")
    model.save_weights(path)
    return path


def detect(trained_run, tiny_coco, tmp_path, weights, *extra):
    return ["detect", "--weights", weights, "--image", image_path(tiny_coco, 33),
            "--reference", image_path(tiny_coco, 28), "--output-dir", str(tmp_path / "o"),
            *extra]


def test_a_checkpoint_without_its_config_json_says_so_in_one_short_line(
        trained_run, tiny_coco, tmp_path, capsys):
    copy = str(tmp_path / "siamese_mrcnn_0002.h5")
    shutil.copy(trained_run["checkpoints"][1], copy)
    line = run_error(capsys, detect(trained_run, tiny_coco, tmp_path, copy))
    assert line.startswith(f"siamese-mrcnn: error: cannot load weights: {copy}: ")
    assert line.endswith(
        f". The model was built from the small preset and the flags: no config.json was "
        f"found beside the checkpoint (in {tmp_path}); give the training run's settings "
        f"(--config, --backbone, --image-size, --reference-size, --set ...) or copy its "
        f"config.json there")
    assert len(line) < 900, len(line)
    # With the run's config.json beside it, the same file loads (held before).
    shutil.copy(os.path.join(trained_run["run_dir"], "config.json"), tmp_path)
    line = run_error(capsys, detect(trained_run, tiny_coco, tmp_path, copy, "--config",
                                    "small"))
    assert ("--config chose it over the training run's config.json in "
            f"{tmp_path}; leave --config out to use the run's") in line


def test_a_plain_mask_rcnn_checkpoint_is_told_the_command_lines_way(
        trained_run, tiny_coco, tmp_path, capsys, plain_checkpoint):
    line = run_error(capsys, detect(trained_run, tiny_coco, tmp_path, plain_checkpoint))
    assert line == (
        f"siamese-mrcnn: error: cannot load weights: {plain_checkpoint} is a plain Mask "
        f"R-CNN checkpoint (no Siamese matching layers fpn_distance_P2..P6); evaluate and "
        f"detect need a Siamese Mask R-CNN checkpoint. To start training from it: "
        f"siamese-mrcnn train --weights {plain_checkpoint} (its layers are matched by name)")
    assert "by_name" not in line


def test_training_from_a_plain_checkpoint_names_the_heads_to_exclude(
        trained_run, tiny_coco, tmp_path, capsys, plain_checkpoint):
    """Its 4-class heads do not fit the 2-class Siamese heads; the way out is
    --exclude (which then trains, as it did before the issue)."""
    argv = ["train", *data_flags(tiny_coco), "--weights", plain_checkpoint, "--split", "2",
            "--epochs", "1", "--logs", str(tmp_path / "logs"), *QUICK, *TINY]
    line = run_error(capsys, argv)
    assert line.startswith(f"siamese-mrcnn: error: cannot load weights: {plain_checkpoint}: "
                           f"layer 'mrcnn_")
    assert line.endswith(f"{plain_checkpoint} is a plain Mask R-CNN checkpoint: leave out "
                         f"its class-specific heads with --exclude "
                         f"mrcnn_class_logits,mrcnn_bbox_fc,mrcnn_mask")
    assert len(line) < 900, len(line)
    assert main([*argv, "--exclude", "mrcnn_class_logits,mrcnn_bbox_fc,mrcnn_mask"]) == 0
