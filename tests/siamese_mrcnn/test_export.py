"""Export for serving (``siamese_mrcnn.export``, ``siamese-mrcnn export``).

Three layers of checks:

1. the in-graph pre- and post-processing against the numpy code ``detect()`` uses:
   the "square" resize (query and reference rule), box unmolding and mask pasting;
2. the serving graph run eagerly against ``detect()`` (no export involved);
3. the exported artifacts, written by the ``export`` command from a checkpoint and
   its config.json: the SavedModel loaded with ``tf.saved_model.load`` and the ONNX
   file run with onnxruntime, each in a subprocess that cannot import this project
   (checked in its ``sys.modules``), against ``detect()`` on the same inputs.

Tolerances (``assert_matches_detect``): the same number of detections and class ids;
boxes within 1 pixel with at most one coordinate in 20 off at all; scores within
1e-4; every mask of 20 or more pixels with IoU >= 0.95 against detect()'s, and all
masks of a query together with IoU >= 0.98. Measured: on this file's cases (22
detections) boxes and masks identical, scores within 5e-7; on the shipped demo
checkpoint (12 procedural queries of 70-260 pixels a side, 37 detections) the same,
scores within 1.4e-5. The graph's resize differs from scikit-image's in 14 of 5.2
million pixels, by one grey level, and oneDNN kernels round differently in another
graph. Real bugs do not pass (``test_the_tolerances_catch_real_bugs``): references
not mean-subtracted (scores move by 0.01-0.07 and counts change), masks pasted one
pixel off (IoU 0.3-0.6) or boxes rounded down (a quarter to half of the
coordinates off by one).

The model is TinySiameseConfig's (64x64 queries, 32x32 references, two shots,
ResNet-18 at a quarter width) with deterministic weights
(``tests.backend.fill_weights``); its class-logit and mask layers are scaled so
that scores spread out and masks cover about half of their box (with plain
fill_weights every mask probability is 0.5 +- 0.01, where float round-off alone
decides a pixel).

Shape shorthand: H, W query size, S references, N detections.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage.transform

from mrcnn import utils
from siamese_mrcnn import export as serving
from siamese_mrcnn.cli import main
from siamese_mrcnn.model import SiameseMaskRCNN
from tests.backend import fill_weights
from tests.configs import TinySiameseConfig, shapes_dataset

BOX_TOLERANCE_PX = 1
BOX_COORDINATES_OFF = 1 / 20  # at most this fraction of coordinates differ at all
SCORE_TOLERANCE = 1e-4
MASK_IOU = 0.95  # each mask of at least MASK_MIN_PIXELS pixels
MASK_MIN_PIXELS = 20
POOLED_MASK_IOU = 0.98  # all masks of a query together

# Keras' tf2onnx shim probes np.object (gone in numpy 2) to patch it back in.
pytestmark = pytest.mark.filterwarnings("ignore:In the future `np.object`:FutureWarning")


class ExportConfig(TinySiameseConfig):
    NAME = "tiny_export"
    IMAGES_PER_GPU = 1
    NUM_TARGETS = 2
    BACKBONE_WIDTH = 0.25  # a 1.5 MB graph instead of 56 MB: tf2onnx converts it in seconds
    DETECTION_MIN_CONFIDENCE = 0.64  # some queries keep fewer than the 8 slots (no score
    # of the cases lies within 0.004 of it, so round-off cannot move one across)


def sharpen_heads(keras_model):
    """Spread the tiny model's scores and masks (module docstring): class logits x100,
    mask logits x2500 with bias 3.5 (centres them), box deltas x0.1 (keeps boxes near
    their proposals, so they are not all clipped to the image edge)."""
    for weight in keras_model.weights:
        factor = {"mrcnn_class_logits/kernel": 100.0, "mrcnn_mask/kernel": 2500.0,
                  "mrcnn_bbox_fc/kernel": 0.1, "rpn_bbox_pred/kernel": 0.1}.get(weight.path)
        if factor is not None:
            weight.assign(np.asarray(weight) * factor)
        elif weight.path == "mrcnn_mask/bias":
            weight.assign(np.full(weight.shape, 3.5, np.float32))
    return keras_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiny model (inference mode)."""
    model = SiameseMaskRCNN("inference", ExportConfig(), str(tmp_path_factory.mktemp("logs")))
    sharpen_heads(fill_weights(model.keras_model, seed=3))
    return model


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    """The model's weights with config.json beside them, as training writes them."""
    run_dir = tmp_path_factory.mktemp("run")
    path = str(run_dir / "siamese_mrcnn_0001.h5")
    model.save_weights(path)
    model.config.save(str(run_dir / "config.json"))
    return path


