"""SiameseMaskRCNN end to end on tiny configs: layer layout, a training step, weights
independent of k, the matching maths against numpy, k-shot averaging, shared-feature
detection, references given as image + box, the original project's checkpoint layout,
and one full-size (1024x1024) inference.

Models are built once per module (fixtures) to keep the file fast on a 2-core CPU.
Shape shorthand: S shots, C FPN channels, L the five pyramid levels P2..P6.
"""

import math
import os

import h5py
import keras
import numpy as np
import pytest

from mrcnn import utils
from mrcnn.data import mold_image
from mrcnn.weights import load_weights as load_weight_file
from siamese_mrcnn.config import LargeConfig
from siamese_mrcnn.data import OneShotDataGenerator
from siamese_mrcnn.model import LEVELS, MATCHED_CHANNELS, SiameseMaskRCNN
from siamese_mrcnn.references import resize_reference
from tests.backend import as_numpy, fill_weights
from tests.configs import TinySiameseConfig, TinyThreeShotConfig, shapes_dataset

LOSSES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
          "mrcnn_mask_loss")
FPN = TinySiameseConfig.FPN_FEATUREMAPS
D = TinySiameseConfig.TARGET_MAX_DIM


class FiveShotConfig(TinySiameseConfig):
    NAME = "tiny_siamese_5shot"
    NUM_TARGETS = 5


def random_image(seed, shape=(64, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def weight_signature(model):
    return [(w.path, tuple(w.shape)) for w in model.keras_model.weights]


def run_graph(model, image, references):
    """Raw inference outputs for one query (uint8 image) and its S molded references."""
    molded, metas, _ = model.mold_inputs([image])
    return model.run_graph_on_batch({"input_image": molded, "input_image_meta": metas,
                                     "input_reference_images": references[None]})


def assert_same_detections(got, expected, context):
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"], err_msg=context)
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-5, atol=1e-6,
                               err_msg=context)
    # Boxes are rounded to pixels, so a float difference can move an edge by one.
    np.testing.assert_allclose(got["rois"], expected["rois"], atol=1, err_msg=context)
    assert got["masks"].shape == expected["masks"].shape, context
    assert np.mean(got["masks"] != expected["masks"]) < 1e-3, context


def assert_equivalent_detections(got, expected, context):
    """Detections of the same query and references computed in head batches of other
    sizes. oneDNN picks kernels per batch size, so scores agree to round-off only
    (measured up to 6e-4), and an untrained model's near-saturated, near-tied scores
    can then flip an NMS or top-k decision. Required: the same number of detections,
    the 3 best identical (box to a pixel, score to 2e-3), and at least 3/4 of all
    with a counterpart of IoU >= 0.9 and score within 2e-3."""
    assert len(got["scores"]) == len(expected["scores"]), context
    np.testing.assert_allclose(got["rois"][:3], expected["rois"][:3], atol=1, err_msg=context)
    np.testing.assert_allclose(got["scores"][:3], expected["scores"][:3], atol=2e-3,
                               err_msg=context)
    iou = utils.compute_overlaps(expected["rois"].astype(np.float64),
                                 got["rois"].astype(np.float64))
    close = np.abs(expected["scores"][:, None] - got["scores"][None, :]) <= 2e-3
    matched = np.any((iou >= 0.9) & close, axis=1)
    assert matched.mean() >= 0.75, (context, matched)


def assert_same_outputs(got, expected, keys, context=""):
    """Raw inference outputs equal up to round-off. Detection rows (and their masks)
    are matched as sets: near-tied scores of an untrained model (here within 2e-4)
    may swap places under float round-off of another graph or backend."""
    for key in keys:
        if key in ("detections", "mrcnn_mask"):
            continue
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5,
                                   err_msg=f"{context} {key}")
    for b in range(len(expected["detections"])):
        rows_e, rows_g = expected["detections"][b], got["detections"][b]
        assert (rows_g[:, 4] > 0).sum() == (rows_e[:, 4] > 0).sum(), context
        for i in np.nonzero(rows_e[:, 4] > 0)[0]:
            close = np.all(np.abs(rows_g - rows_e[i]) <= 1e-5 + 1e-4 * np.abs(rows_e[i]),
                           axis=1)
            assert close.any(), (context, "detection", i, rows_e[i])
            if "mrcnn_mask" in keys:
                j = int(np.nonzero(close)[0][0])
                np.testing.assert_allclose(got["mrcnn_mask"][b, j], expected["mrcnn_mask"][b, i],
                                           rtol=1e-4, atol=1e-5, err_msg=f"{context} mask {i}")


