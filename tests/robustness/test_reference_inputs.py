"""Items 8 and 13: references given by a user, as files, boxes or arrays.

Item 8: a 2x2 (or otherwise degenerate) reference was accepted and gave the same
detections as a real crop; references below ``MIN_REFERENCE_SIZE`` (8) pixels a side
are refused, in ``detect`` and in the API. Item 13: a negative ``--reference-box``
value got argparse's "expected one argument"; it now reaches the box check, which
says the box lies outside the image.
"""

import os

import numpy as np
import pytest
import skimage.io

from siamese_mrcnn.config import SiameseConfig
from siamese_mrcnn.references import MIN_REFERENCE_SIZE
from tests.robustness.conftest import image_path, run_error


def detect_argv(trained_run, tiny_coco, tmp_path, *references):
    return ["detect", "--weights", trained_run["checkpoints"][1], "--image",
            image_path(tiny_coco, 33), "--output-dir", str(tmp_path / "out"), *references]


@pytest.fixture(scope="module")
def inference_model(trained_run):
    from siamese_mrcnn.model import SiameseMaskRCNN
    config = SiameseConfig.load(os.path.join(trained_run["run_dir"], "config.json"))
    model = SiameseMaskRCNN("inference", config, trained_run["logs"])
    model.load_weights(trained_run["checkpoints"][1])
    return model


@pytest.mark.parametrize("size", [(2, 2), (7, 40), (40, 3)])
def test_detect_refuses_a_reference_file_below_the_minimum_size(trained_run, tiny_coco,
                                                                tmp_path, capsys, size):
    path = str(tmp_path / "tiny_ref.png")
    skimage.io.imsave(path, np.full(size + (3,), 200, np.uint8), check_contrast=False)
    line = run_error(capsys, detect_argv(trained_run, tiny_coco, tmp_path,
                                         "--reference", path))
    assert line == (f"siamese-mrcnn: error: reference image {path} is {size[0]}x{size[1]} "
                    f"pixels, below the minimum reference size of 8x8 "
                    f"(siamese_mrcnn.references.MIN_REFERENCE_SIZE)")
    assert not os.path.exists(tmp_path / "out")  # nothing written


def test_detect_refuses_a_reference_box_below_the_minimum_size(trained_run, tiny_coco,
                                                               tmp_path, capsys):
    line = run_error(capsys, detect_argv(trained_run, tiny_coco, tmp_path, "--reference-image",
                                         image_path(tiny_coco, 28), "--reference-box",
                                         "10,60,12,62"))
    assert line == ("siamese-mrcnn: error: --reference-box 10,60,12,62 is 2x2 pixels, below "
                    "the minimum reference size of 8x8 "
                    "(siamese_mrcnn.references.MIN_REFERENCE_SIZE)")


def test_the_api_refuses_degenerate_references(inference_model):
    model = inference_model
    query = np.full((64, 96, 3), 90, np.uint8)
    with pytest.raises(ValueError, match=r"a reference image is 2x2 pixels, below the "
                                         r"minimum reference size of 8x8"):
        model.detect([np.zeros((2, 2, 3), np.uint8)], [query])
    with pytest.raises(ValueError, match=r"the reference box \[10, 10, 14, 30\] is 4x20"):
        model.detect([{"image": query, "box": (10, 10, 14, 30)}], [query])
    # A 20x20 box of a 640x960 image covers 1x1 pixel once resized to the 64-pixel query.
    large = np.full((640, 960, 3), 90, np.uint8)
    with pytest.raises(ValueError, match=r"the reference box \[100, 100, 120, 120\] resized "
                                         r"the query way \(scale 0.0667\) is 1x1 pixels"):
        model.reference_from_box(large, (100, 100, 120, 120))
    # The minimum itself is accepted (held before the issue).
    side = MIN_REFERENCE_SIZE
    molded = model.mold_references(np.full((side, side, 3), 90, np.uint8))
    assert molded.shape == (1, 32, 32, 3)


@pytest.mark.parametrize("box, message", [
    ("-4,60,20,90", "starts outside the 64x96 reference image {path} (pixel coordinates "
                    "start at 0)"),
    ("8,-2,30,40", "starts outside the 64x96 reference image {path} (pixel coordinates "
                   "start at 0)"),
    ("8,60,30,100", "exceeds the 64x96 reference image {path}"),  # held before
])
def test_a_box_outside_the_image_is_refused_with_the_real_reason(trained_run, tiny_coco,
                                                                 tmp_path, capsys, box,
                                                                 message):
    path = image_path(tiny_coco, 28)
    for flags in (["--reference-box", box], [f"--reference-box={box}"]):
        line = run_error(capsys, detect_argv(trained_run, tiny_coco, tmp_path,
                                             "--reference-image", path, *flags))
        assert line == f"siamese-mrcnn: error: --reference-box {box} " + message.format(
            path=path)