def resized(image, shape):
    return skimage.transform.resize(image, shape, order=1, preserve_range=True,
                                    anti_aliasing=False).astype(np.uint8)


@pytest.fixture(scope="module")
def cases():
    """Queries of several sizes and their references: dicts with image uint8 [H, W, 3],
    references (list of uint8 crops, S of them) and the crops that detect() gets (the
    k-shot model takes exactly 2: one crop is given twice, which averages to itself)."""
    dataset = shapes_dataset(3, seed=2, size=64)
    scene = [dataset.load_image(i) for i in range(3)]
    crop_a, crop_b = scene[0][10:40, 20:60], scene[1][5:25, 30:58]
    out = [
        # 100x100 -> 64x64 (no padding); two crops of one size.
        dict(name="square, down", image=resized(scene[0], (100, 100)),
             references=[crop_a, resized(crop_b, crop_a.shape[:2])]),
        # 90x120 -> 48x64 in a padded square; two crops of different sizes (serve_padded).
        dict(name="wide, padded", image=resized(scene[1], (90, 120)),
             references=[crop_a, crop_b]),
        # 40x30 -> up-scaled to 64x48; one crop of 10x14 (up-scaled to 24x34 -> 23x32).
        dict(name="small, up, one shot", image=resized(scene[2], (40, 30)),
             references=[scene[2][20:30, 10:24]]),
        # 250x180: masks pasted into boxes 4x the molded size.
        dict(name="large, tall", image=resized(scene[2], (250, 180)),
             references=[crop_b, crop_b]),
    ]
    for case in out:
        refs = case["references"]
        case["detect_references"] = refs if len(refs) == 2 else refs * 2
        case["same_size"] = len({r.shape for r in refs}) == 1
    return out


@pytest.fixture(scope="module")
def expected(model, cases):
    """detect()'s result for each case."""
    return [model.detect([c["detect_references"]], [c["image"]])[0] for c in cases]


def padded_references(references):
    """(uint8 [S, h_max, w_max, 3] crops in the top-left corner, int32 [S, 2] sizes);
    the rest is filled with noise, which the graph must ignore."""
    h = max(r.shape[0] for r in references)
    w = max(r.shape[1] for r in references)
    out = np.random.default_rng(0).integers(0, 256, (len(references), h, w, 3), np.uint8)
    for i, r in enumerate(references):
        out[i, :r.shape[0], :r.shape[1]] = r
    return out, np.array([r.shape[:2] for r in references], np.int32)


def mask_ious(a, b):
    """Per-detection IoU of bool [N, H, W] masks (1 where both are empty)."""
    inter = (a & b).sum(axis=(1, 2))
    union = (a | b).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def assert_matches_detect(got, expected, context):
    """The serving outputs (dict of numpy arrays) against detect()'s result, within the
    tolerances of the module docstring."""
    count = len(expected["scores"])
    assert int(got["count"]) == count, f"{context}: count {got['count']} != {count}"
    assert got["boxes"].shape == (count, 4) and got["scores"].shape == (count,), context
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"], err_msg=context)
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=0,
                               atol=SCORE_TOLERANCE, err_msg=context)
    off = np.abs(got["boxes"].astype(int) - expected["rois"].astype(int))
    assert off.max(initial=0) <= BOX_TOLERANCE_PX, f"{context}: boxes off by {off.max()}"
    assert (off > 0).mean() <= BOX_COORDINATES_OFF if count else True, \
        f"{context}: {(off > 0).sum()} of {off.size} box coordinates differ"
    masks = expected["masks"].transpose(2, 0, 1)
    assert got["masks"].shape == masks.shape and got["masks"].dtype == bool, context
    big = masks.sum(axis=(1, 2)) >= MASK_MIN_PIXELS
    ious = mask_ious(got["masks"], masks)
    assert (ious[big] >= MASK_IOU).all(), f"{context}: mask IoUs {ious.round(3)}"
    union = (got["masks"] | masks).sum()
    if union:
        pooled = (got["masks"] & masks).sum() / union
        assert pooled >= POOLED_MASK_IOU, f"{context}: pooled mask IoU {pooled:.3f}"