def weights_of(model):
    """Kernels of one layer in the backbone, the matching and the RPN (copies)."""
    km = model.keras_model
    return {"conv1": km.get_layer("resnet_model").get_layer("conv1").get_weights()[0],
            "fpn_distance_P2": km.get_layer("fpn_distance_P2").get_weights()[0],
            "rpn_conv_shared": km.get_layer("rpn_model").get_layer(
                "rpn_conv_shared").get_weights()[0]}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def one_shot(tmp_path_factory):
    # Untrained, with DETECTION_MIN_CONFIDENCE 0: every query gives several detections.
    # Weights from numpy, so that every backend tests the same model.
    model = SiameseMaskRCNN("inference", TinySiameseConfig(),
                            str(tmp_path_factory.mktemp("one_shot")))
    fill_weights(model.keras_model, seed=11)
    # Favour "match" a little, so that (DETECTION_MIN_CONFIDENCE 0) ROIs become
    # detections as they do with Keras' random initial biases.
    logits = model.keras_model.get_layer("mrcnn_class_logits")
    logits.set_weights([logits.get_weights()[0], np.array([0.0, 1.0], np.float32)])
    return model


@pytest.fixture(scope="module")
def one_shot_weights(one_shot, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("weights") / "one_shot.h5")
    one_shot.save_weights(path)
    return path


@pytest.fixture(scope="module")
def three_shot(one_shot_weights, tmp_path_factory):
    """The 3-shot model carrying the 1-shot model's weights (loaded by name)."""
    model = SiameseMaskRCNN("inference", TinyThreeShotConfig(),
                            str(tmp_path_factory.mktemp("three_shot")))
    report = model.load_weights(one_shot_weights, by_name=True)
    assert report.missing == [] and report.skipped == []
    return model


@pytest.fixture(scope="module")
def references():
    """(three uint8 crops of different sizes, their molded references [3, D, D, 3])."""
    config = TinySiameseConfig()
    crops = [random_image(20 + i, (20 + 4 * i, 28 - 3 * i, 3)) for i in range(3)]
    return crops, np.stack([mold_image(resize_reference(c, config), config) for c in crops])


