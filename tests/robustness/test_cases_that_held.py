"""Cases of the issue-10 trials that were handled well before the issue, kept here so
they cannot regress: one-line errors naming the file, and a corrupt training image
that is skipped, named and counted without stopping the run. (The kill test, the
resumed evaluation giving identical numbers and the image modes that held are in
test_kill.py, test_evaluation_resume.py and test_image_modes.py.)
"""

import logging
import os
import shutil

from siamese_mrcnn.cli import main
from tests.robustness.conftest import QUICK, TINY, image_path, run_error, run_folders


def test_a_corrupt_training_image_is_skipped_named_and_counted(tiny_coco, tmp_path, caplog):
    images = str(tmp_path / "images")
    shutil.copytree(tiny_coco["image_dir"], images)
    corrupt = os.path.join(images, "img_0040.png")
    with open(corrupt, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n cut short")
    logs = str(tmp_path / "logs")
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--annotations", tiny_coco["annotation_file"], "--images",
                     images, "--weights", "none", "--split", "2", "--epochs", "1",
                     "--logs", logs, *QUICK, *TINY, "--steps-per-epoch", "3"]) == 0
    (run,) = run_folders(logs)
    assert os.path.isfile(os.path.join(logs, run, "siamese_mrcnn_0001.h5"))
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(failures) == 1 and corrupt in failures[0]
    assert any("training sample(s) skipped so far" in r.getMessage() for r in caplog.records)


def test_a_truncated_checkpoint_is_a_one_line_error_naming_it(trained_run, tiny_coco,
                                                              tmp_path, capsys):
    truncated = str(tmp_path / "siamese_mrcnn_0002.h5")
    with open(trained_run["checkpoints"][1], "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[:len(data) // 2])
    shutil.copy(os.path.join(trained_run["run_dir"], "config.json"), tmp_path)
    line = run_error(capsys, ["detect", "--weights", truncated, "--image",
                              image_path(tiny_coco, 33), "--reference",
                              image_path(tiny_coco, 28)])
    assert line.startswith(f"siamese-mrcnn: error: cannot load weights: {truncated}: not a "
                           f"readable HDF5 weight file (truncated or corrupt?)")


def test_an_annotation_file_that_is_not_json_is_named(tiny_coco, tmp_path, capsys):
    bad = tmp_path / "instances.json"
    bad.write_text('{"images": [')
    line = run_error(capsys, ["evaluate", "--annotations", str(bad), "--images",
                              tiny_coco["image_dir"], "--weights", "x.h5"])
    assert line.startswith(f"siamese-mrcnn: error: {bad}: not a JSON file")


def test_a_query_that_does_not_decode_is_named(tiny_coco, tmp_path, capsys):
    query = tmp_path / "query.jpg"
    query.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    line = run_error(capsys, ["detect", "--weights", "x.h5", "--image", str(query),
                              "--reference", image_path(tiny_coco, 28)])
    assert line.startswith(f"siamese-mrcnn: error: query image {query} does not decode as "
                           f"an image: ")