# ------------------------------------------------------------------ pre/post-processing
def test_resize_square_matches_resize_image():
    """Query ("square" with min_dim, max_dim, min_scale) and reference-rule resizes of
    60 sizes, up and down, several at once with noise beyond each image's size: the
    same geometry exactly, pixels within one grey level (round-off of the bilinear
    weights at a .5), differing in at most 1 pixel in 10,000."""
    rng = np.random.default_rng(0)
    settings = [(64, 64, 0), (24, 32, 0), (800, 1024, 0), (0, 32, 0), (50, 128, 2)]
    checked = differing = 0
    for min_dim, max_dim, min_scale in settings:
        sizes = rng.integers(5, 260, size=(12, 2))
        sizes[0] = (64, 64)  # scale 1 where the settings allow it
        batch = rng.integers(0, 256, size=(len(sizes), 260, 260, 3), dtype=np.uint8)
        got, windows, scales = (np.asarray(v) for v in serving.resize_square(
            batch, sizes, min_dim, max_dim, min_scale))
        for i, (h, w) in enumerate(sizes):
            want, window, scale, _, _ = utils.resize_image(
                batch[i, :h, :w], min_dim=min_dim, max_dim=max_dim, min_scale=min_scale,
                mode="square")
            context = f"{h}x{w} with {(min_dim, max_dim, min_scale)}"
            assert tuple(windows[i].astype(int)) == window and scales[i] == scale, context
            diff = np.abs(got[i] - want.astype(np.float32))
            assert diff.max() <= 1.0, context
            checked += diff.size
            differing += int((diff > 0).sum())
    assert differing <= checked / 10_000, f"{differing} of {checked} pixels differ"


def test_paste_masks_matches_unmold_mask():
    """200 random 28x28 masks pasted into boxes of all sizes, partly outside the
    image or inside it: exactly detect()'s masks (same float64 arithmetic)."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        height, width = (int(v) for v in rng.integers(10, 120, 2))
        y1, x1 = int(rng.integers(-10, height)), int(rng.integers(-10, width))
        box = (y1, x1, y1 + int(rng.integers(1, 100)), x1 + int(rng.integers(1, 100)))
        small = rng.random((28, 28)).astype(np.float32)
        want = utils.unmold_mask(small, box, (height, width))
        got = np.asarray(serving.paste_masks(small[None], np.array([box]), height, width))[0]
        np.testing.assert_array_equal(got, want, err_msg=f"box {box} in {height}x{width}")


def test_unmold_boxes_matches_unmold_detections(model):
    """Random normalised boxes and windows: exactly the pixels of unmold_detections."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(20, 400, 2))
        _, window, _, _, _ = utils.resize_image(np.zeros((height, width, 3), np.uint8),
                                                min_dim=64, max_dim=64, mode="square")
        boxes = np.sort(rng.random((8, 2, 2)), axis=1).reshape(8, 4)[:, [0, 2, 1, 3]]
        detections = np.concatenate([boxes, np.ones((8, 1)), rng.random((8, 1))], axis=1)
        want, _, _, _ = model.unmold_detections(detections.astype(np.float32), None,
                                                (height, width, 3), (64, 64, 3),
                                                np.asarray(window))
        got = np.asarray(serving.unmold_boxes(boxes.astype(np.float32), np.asarray(window,
                                              np.float64), 64, height, width))
        nonempty = (got[:, 2] > got[:, 0]) & (got[:, 3] > got[:, 1])
        np.testing.assert_array_equal(got[nonempty], want)