def train_eagerly(model):
    """Make ``model.train`` compile its Keras model with ``run_eagerly=True``.

    Only for speed: one eager step costs ~10 s here, tracing the training step ~60 s.
    Everything else of ``train`` (generator, layer selection, callbacks, checkpoint
    names) runs as usual; graph-mode training is exercised by the mrcnn model tests
    and the Siamese learning test.
    """
    compile_graph = model.keras_model.compile

    def compile_eager(*args, **kwargs):
        return compile_graph(*args, run_eagerly=True, **kwargs)

    model.keras_model.compile = compile_eager
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch of one step of "all" layers on one-shot shapes batches."""
    keras.utils.set_random_seed(5)
    model_dir = str(tmp_path_factory.mktemp("trained"))
    dataset = shapes_dataset(count=6)
    model = train_eagerly(SiameseMaskRCNN("training", TinySiameseConfig(), model_dir))
    before = weights_of(model)
    history = model.train(dataset, None, 0.01, 1, "all", seed=3, verbose=0)
    return {"model": model, "dataset": dataset, "history": history.history,
            "before": before, "model_dir": model_dir}


# ------------------------------------------------------------------ 1. layout
def test_inference_and_training_models_have_the_siamese_layer_layout(one_shot, trained):
    for model in (one_shot, trained["model"]):
        km = model.keras_model
        names = [layer.name for layer in km.layers]
        for name in ("resnet_model", "fpn_model", "rpn_model"):
            assert names.count(name) == 1, name
        for level in LEVELS:
            conv = km.get_layer(f"fpn_distance_{level}")
            assert isinstance(conv, keras.layers.Conv2D) and conv.kernel_size == (1, 1)
            assert conv.filters == MATCHED_CHANNELS == 384
            assert tuple(conv.kernel.shape) == (1, 1, 2 * FPN, 384)
        assert km.get_layer("mrcnn_class_logits").units == 2
        assert km.get_layer("mrcnn_bbox_fc").units == 4  # class-agnostic
        assert km.get_layer("mrcnn_mask").filters == 1
        assert tuple(km.get_layer("rpn_model").get_layer("rpn_conv_shared").kernel.shape)[2] \
            == 384
        # Siamese: one backbone and one FPN object, each called on query and references.
        for name in ("resnet_model", "fpn_model"):
            assert len(km.get_layer(name)._inbound_nodes) == 2, name
    assert one_shot.query_model.get_layer("resnet_model") is \
        one_shot.reference_model.get_layer("resnet_model") is \
        one_shot.keras_model.get_layer("resnet_model")
    assert one_shot.query_model.get_layer("fpn_model") is \
        one_shot.reference_model.get_layer("fpn_model")


# ------------------------------------------------------------------ 2. training
def test_one_shot_batch_and_one_training_step_give_five_finite_losses(trained):
    batch = OneShotDataGenerator(trained["dataset"], TinySiameseConfig(), seed=3)[0]
    assert batch["input_reference_images"].shape == (2, 1, D, D, 3)
    assert batch["input_image"].shape == (2, 64, 64, 3)
    assert set(np.unique(batch["input_gt_class_ids"]).tolist()) <= {0, 1}
    history = trained["history"]
    for name in LOSSES + ("loss",):
        assert len(history[name]) == 1 and math.isfinite(history[name][0]), name
    assert history["rpn_class_loss"][0] > 0 and history["rpn_bbox_loss"][0] > 0
    # "all" trains the shared backbone, the matching convs and the RPN. (An untrained
    # RPN rarely proposes a positive ROI, and without positives the sampler takes no
    # ROI at all, so the ROI heads' update is not checked here.)
    after = weights_of(trained["model"])
    for name, value in after.items():
        assert not np.array_equal(value, trained["before"][name]), name


def test_checkpoints_use_the_siamese_name_and_resume(trained, tmp_path):
    model = trained["model"]
    assert "siamese_mrcnn_0001.h5" in os.listdir(model.log_dir)
    last = model.find_last()
    assert os.path.basename(last) == "siamese_mrcnn_0001.h5"
    assert os.path.dirname(last) == model.log_dir
    assert model.checkpoint_path.endswith("siamese_mrcnn_{epoch:04d}.h5")
    # Resume in a fresh process: the checkpoint gives the run directory and the epoch.
    fresh = train_eagerly(SiameseMaskRCNN("training", TinySiameseConfig(),
                                          trained["model_dir"]))
    fresh.load_weights(last, by_name=True)
    assert fresh.epoch == 1 and fresh.log_dir == model.log_dir
    assert fresh.train(trained["dataset"], None, 0.01, 1, "all") is None  # already there
    history = fresh.train(trained["dataset"], None, 0.01, 2, "heads", seed=4, verbose=0)
    assert history.epoch == [1] and fresh.epoch == 2
    assert fresh.find_last() == os.path.join(model.log_dir, "siamese_mrcnn_0002.h5")
    # The inference model takes the training checkpoint by name.
    inference = SiameseMaskRCNN("inference", TinySiameseConfig(), str(tmp_path))
    report = inference.load_weights(last, by_name=True)
    assert report.missing == []
    np.testing.assert_array_equal(
        inference.keras_model.get_layer("fpn_distance_P3").get_weights()[0],
        model.keras_model.get_layer("fpn_distance_P3").get_weights()[0])


# ------------------------------------------------------------------ 3. k-independence
def test_weights_do_not_depend_on_the_number_of_shots(one_shot, tmp_path):
    five = SiameseMaskRCNN("inference", FiveShotConfig(), str(tmp_path))
    assert five.keras_model.get_layer("input_reference_images").output.shape[1] == 5
    assert weight_signature(five) == weight_signature(one_shot)
    assert len(weight_signature(one_shot)) > 100
    train_one = SiameseMaskRCNN("training", TinySiameseConfig(), str(tmp_path))
    train_five = SiameseMaskRCNN("training", FiveShotConfig(), str(tmp_path))
    assert weight_signature(train_five) == weight_signature(train_one)


# ------------------------------------------------------------------ 4. matching maths
def numpy_matching(model, molded_image, molded_references):
    """Slow reference of the matching step: [L] arrays [1, h, w, 384].

    Runs the shared backbone + FPN layers directly on query and references, then in
    numpy: global average pool of every reference map, mean over shots, |q - r|,
    concatenation [q, |q - r|] and the 1x1 conv with the fpn_distance_P* weights.
    """
    km = model.keras_model
    resnet, fpn = km.get_layer("resnet_model"), km.get_layer("fpn_model")
    query = [p.astype(np.float64) for p in as_numpy(fpn(resnet(molded_image[None])))]
    refs = [p.astype(np.float64) for p in as_numpy(fpn(resnet(molded_references)))]
    out = []
    for level, q, r in zip(LEVELS, query, refs):
        vector = r.mean(axis=(1, 2)).mean(axis=0)                      # [C]
        joined = np.concatenate([q, np.abs(q - vector)], axis=-1)      # [1, h, w, 2C]
        kernel, bias = km.get_layer(f"fpn_distance_{level}").get_weights()
        out.append(joined @ kernel[0, 0].astype(np.float64) + bias)
    return out


def graph_matching(model, molded_image, molded_references):
    km = model.keras_model
    sub = keras.Model([model.query_model.inputs[0], model.reference_model.inputs[0]],
                      [km.get_layer(f"fpn_distance_{lvl}").output for lvl in LEVELS])
    return as_numpy(sub([molded_image[None], molded_references[None]]))


@pytest.mark.parametrize("shots", [1, 3])
def test_matching_equals_numpy_computation(one_shot, three_shot, references, shots):
    model = one_shot if shots == 1 else three_shot
    molded_refs = references[1][:shots]
    molded, _, _ = model.mold_inputs([random_image(1)])
    expected = numpy_matching(model, molded[0], molded_refs)
    got = graph_matching(model, molded[0], molded_refs)
    for level, g, e in zip(LEVELS, got, expected):
        assert g.shape == e.shape and g.shape[-1] == 384, level
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=level)
    # The reference matters: other references give other maps.
    other = numpy_matching(model, molded[0], molded_refs[::-1] * 0.5)
    assert not np.allclose(got[0], other[0], rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ 5. k-shot
def test_three_identical_references_equal_the_one_shot_model(one_shot, three_shot,
                                                             references):
    image = random_image(2)
    ref = references[1][1:2]
    single = run_graph(one_shot, image, ref)
    triple = run_graph(three_shot, image, np.repeat(ref, 3, axis=0))
    assert (single["detections"][0, :, 4] > 0).sum() >= 3
    assert_same_outputs(triple, single, ("rpn_class", "rpn_bbox", "detections", "mrcnn_mask"))


def test_k_shot_vector_is_the_mean_of_one_shot_vectors(one_shot, three_shot, references):
    refs = references[1]                                          # [3, D, D, 3]
    per_shot = as_numpy(one_shot.reference_model(refs[:, None]))  # L x [3, C]
    pooled = as_numpy(three_shot.reference_model(refs[None]))     # L x [1, C]
    for level, single, joint in zip(LEVELS, per_shot, pooled):
        assert joint.shape == (1, FPN), level
        np.testing.assert_allclose(joint[0], single.mean(axis=0), rtol=1e-5, atol=1e-6,
                                   err_msg=level)
        assert not np.allclose(single[0], single[1]), level  # the references differ
    # The whole 3-shot model equals the 1-shot heads fed the mean vectors.
    image = random_image(3)
    molded, metas, _ = one_shot.mold_inputs([image])
    pyramid = as_numpy(one_shot.query_model(molded))
    mean_vectors = [v.mean(axis=0, keepdims=True) for v in per_shot]
    # Both through Keras' compiled predict step: on JAX an eager call rounds ROI
    # sample positions differently from the jitted graph (no fused multiply-add), and
    # a box clipped to the image edge then samples its last column inside the map in
    # one and a hair outside (zeroed, as tf.image.crop_and_resize does) in the other.
    heads = one_shot.head_model.predict_on_batch(pyramid + mean_vectors + [metas])
    joint = run_graph(three_shot, image, refs)
    assert_same_outputs(joint, as_numpy(heads), ("detections", "mrcnn_mask", "rpn_class"))


# ------------------------------------------------------------------ 6. detection API
def test_detect_multi_equals_separate_detect_calls(one_shot, references):
    crops = references[0]
    image = random_image(4, (48, 64, 3))                 # padded: exercises the window
    sets = [crops[0], [crops[1]], crops[2]]              # a bare image or a list of one
    shared = one_shot.detect_multi(image, sets)          # BATCH_SIZE 2: two head batches
    assert len(shared) == 3
    for i, refs in enumerate(sets):
        alone = one_shot.detect([refs], [image])[0]
        assert len(alone["class_ids"]) >= 3
        assert alone["masks"].shape[:2] == (48, 64)
        assert_equivalent_detections(shared[i], alone, f"reference set {i}")
    assert shared[0]["rois"].tolist() != shared[1]["rois"].tolist()  # sets matter
    assert one_shot.detect_multi(image, []) == []


def test_detect_keywords_and_references_given_as_image_and_box(one_shot, references):
    crops = references[0]
    query = random_image(5)
    positional = one_shot.detect([crops[0]], [query])[0]
    keyword = one_shot.detect(targets=[crops[0]], images=[query])[0]
    assert_same_detections(keyword, positional, "keyword call")

    # 48x64 source: the query-style resize keeps scale 1 and pads 8 rows on top,
    # so the box's crop is the same pixels as cutting the original.
    source = random_image(6, (48, 64, 3))
    box = (10, 5, 30, 40)
    direct = one_shot.mold_references(source[10:30, 5:40])
    for given in ({"image": source, "box": box}, (source, box), [(source, box)]):
        np.testing.assert_array_equal(one_shot.mold_references(given), direct)
    # 32x32 source: resized by 2 first, as training crops references from the
    # query-style resized image.
    small = random_image(7, (32, 32, 3))
    resized = utils.resize_image(small, min_dim=64, max_dim=64, mode="square")[0]
    np.testing.assert_array_equal(one_shot.mold_references((small, (4, 6, 20, 26))),
                                  one_shot.mold_references(resized[8:40, 12:52]))
    assert not np.array_equal(direct, one_shot.mold_references(source))

    by_box = one_shot.detect(targets=[{"image": source, "box": box}], images=[query])[0]
    by_crop = one_shot.detect([source[10:30, 5:40]], [query])[0]
    assert_same_detections(by_box, by_crop, "image + box reference")
    with pytest.raises(ValueError, match="covers no pixel"):
        one_shot.detect([(source, (60, 0, 70, 10))], [query])
    with pytest.raises(ValueError, match="NUM_TARGETS"):
        one_shot.detect([[crops[0], crops[1]]], [query])
    with pytest.raises(ValueError, match="one reference set per image"):
        one_shot.detect([crops[0]], [query, query])


# ------------------------------------------------------------------ 7. checkpoints
def legacy_entries(layer):
    """[(stored name, array)] of one top-level layer in Keras 2's layout: trainable
    then non-trainable weights; inside a nested model, of all its inner layers."""
    inner = layer.layers if isinstance(layer, keras.Model) else [layer]
    trainable = [(f"{sub.name}/{w.name}:0", np.asarray(w))
                 for sub in inner for w in sub.trainable_weights]
    frozen = [(f"{sub.name}/{w.name}:0", np.asarray(w))
              for sub in inner for w in sub.non_trainable_weights]
    return trainable + frozen


def write_legacy_checkpoint(model, path):
    """The original project's checkpoint layout, written with h5py only."""
    layers = model.keras_model.layers
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.3"
        for layer in layers:
            group = f.create_group(layer.name)
            entries = legacy_entries(layer)
            group.attrs["weight_names"] = np.array([n.encode() for n, _ in entries],
                                                   dtype="S" if entries else "S1")
            for name, value in entries:
                group.create_dataset(name, data=value)  # "a/kernel:0" nests a group


