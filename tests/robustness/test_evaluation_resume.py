"""Item 3: a partial evaluation file records what wrote it; resuming or merging with
other weights, configuration, mode or split is refused by name.

Before the issue the file did not record the weights or the configuration: an
interrupted evaluation resumed with another checkpoint mixed two models' detections
in one table and exited 0.
"""

import json

import pytest

from siamese_mrcnn.cli import main
from tests.robustness.conftest import data_flags, run_error

EVAL = ["--runs", "1", "--limit", "3", "--mode", "faithful", "--split", "2"]


def evaluate(tiny_coco, weights, *extra):
    return main(["evaluate", *data_flags(tiny_coco), "--weights", weights, *EVAL, *extra])


def lines_of(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def interrupt(path, keep_records=1):
    """Cut a partial file after its header and ``keep_records`` records, as a kill
    after that many (run, image) pairs would leave it."""
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(lines[:1 + keep_records])


@pytest.fixture(scope="module")
def interrupted(trained_run, tiny_coco, tmp_path_factory):
    """A complete evaluation of epoch 1 (partial file and report), and a copy of its
    partial file cut after the first image."""
    folder = tmp_path_factory.mktemp("eval_resume")
    full, report = str(folder / "full.jsonl"), str(folder / "full.json")
    assert evaluate(tiny_coco, trained_run["checkpoints"][0], "--partial", full,
                    "--output", report) == 0
    cut = str(folder / "cut.jsonl")
    with open(full) as f, open(cut, "w") as g:
        g.write(f.read())
    interrupt(cut)
    with open(report) as f:
        return {"full": full, "report": json.load(f), "cut": cut, "folder": folder}


def test_the_partial_file_records_weights_and_configuration(trained_run, interrupted):
    settings = lines_of(interrupted["full"])[0]["settings"]
    assert settings["weights"]["path"] == trained_run["checkpoints"][0]
    assert len(settings["weights"]["sha1"]) == 40
    assert settings["config"]["BACKBONE"] == "resnet18"
    assert settings["config"]["DETECTION_MIN_CONFIDENCE"] == 0.7
    assert settings["mode"]["name"] == "faithful" and settings["split"] == "2"


def test_resuming_with_another_checkpoint_is_refused_naming_the_weights(
        trained_run, tiny_coco, interrupted, tmp_path, capsys):
    first, second = trained_run["checkpoints"]
    cut = str(tmp_path / "cut.jsonl")
    with open(interrupted["cut"]) as f, open(cut, "w") as g:
        g.write(f.read())
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--weights", second, *EVAL,
                              "--partial", cut])
    assert line.startswith(f"siamese-mrcnn: error: --partial: {cut}: written with other "
                           f"weights: file has {first} (sha1 ")
    assert f"this run has {second} (sha1 " in line
    assert len(lines_of(cut)) == 2  # nothing appended by the other model


@pytest.mark.parametrize("flags, named", [
    (["--set", "DETECTION_NMS_THRESHOLD=0.3"],
     "written with another configuration; config.DETECTION_NMS_THRESHOLD: file has 0.5, "
     "this run has 0.3"),
    (["--image-size", "128"],
     "written with another configuration; config.IMAGE_MAX_DIM: file has 64, this run has 128"),
    # Refused before the issue too (the mode is now named by its name):
    (["--mode", "corrected"], "written in another mode; mode: file has 'faithful', this run "
                              "has 'corrected'"),
    (["--split", "1"], "written with different settings; 'classes'"),
])
def test_resuming_with_other_settings_is_refused_naming_them(
        trained_run, tiny_coco, interrupted, tmp_path, capsys, flags, named):
    cut = str(tmp_path / "cut.jsonl")
    with open(interrupted["cut"]) as f, open(cut, "w") as g:
        g.write(f.read())
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--weights",
                              trained_run["checkpoints"][0], *EVAL, "--partial", cut, *flags])
    assert line.startswith(f"siamese-mrcnn: error: --partial: {cut}: {named}")


def test_resuming_with_the_same_model_gives_the_same_numbers(trained_run, tiny_coco,
                                                            interrupted, tmp_path):
    """Held before the issue; batching (IMAGES_PER_GPU) may differ on resume."""
    cut = str(tmp_path / "cut.jsonl")
    with open(interrupted["cut"]) as f, open(cut, "w") as g:
        g.write(f.read())
    report = str(tmp_path / "resumed.json")
    assert evaluate(tiny_coco, trained_run["checkpoints"][0], "--partial", cut,
                    "--output", report, "--images-per-gpu", "3") == 0
    with open(report) as f:
        resumed = json.load(f)
    assert resumed["table"] == interrupted["report"]["table"]
    assert resumed["summary"]["per_run"] == interrupted["report"]["summary"]["per_run"]
    assert len(lines_of(cut)) == 1 + 3


def test_merging_shards_of_different_checkpoints_is_refused(trained_run, tiny_coco, tmp_path,
                                                            capsys):
    shards = [str(tmp_path / f"shard{i}.jsonl") for i in range(2)]
    for i, (path, weights) in enumerate(zip(shards, trained_run["checkpoints"])):
        assert evaluate(tiny_coco, weights, "--shard", str(i), "--num-shards", "2",
                        "--partial", path) == 0
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--merge", *shards])
    assert line.startswith(f"siamese-mrcnn: error: --merge: {shards[1]}: written with other "
                           f"weights: it has {trained_run['checkpoints'][1]} (sha1 ")
    assert f"{shards[0]} has {trained_run['checkpoints'][0]} (sha1 " in line