# ------------------------------------------------------------------ the serving graph
def run_eagerly(model, case, padded=False):
    """The serving graph called directly (no export) on a case; numpy outputs."""
    graph = serving.SiameseServing(model)
    if padded:
        refs, sizes = padded_references(case["references"])
        out = graph(case["image"], refs, sizes)
    else:
        out = graph(case["image"], np.stack(case["references"]))
    return {k: np.asarray(v) for k, v in out.items()}


def test_serving_graph_matches_detect(model, cases, expected):
    """Every case through the graph as traced for export, but run eagerly: crops of
    one size as one tensor, and every case's crops padded with their sizes."""
    for case, want in zip(cases, expected):
        if case["same_size"]:
            assert_matches_detect(run_eagerly(model, case), want, case["name"])
        assert_matches_detect(run_eagerly(model, case, padded=True), want,
                              case["name"] + " (padded)")
    assert sum(len(w["scores"]) for w in expected) >= 12  # the cases do detect things
    assert any(0 < len(w["scores"]) < ExportConfig.DETECTION_MAX_INSTANCES for w in expected)


def test_the_tolerances_catch_real_bugs(model, cases, expected):
    """Three plausible bugs, each caught: references not mean-subtracted (detect()'s
    own switch), masks pasted one pixel to the right, boxes rounded down."""
    case, want = cases[0], expected[0]
    good = run_eagerly(model, case)
    assert_matches_detect(good, want, "as exported")
    no_mean = model.detect([case["detect_references"]], [case["image"]],
                           subtract_reference_mean=False)[0]
    with pytest.raises(AssertionError):
        assert_matches_detect(good, no_mean, "references not mean-subtracted")
    shifted = dict(good, masks=np.roll(good["masks"], 1, axis=2))
    with pytest.raises(AssertionError, match="mask"):
        assert_matches_detect(shifted, want, "masks one pixel right")
    floor = dict(good, boxes=_boxes_rounded_down(model, case))
    with pytest.raises(AssertionError, match="box coordinates differ"):
        assert_matches_detect(floor, want, "boxes rounded down")


def _boxes_rounded_down(model, case):
    """The case's detection boxes unmolded with floor instead of round."""
    molded, metas, _ = model.mold_inputs([case["image"]])
    refs = model.mold_references(case["detect_references"])[None]
    out = model.run_graph_on_batch({"input_image": molded, "input_image_meta": metas,
                                    "input_reference_images": refs})
    detections = out["detections"][0]
    detections = detections[detections[:, 4] > 0]
    window = utils.norm_boxes(metas[0, 7:11][None], (64, 64))[0]
    shift = np.array([window[0], window[1]] * 2)
    extent = np.array([window[2] - window[0], window[3] - window[1]] * 2)
    h, w = case["image"].shape[:2]
    normalised = (detections[:, :4] - shift) / extent
    return np.floor(normalised * [h - 1, w - 1, h - 1, w - 1] + [0, 0, 1, 1]).astype(np.int32)


