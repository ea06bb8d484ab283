"""On JAX and PyTorch nothing imports TensorFlow: the GPU machines have none.

The command line trains, resumes the run's checkpoint for evaluation (data
pipeline, weights I/O, COCO evaluation) and detects with a figure, in a process
where ``import tensorflow`` fails, as it does where TensorFlow is not installed.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.backend import BACKEND
from tests.configs import TINY_CLI as TINY

pytestmark = pytest.mark.skipif(BACKEND == "tensorflow",
                                reason="the TensorFlow backend imports TensorFlow")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# sys.modules[name] = None makes every later `import name` raise ImportError.
WITHOUT_TENSORFLOW = ("import sys; sys.modules['tensorflow'] = None\n"
                      "from siamese_mrcnn.cli import main\n"
                      "code = main(sys.argv[1:])\n"
                      "assert 'tensorflow' not in [m.split('.')[0] for m in sys.modules "
                      "if sys.modules[m] is not None]\n"
                      "sys.exit(code)\n")
PROCEDURAL = ["--dataset", "procedural", "--procedural-categories", "8",
              "--procedural-image-size", "64", "--split", "1"]


def cli(*args):
    env = dict(os.environ, KERAS_BACKEND=BACKEND,
               PYTHONPATH=os.pathsep.join([REPO, os.path.join(REPO, "lib"),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (args[0], proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def test_train_evaluate_detect_without_tensorflow(tmp_path):
    logs, images = str(tmp_path / "logs"), str(tmp_path / "eval")
    cli("train", *PROCEDURAL, "--procedural-images", "8", "--weights", "none",
        "--schedule", "quick", "--epochs", "1", "--steps-per-epoch", "2",
        "--validation-steps", "0", "--images-per-gpu", "2", "--logs", logs, *TINY)
    (run,) = os.listdir(logs)
    with open(os.path.join(logs, run, "config.json")) as f:
        assert json.load(f)["run"]["backend"] == BACKEND
    assert os.path.isfile(os.path.join(logs, run, "siamese_mrcnn_0001.h5"))
    assert os.path.isfile(os.path.join(logs, run, "history.csv"))

    report = str(tmp_path / "results.json")
    cli("evaluate", *PROCEDURAL, "--procedural-images", "4", "--procedural-dir", images,
        "--weights", "last", "--logs", logs, "--runs", "1", "--mode", "faithful",
        "--output", report, *TINY)
    with open(report) as f:
        done = json.load(f)
    assert done["versions"]["keras_backend"] == BACKEND
    assert done["summary"]["settings"]["num_images"] == 4

    with open(os.path.join(images, "annotations.json")) as f:
        coco = json.load(f)
    reference_image, query = (os.path.join(images, "images", im["file_name"])
                              for im in coco["images"][:2])
    box = next(a["bbox"] for a in coco["annotations"]  # x, y, w, h
               if a["image_id"] == coco["images"][0]["id"])
    y1, x1 = int(box[1]), int(box[0])
    out = str(tmp_path / "detections")
    printed = cli("detect", "--weights", os.path.join(logs, run, "siamese_mrcnn_0001.h5"),
                  "--image", query, "--reference-image", reference_image, "--reference-box",
                  f"{y1},{x1},{y1 + max(int(box[3]), 1)},{x1 + max(int(box[2]), 1)}",
                  "--min-confidence", "0", "--output-dir", out)
    assert "detection(s); wrote" in printed
    assert os.path.isfile(os.path.join(out, "detections.json"))
    assert os.path.isfile(os.path.join(out, "detections.png"))


def test_demo_with_ap_while_training_without_tensorflow(tmp_path):
    """`siamese-mrcnn demo --quick`: training with one-shot AP measured at the epoch's
    end (an inference model built beside the training one, COCO evaluation), the final
    evaluation and the figures; TensorBoard is TensorFlow's, so only history.csv gets
    the AP columns."""
    out = tmp_path / "demo"
    printed = cli("demo", "--quick", "--steps", "2", "--output-dir", str(out),
                  "--figures-dir", str(tmp_path / "figs"))
    assert "epoch 1: one-shot AP50 (%) on 4 held-out images" in printed
    (run,) = [d for d in os.listdir(out) if d.startswith("demo_siamese_mrcnn_quick")]
    with open(os.path.join(out, run, "history.csv")) as f:
        header, row = f.read().splitlines()[:2]
    columns = dict(zip(header.split(","), row.split(",")))
    for key in ("ap50_bbox_seen", "ap50_bbox_unseen", "ap50_segm_seen", "ap50_segm_unseen"):
        assert 0.0 <= float(columns[key]) <= 1.0
    assert not os.path.exists(os.path.join(out, run, "one_shot_ap"))
    assert sorted(os.listdir(tmp_path / "figs")) == ["demo_grid.png", "demo_seen.png",
                                                     "demo_unseen.png"]
