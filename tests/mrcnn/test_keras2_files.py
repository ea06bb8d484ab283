"""Weight files written by real Keras 2, loaded by mrcnn.weights into our models.

The fixtures in tests/fixtures/keras2 were written by ``tf_keras`` (the Keras 2 API)
in TF1 graph mode with its own ``save_weights`` / ``model.save`` (see
tests/fixtures/keras2/make_fixtures.py; it needs tf-keras, so the files are shipped,
gzip-compressed, and checked here against the SHA-256 the generator recorded):

* a Matterport-layout Mask R-CNN (ResNet-50 and FPN at top level, TimeDistributed
  heads, nested rpn_model);
* an original-Siamese-layout model (nested resnet_model and fpn_model, some of
  their weights stored with Keras 2's "_1" scope suffix);
* an ImageNet classifier saved whole around a nested resnet_model (the layout of
  the original's imagenet-687 / 771 backbone files).

Every weight holds ``fixture_value(seed, "<layer>/<variable>")``, so the tests check
each loaded variable against the value its *name* says it must have.
"""

import gzip
import hashlib
import json
import os
import shutil

import h5py
import numpy as np
import pytest

from mrcnn import weights as weights_io
from mrcnn.config import Config
from siamese_mrcnn.cli_inputs import CliError
from siamese_mrcnn.config import SiameseConfig
from tests.fixtures.keras2 import make_fixtures as generator  # tf_keras only in main()

FIXTURES = os.path.dirname(os.path.abspath(generator.__file__))
with open(os.path.join(FIXTURES, "manifest.json"), encoding="utf-8") as _f:
    MANIFEST = json.load(_f)
SIZES = {k: v for k, v in MANIFEST["config"].items() if k != "MATTERPORT_NUM_CLASSES"}


class FixtureSiamese(SiameseConfig):
    """Siamese Mask R-CNN of the fixtures' sizes (64 px queries, 32 px references)."""

    NAME = "keras2_fixture"
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
    TARGET_MIN_DIM, TARGET_MAX_DIM = 24, 32
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    PRE_NMS_LIMIT = 256
    POST_NMS_ROIS_INFERENCE = 16
    DETECTION_MAX_INSTANCES = 4
    locals().update(SIZES)


class FixtureMatterport(Config):
    """Mask R-CNN of the fixtures' sizes with 3 classes."""

    NAME = "keras2_fixture_matterport"
    NUM_CLASSES = MANIFEST["config"]["MATTERPORT_NUM_CLASSES"]
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    PRE_NMS_LIMIT = 256
    POST_NMS_ROIS_INFERENCE = 16
    DETECTION_MAX_INSTANCES = 4
    locals().update({k: v for k, v in SIZES.items()
                     if k not in ("FPN_FEATUREMAPS", "MATCHED_CHANNELS")})