# ------------------------------------------------------------------ exported artifacts
# Runs in a fresh interpreter without this project on its path: loads the exported
# model with TensorFlow or onnxruntime alone and runs every query of an .npz file.
SERVE_SCRIPT = r"""
import sys
import numpy as np

fmt, model_path, inputs_path, outputs_path = sys.argv[1:]
data = np.load(inputs_path)
if fmt == "savedmodel":
    import tensorflow as tf
    loaded = tf.saved_model.load(model_path)

    def run(image, references, sizes=None):
        out = (loaded.serve(image, references) if sizes is None
               else loaded.serve_padded(image, references, sizes))
        return {k: v.numpy() for k, v in out.items()}
else:
    import onnxruntime
    session = onnxruntime.InferenceSession(model_path)
    names = [o.name for o in session.get_outputs()]

    def run(image, references, sizes=None):
        assert sizes is None
        return dict(zip(names, session.run(None, {"image": image, "references": references})))
results = {}
for i in range(int(data["count"])):
    sizes = data[f"sizes_{i}"] if f"sizes_{i}" in data else None
    for key, value in run(data[f"image_{i}"], data[f"references_{i}"], sizes).items():
        results[f"{key}_{i}"] = np.asarray(value)
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("mrcnn", "siamese_mrcnn", "tests"))
results["project_modules"] = np.array(ours, dtype=str)
np.savez(outputs_path, **results)
"""


def serve_in_clean_process(fmt, model_path, queries, tmp_path):
    """Run ``queries`` (list of (image, references[, sizes])) through an exported model
    in a subprocess that has neither PYTHONPATH nor this repository as its working
    folder; returns one output dict per query. Asserts that the subprocess imported
    nothing of this project."""
    inputs = {"count": len(queries)}
    for i, query in enumerate(queries):
        inputs[f"image_{i}"], inputs[f"references_{i}"] = query[0], query[1]
        if len(query) > 2:
            inputs[f"sizes_{i}"] = query[2]
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, fmt, str(model_path),
                           str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = np.load(tmp_path / "outputs.npz")
    assert list(data["project_modules"]) == []
    keys = ("boxes", "class_ids", "scores", "masks", "count")
    return [{k: data[f"{k}_{i}"] for k in keys} for i in range(len(queries))]


def export_with_cli(checkpoint, fmt, folder):
    """``siamese-mrcnn export`` of a checkpoint (config.json beside it)."""
    assert main(["export", "--weights", checkpoint, "--output", str(folder),
                 "--format", fmt]) == 0
    with open(folder / "export.json", encoding="utf-8") as f:
        record = json.load(f)
    with open(os.path.join(os.path.dirname(checkpoint), "config.json"), encoding="utf-8") as f:
        run_config = json.load(f)["config"]
    assert record["format"] == fmt and record["config"]["NAME"] == run_config["NAME"]
    assert record["weights"]["path"] == os.path.abspath(checkpoint)
    return folder if fmt == "savedmodel" else folder / "model.onnx"


@pytest.fixture(scope="module")
def savedmodel(checkpoint, tmp_path_factory):
    return export_with_cli(checkpoint, "savedmodel", tmp_path_factory.mktemp("export") / "sm")


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    pytest.importorskip("tf2onnx", reason="ONNX export needs pip install -e '.[export]'")
    pytest.importorskip("onnxruntime", reason="the ONNX test runs onnxruntime ('.[export]')")
    return export_with_cli(checkpoint, "onnx", tmp_path_factory.mktemp("export") / "onnx")


def test_savedmodel_matches_detect(savedmodel, cases, expected, tmp_path):
    """tf.saved_model.load in a clean process: ``serve`` on crops of one size and
    ``serve_padded`` on every case give detect()'s detections."""
    queries, names, wants = [], [], []
    for case, want in zip(cases, expected):
        if case["same_size"]:
            queries.append((case["image"], np.stack(case["references"])))
            names.append(case["name"])
            wants.append(want)
        queries.append((case["image"], *padded_references(case["references"])))
        names.append(case["name"] + " (serve_padded)")
        wants.append(want)
    for got, want, name in zip(serve_in_clean_process("savedmodel", savedmodel, queries,
                                                      tmp_path), wants, names):
        assert_matches_detect(got, want, name)


def test_onnx_matches_detect(onnx_file, cases, expected, tmp_path):
    """The ONNX file in onnxruntime, in a clean process: detect()'s detections."""
    chosen = [(c, w) for c, w in zip(cases, expected) if c["same_size"]]
    queries = [(c["image"], np.stack(c["references"])) for c, _ in chosen]
    for got, (case, want) in zip(serve_in_clean_process("onnx", onnx_file, queries,
                                                        tmp_path), chosen):
        assert_matches_detect(got, want, case["name"])