def test_original_checkpoint_layout_loads_by_name(one_shot, tmp_path):
    path = str(tmp_path / "siamese_mrcnn_0160.h5")
    write_legacy_checkpoint(one_shot, path)
    with h5py.File(path, "r") as f:
        assert "resnet_model/res2a_branch2a/kernel:0" in f
        assert "fpn_model/fpn_c5p5/kernel:0" in f
        assert "rpn_model/rpn_conv_shared/kernel:0" in f
        assert "fpn_distance_P2/fpn_distance_P2/kernel:0" in f
        names = [n.decode() for n in f["resnet_model"].attrs["weight_names"]]
        assert names.index("bn_conv1/moving_mean:0") > names.index("res5b_branch2b/bias:0")

    fresh = SiameseMaskRCNN("inference", TinySiameseConfig(), str(tmp_path))
    image, refs = random_image(8), random_image(9, (D, D, 3))
    molded_refs = fresh.mold_references(refs)
    before = run_graph(fresh, image, molded_refs)
    report = load_weight_file(fresh.keras_model, path, by_name=True)
    assert report.missing == [] and report.skipped == []
    assert {"resnet_model", "fpn_model", "rpn_model", "fpn_distance_P6",
            "mrcnn_class_logits", "mrcnn_mask"} <= set(report.loaded)
    expected = run_graph(one_shot, image, molded_refs)
    got = run_graph(fresh, image, molded_refs)
    for key in ("detections", "mrcnn_mask", "rpn_class", "mrcnn_class"):
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert not np.allclose(before["rpn_class"], expected["rpn_class"])