def fixture(name, folder):
    """Decompress ``name``.gz into ``folder``; check it is the file Keras 2 wrote."""
    path = os.path.join(str(folder), name)
    with gzip.open(os.path.join(FIXTURES, name + ".gz"), "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == MANIFEST["files"][name]["sha256"]
    return path


def expected(key, shape):
    return generator.fixture_value(MANIFEST["seed"], key, shape)


def assert_fixture_values(layers):
    """Every weight of ``layers`` equals the fixture value of its name; returns the
    number of weights checked."""
    count = 0
    for layer in layers:
        for stored_name, variable in weights_io.layer_weight_entries(layer):
            key = stored_name.rsplit(":", 1)[0]
            np.testing.assert_array_equal(variable.numpy(), expected(key, variable.shape),
                                          err_msg=key)
            count += 1
    return count


def layers_with_weights(model):
    return [layer for layer in model.keras_model.layers
            if weights_io.layer_weight_entries(layer)]


def zero_weights(layers):
    for layer in layers:
        for _, variable in weights_io.layer_weight_entries(layer):
            variable.assign(np.zeros(variable.shape, variable.dtype))


@pytest.fixture(scope="module")
def siamese(tmp_path_factory):
    from siamese_mrcnn.model import SiameseMaskRCNN
    return SiameseMaskRCNN("inference", FixtureSiamese(),
                           str(tmp_path_factory.mktemp("keras2_logs")))


def test_the_fixtures_are_keras2_files(tmp_path):
    assert MANIFEST["tf_keras"].startswith("2.")
    for name, info in MANIFEST["files"].items():
        path = fixture(name, tmp_path)
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if info["writer"].endswith(".save") else f
            assert str(root.attrs["keras_version"]).startswith("2."), name
            assert str(root.attrs["backend"]) == "tensorflow"
    with h5py.File(fixture("original_siamese_mrcnn.h5", tmp_path), "r") as f:
        names = [str(n) for n in f["resnet_model"].attrs["weight_names"]]
        assert "conv1_1/kernel:0" in names and "res2b_branch2a/kernel:0" in names
        assert len(names) == 318  # ResNet-50: 53 convs and 53 BatchNorms
    assert MANIFEST["files"]["original_siamese_mrcnn.h5"]["scope_suffixed"]


def test_matterport_file_loads_every_layer_by_name(tmp_path):
    from mrcnn.model import MaskRCNN
    model = MaskRCNN("inference", FixtureMatterport(), str(tmp_path))
    report = model.load_weights(fixture("matterport_mask_rcnn.h5", tmp_path), by_name=True)
    targets = layers_with_weights(model)
    assert sorted(report.loaded) == sorted(layer.name for layer in targets)
    assert (report.missing, report.unused, report.by_order, report.skipped) == ([], [], [], [])
    assert {"conv1", "res5c_branch2c", "fpn_p2", "rpn_model",
            "mrcnn_mask_deconv"} <= set(report.loaded)
    assert assert_fixture_values(targets) == MANIFEST["files"]["matterport_mask_rcnn.h5"][
        "weights"]


def test_original_siamese_file_loads_every_layer_by_name(siamese, tmp_path):
    from siamese_mrcnn.commands import check_names_matched
    path = fixture("original_siamese_mrcnn.h5", tmp_path)
    targets = layers_with_weights(siamese)
    for by_name in (True, False):
        zero_weights(targets)
        report = siamese.load_weights(path, by_name=by_name)
        assert sorted(report.loaded) == sorted(layer.name for layer in targets)
        assert (report.missing, report.unused, report.by_order) == ([], [], [])
        assert assert_fixture_values(targets) == MANIFEST["files"][
            "original_siamese_mrcnn.h5"]["weights"]
    check_names_matched(report, path)  # what evaluate and detect require


def _rename_group(path, old, new):
    """Rename the top-level layer ``old`` to ``new`` as Keras 2 would have stored it."""
    with h5py.File(path, "r+") as f:
        names = [str(n) for n in f.attrs["layer_names"]]
        f.attrs["layer_names"] = np.array([new if n == old else n for n in names], dtype="S")
        f.move(old, new)
        group = f[new]
        weight_names = [str(n) for n in group.attrs["weight_names"]]
        renamed = [w.replace(f"{old}/", f"{new}/", 1) for w in weight_names]
        for w, r in zip(weight_names, renamed):
            group.create_dataset(r, data=group[w][()])
            del group[w]
        group.attrs["weight_names"] = np.array(renamed, dtype="S")


def _rename_inner(path, group_name, old, new):
    """Rename the weights of inner layer ``old`` of a nested group to ``new``."""
    with h5py.File(path, "r+") as f:
        group = f[group_name]
        weight_names = [str(n) for n in group.attrs["weight_names"]]
        renamed = [new + w[len(old):] if w.startswith(old + "/") else w for w in weight_names]
        for w, r in zip(weight_names, renamed):
            if w != r:
                group.create_dataset(r, data=group[w][()])
                del group[w]
        group.attrs["weight_names"] = np.array(renamed, dtype="S")


def test_a_renamed_layer_is_reported_by_name(siamese, tmp_path):
    from siamese_mrcnn.commands import _load_inference_weights
    path = fixture("original_siamese_mrcnn.h5", tmp_path)
    _rename_group(path, "mrcnn_mask_conv3", "mrcnn_mask_conv3_old")
    report = siamese.load_weights(path, by_name=True)
    assert report.missing == ["mrcnn_mask_conv3"]
    assert report.unused == ["mrcnn_mask_conv3_old"]
    with pytest.raises(CliError, match=r"has no weights for model layer\(s\) mrcnn_mask_conv3; "
                                       r"file layers not loaded: mrcnn_mask_conv3_old"):
        _load_inference_weights(siamese, path)
    # by_name=False pairs layers by position (Keras 2's rule) once the names differ:
    # Keras 2 listed this file's layers in another order than our model, so that
    # fails loudly instead of loading mismatched layers.
    with pytest.raises(ValueError, match="has 2 weights in the file but model layer "
                                         "'resnet_model' has 318"):
        siamese.load_weights(path, by_name=False)

    # An inner layer of a nested group renamed: its weights match no name.
    path = fixture("original_siamese_mrcnn.h5", tmp_path / "..")
    _rename_inner(path, "resnet_model", "res4b_branch2b", "res4b_branch2x")
    report = siamese.load_weights(path, by_name=True)
    assert report.by_order == [
        "layer 'resnet_model': file weight 'res4b_branch2x/kernel:0' -> "
        "'res4b_branch2b/kernel:0'",
        "layer 'resnet_model': file weight 'res4b_branch2x/bias:0' -> 'res4b_branch2b/bias:0'"]
    with pytest.raises(CliError, match="res4b_branch2x/kernel:0"):
        _load_inference_weights(siamese, path)


def test_imagenet_backbone_file_loads_as_imagenet_and_as_a_weights_file(siamese, tmp_path,
                                                                        capsys):
    from siamese_mrcnn.commands import _load_training_weights
    path = fixture("imagenet_backbone.h5", tmp_path)
    resnet = siamese.keras_model.get_layer("resnet_model")
    heads = [layer for layer in layers_with_weights(siamese) if layer is not resnet]
    # --weights imagenet --imagenet-weights FILE: into resnet_model.
    zero_weights([resnet])
    _load_training_weights(siamese, "imagenet", path, None)
    printed = capsys.readouterr().out
    assert "loaded 1 layers" in printed
    assert f"not loaded from {path} (no such layer in the model): fc" in printed
    assert assert_fixture_values([resnet]) == 318
    # --weights FILE: the file's resnet_model group matches the model's by name; the
    # rest of the model is left as it is (random in training).
    zero_weights([resnet])
    marker = heads[0].weights[0]
    marker.assign(np.full(marker.shape, 0.25, marker.dtype))
    _load_training_weights(siamese, "path", path, None)
    printed = capsys.readouterr().out
    assert "randomly initialised: fpn_model, fpn_distance_P2" in printed
    assert f"not loaded from {path} (no such layer in the model): fc" in printed
    assert assert_fixture_values([resnet]) == 318
    assert np.all(marker.numpy() == 0.25)
    report = weights_io.load_weights(siamese.keras_model, path, by_name=True)
    assert report.loaded == ["resnet_model"] and report.unused == ["fc"]


def test_an_original_checkpoint_name_resumes_at_its_epoch(siamese, tmp_path):
    from siamese_mrcnn.schedule import make_schedule, remaining_stages
    source = fixture("original_siamese_mrcnn.h5", tmp_path)
    for name, epoch in (("siamese_mrcnn_0120.h5", 120),
                        ("large_siamese_mrcnn_coco_i1_0160.h5", 160),
                        ("weights_0042.h5", 0)):
        path = str(tmp_path / name)
        shutil.copy(source, path)
        siamese.load_weights(path, by_name=True)
        assert siamese.epoch == epoch, name
    siamese.load_weights(str(tmp_path / "siamese_mrcnn_0120.h5"), by_name=True)
    todo = remaining_stages(make_schedule("paper"), siamese.epoch)
    assert [(s.layers, s.epochs, s.lr_factor) for s in todo] == [("all", 160, 0.1)]
    # Not a run folder of ours: new checkpoints go to a new run folder.
    assert os.path.dirname(siamese.checkpoint_path) != str(tmp_path)