def test_shipped_demo_checkpoint_exports_with_its_config(tmp_path):
    """The trained demo model (checkpoints/demo_reference, with its config.json),
    exported by the command and served in a clean process: detect()'s detections on
    procedural queries of several sizes, with real masks."""
    from samples.procedural.procedural import ProceduralOneShotDataset
    from siamese_mrcnn.config import SiameseConfig
    weights = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "checkpoints",
                                            "demo_reference", "siamese_mrcnn_reference.h5"))
    if not os.path.isfile(weights):
        pytest.skip("the shipped demo checkpoint is not in this checkout")
    folder = export_with_cli(weights, "savedmodel", tmp_path / "demo")
    config = SiameseConfig.load(os.path.join(os.path.dirname(weights), "config.json"))
    model = SiameseMaskRCNN("inference", config, str(tmp_path / "logs"))
    model.load_weights(weights, by_name=True)
    dataset = ProceduralOneShotDataset()
    dataset.load_procedural(4, image_size=128, num_categories=80, seed=5)
    dataset.prepare()
    queries, wants = [], []
    for image_id, size in zip(dataset.image_ids, [(128, 128), (90, 200), (257, 181), (70, 70)]):
        image = dataset.load_image(image_id)
        masks, _ = dataset.load_mask(image_id)
        y1, x1, y2, x2 = utils.extract_bboxes(masks)[0]
        reference = image[y1:y2, x1:x2]
        query = resized(image, size)
        queries.append((query, reference[None]))
        wants.append(model.detect([[reference]], [query])[0])
    for got, want, (query, _) in zip(serve_in_clean_process("savedmodel", folder, queries,
                                                            tmp_path), wants, queries):
        assert_matches_detect(got, want, f"demo model, query {query.shape}")
    assert sum(len(w["scores"]) for w in wants) >= 4
    assert max(w["masks"].sum(axis=(0, 1)).max(initial=0) for w in wants) >= 100


# ------------------------------------------------------------------ the command
def export_error(capsys, *argv):
    """The one-line error of ``siamese-mrcnn export`` with ``argv``."""
    with pytest.raises(SystemExit) as exc:
        main(["export", *argv])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_export_help_lists_its_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: siamese-mrcnn export")
    for flag in ("--weights", "--output", "--format", "--min-confidence", "--config", "--set",
                 "--logs", "--backend", "serve_padded"):
        assert flag in out, flag


def test_export_refuses_what_it_cannot_do(checkpoint, tmp_path, capsys):
    """An existing non-empty output, a file as output, a configuration that is not
    "square": one-line errors, before any model is built."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    error = export_error(capsys, "--weights", checkpoint, "--output", str(taken))
    assert "exists and is not an empty folder" in error
    assert (taken / "keep.txt").read_text() == "mine"
    error = export_error(capsys, "--weights", checkpoint, "--output", str(taken / "keep.txt"))
    assert "exists and is not an empty folder" in error
    error = export_error(capsys, "--weights", checkpoint, "--output", str(tmp_path / "new"),
                         "--set", "IMAGE_RESIZE_MODE=pad64", "--set", "IMAGE_MIN_DIM=64")
    assert "IMAGE_RESIZE_MODE 'square'" in error
    assert sorted(os.listdir(tmp_path)) == ["taken"]  # nothing written


def test_export_on_another_backend_says_why_without_importing_keras(checkpoint, tmp_path):
    probe = ("import sys\nfrom siamese_mrcnn.cli import main\ntry:\n"
             f"    main(['export', '--backend', 'jax', '--weights', {checkpoint!r}, "
             f"'--output', {str(tmp_path / 'out')!r}])\n"
             "except SystemExit as e:\n    print('exit', e.code, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().endswith("exit 2 False"), done.stdout + done.stderr
    assert "runs on the TensorFlow backend, not 'jax'" in done.stderr
    assert not (tmp_path / "out").exists()