# ------------------------------------------------------------------ 8. full size
class CpuLargeConfig(LargeConfig):
    """The paper's Large sizes (1024x1024 queries, 192x192 references, FC 1024, 1000
    proposals) with ResNet-50 and one image, on the CPU."""

    NAME = "large_cpu"
    BACKBONE = "resnet50"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1


def test_full_size_inference_runs_on_cpu(tmp_path):
    # The "must show": the paper-size model builds and detects once on a CPU. It is the
    # slowest test of the file: about 40 s on 2 idle cores (build ~6 s, one detect
    # ~35 s of which ~10 s tracing), ~60 s when the cores are shared.
    config = CpuLargeConfig()
    assert list(config.IMAGE_SHAPE) == [1024, 1024, 3]  # the 768x1024 query is padded
    model = SiameseMaskRCNN("inference", config, str(tmp_path))
    assert tuple(model.keras_model.get_layer("input_reference_images").output.shape[1:]) \
        == (1, 192, 192, 3)
    rng = np.random.default_rng(10)
    query = rng.integers(0, 256, size=(768, 1024, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, size=(192, 192, 3), dtype=np.uint8)
    result = model.detect([reference], [query])[0]
    n = len(result["class_ids"])
    assert result["rois"].shape == (n, 4) and result["masks"].shape == (768, 1024, n)
    assert n <= config.DETECTION_MAX_INSTANCES
    assert (result["scores"] >= config.DETECTION_MIN_CONFIDENCE).all()
