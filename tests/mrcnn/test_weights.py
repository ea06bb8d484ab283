"""Legacy HDF5 weight files and ImageNet conversion (mrcnn.weights).

The models here are tiny stand-ins with the real layer names: a nested
``resnet_model`` (conv1, bn_conv1, res2a_branch2a, bn2a_branch2a), a top-level
``fpn_c2p2`` and a nested ``rpn_model``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn import weights as weights_io  # noqa: E402
from mrcnn.layers.backbone import BatchNorm, build_resnet_model  # noqa: E402
from mrcnn.layers.heads import build_rpn_model  # noqa: E402
from mrcnn.weights import (WeightFileError, convert_resnet_from_keras_applications,  # noqa: E402
                           keras_applications_layer_names, load_resnet_from_keras_applications,
                           load_weights, save_weights)
from mrcnn.imagenet import reverse_conv1_input_channels, write_imagenet_backbone  # noqa: E402


def tiny_resnet():
    image = keras.Input([None, None, 3], name="resnet_model_input")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(image)
    x = BatchNorm(name="bn_conv1")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.Conv2D(6, 1, name="res2a_branch2a")(x)
    x = BatchNorm(name="bn2a_branch2a")(x)
    return keras.Model(image, x, name="resnet_model")


def tiny_model(seed):
    """A model with nested sub-models, randomised weights and BN statistics."""
    keras.utils.set_random_seed(seed)
    image = keras.Input([8, 8, 3], name="input_image")
    features = tiny_resnet()(image)
    p2 = keras.layers.Conv2D(5, 1, name="fpn_c2p2")(features)
    logits, probs, deltas = build_rpn_model(1, 3, depth=5)(p2)
    model = keras.Model(image, [p2, logits, deltas], name="tiny")
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "moving_variance" in variable.path:
            variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32))
        else:
            variable.assign(rng.normal(0, 0.3, variable.shape).astype(np.float32))
    return model


def image_batch():
    return np.random.default_rng(42).normal(size=(2, 8, 8, 3)).astype(np.float32)


def assert_same_outputs(a, b):
    for x, y in zip(a(image_batch()), b(image_batch())):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def weights_by_path(model):
    return {v.path: v.numpy().copy() for v in model.weights}


@pytest.fixture(scope="module")
def source():
    return tiny_model(seed=1)


# ------------------------------------------------------------------ layout
def test_saved_file_has_keras2_legacy_layout(source, tmp_path):
    path = str(tmp_path / "w.h5")
    save_weights(source, path)
    with h5py.File(path, "r") as f:
        layer_names = [n.decode() for n in f.attrs["layer_names"]]
        assert layer_names == [layer.name for layer in source.layers]
        assert layer_names[0] == "input_image"
        assert f.attrs["backend"] in ("tensorflow", b"tensorflow")
        assert "keras_version" in f.attrs
        assert len(f["input_image"].attrs["weight_names"]) == 0
        assert [n.decode() for n in f["fpn_c2p2"].attrs["weight_names"]] == [
            "fpn_c2p2/kernel:0", "fpn_c2p2/bias:0"]
        # Nested model: all trainable weights in layer order, then non-trainable.
        assert [n.decode() for n in f["resnet_model"].attrs["weight_names"]] == [
            "conv1/kernel:0", "conv1/bias:0", "bn_conv1/gamma:0", "bn_conv1/beta:0",
            "res2a_branch2a/kernel:0", "res2a_branch2a/bias:0", "bn2a_branch2a/gamma:0",
            "bn2a_branch2a/beta:0", "bn_conv1/moving_mean:0", "bn_conv1/moving_variance:0",
            "bn2a_branch2a/moving_mean:0", "bn2a_branch2a/moving_variance:0"]
        assert "rpn_conv_shared/kernel:0" in [
            n.decode() for n in f["rpn_model"].attrs["weight_names"]]
        np.testing.assert_array_equal(
            f["resnet_model"]["bn_conv1/moving_variance:0"][()],
            source.get_layer("resnet_model").get_layer("bn_conv1").moving_variance.numpy())


def test_frozen_sublayers_are_stored_after_trainable_ones(tmp_path):
    model = tiny_model(seed=2)
    model.get_layer("resnet_model").get_layer("conv1").trainable = False
    path = str(tmp_path / "frozen.h5")
    save_weights(model, path)
    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f["resnet_model"].attrs["weight_names"]]
    assert names[:2] == ["bn_conv1/gamma:0", "bn_conv1/beta:0"]
    assert names.index("conv1/kernel:0") > names.index("bn2a_branch2a/beta:0")
    # Loading into an all-trainable model still puts every value in its place.
    fresh = tiny_model(seed=3)
    load_weights(fresh, path, by_name=True)
    assert_same_outputs(model, fresh)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("by_name", [True, False])
def test_save_load_round_trip(source, tmp_path, by_name):
    path = str(tmp_path / "w.h5")
    save_weights(source, path)
    fresh = tiny_model(seed=7)
    report = load_weights(fresh, path, by_name=by_name)
    assert sorted(report.loaded) == ["fpn_c2p2", "resnet_model", "rpn_model"]
    assert report.skipped == [] and report.missing == [] and report.unused == []
    expected = weights_by_path(source)
    for path_, value in weights_by_path(fresh).items():
        np.testing.assert_array_equal(value, expected[path_], err_msg=path_)
    assert_same_outputs(source, fresh)


@pytest.mark.parametrize("by_name", [True, False])
def test_float16_copy_is_half_the_size_and_loads_rounded_weights(tmp_path, by_name):
    source = tiny_model(seed=1)
    # A BatchNorm variance beyond float16's range (65504) stays float32 in the copy.
    big = source.get_layer("resnet_model").get_layer("bn_conv1").moving_variance
    big.assign(np.full(big.shape, 1.3e5, np.float32))
    full, half = str(tmp_path / "w.h5"), str(tmp_path / "w16.h5")
    save_weights(source, full)
    sizes = weights_io.convert_weight_file(full, half, "float16")
    assert sizes == (os.path.getsize(full), os.path.getsize(half))
    with h5py.File(full, "r") as a, h5py.File(half, "r") as b:
        assert dict(a.attrs).keys() == dict(b.attrs).keys()
        assert list(a["resnet_model"].attrs["weight_names"]) == list(
            b["resnet_model"].attrs["weight_names"])
        assert b["resnet_model"]["conv1/kernel:0"].dtype == np.float16
        assert b["resnet_model"]["bn_conv1/moving_variance:0"].dtype == np.float32
        weights_bytes = lambda f: sum(  # noqa: E731
            d.nbytes for d in _datasets(f))
        kept = b["resnet_model"]["bn_conv1/moving_variance:0"].nbytes
        assert (weights_bytes(b) - kept) * 2 == weights_bytes(a) - kept
    fresh = tiny_model(seed=7)
    load_weights(fresh, half, by_name=by_name)
    expected = weights_by_path(source)
    for path_, value in weights_by_path(fresh).items():
        assert value.dtype == np.float32
        want = expected[path_]
        if np.abs(want).max() < 65504:
            want = want.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(value, want, err_msg=path_)
    # The same file written directly from the model.
    direct = str(tmp_path / "direct16.h5")
    save_weights(source, direct, dtype="float16")
    with h5py.File(direct, "r") as a, h5py.File(half, "r") as b:
        for x, y in zip(_datasets(a), _datasets(b)):
            np.testing.assert_array_equal(x[()], y[()])
    with pytest.raises(ValueError, match="floating"):
        weights_io.convert_weight_file(full, str(tmp_path / "int.h5"), "int8")


def _datasets(h5):
    found = []
    h5.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset)
                  else None)
    return found


def test_exclude_leaves_layers_untouched(source, tmp_path):
    path = str(tmp_path / "w.h5")
    save_weights(source, path)
    fresh = tiny_model(seed=8)
    before = weights_by_path(fresh.get_layer("rpn_model"))
    report = load_weights(fresh, path, by_name=True, exclude=["rpn_model"])
    assert report.skipped == ["rpn_model"]
    assert "rpn_model" not in report.loaded
    for path_, value in weights_by_path(fresh.get_layer("rpn_model")).items():
        np.testing.assert_array_equal(value, before[path_])
    np.testing.assert_array_equal(fresh.get_layer("fpn_c2p2").kernel.numpy(),
                                  source.get_layer("fpn_c2p2").kernel.numpy())


def test_load_into_sub_model_from_top_level_file(source, tmp_path):
    # A Matterport-style backbone file (one group per layer) loads into resnet_model.
    inner = source.get_layer("resnet_model")
    flat_path = str(tmp_path / "flat.h5")
    image = keras.Input([None, None, 3])
    wrapped = keras.Model(image, inner(image))
    save_weights(inner, flat_path)  # inner's layers are top-level groups here
    target = tiny_model(seed=9).get_layer("resnet_model")
    report = load_weights(target, flat_path, by_name=True)
    assert sorted(report.loaded) == ["bn2a_branch2a", "bn_conv1", "conv1", "res2a_branch2a"]
    assert_same_outputs(wrapped, keras.Model(image, target(image)))


# ------------------------------------------------------------------ Keras 2 files
def _legacy_file(path, layers, root_group=None, chunk_layer_names=False):
    """Write a Keras-2 style file with h5py: layers = [(name, [(weight name, array)])]."""
    with h5py.File(path, "w") as f:
        root = f.create_group(root_group) if root_group else f
        names = np.array([n.encode() for n, _ in layers])
        if chunk_layer_names:
            root.attrs["layer_names0"] = names[:2]
            root.attrs["layer_names1"] = names[2:]
        else:
            root.attrs["layer_names"] = names
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.6"
        for name, weights in layers:
            group = root.create_group(name)
            # Keras 2 wrote an empty float array for layers without weights.
            group.attrs["weight_names"] = (np.array([w.encode() for w, _ in weights])
                                           if weights else np.array([]))
            for weight_name, value in weights:
                group.create_dataset(weight_name, data=value)


def _keras2_layers(model, shuffle_resnet=True, prefix=""):
    """Layer list of ``model`` in a Keras 2 file, the resnet group in a foreign order."""
    rng = np.random.default_rng(0)
    layers = [("input_image", [])]
    for layer in model.layers[1:]:
        entries = [(f"{prefix if layer.name == 'resnet_model' else ''}{n}",
                    np.asarray(v.numpy()))
                   for n, v in weights_io.layer_weight_entries(layer)]
        if layer.name == "resnet_model" and shuffle_resnet:
            entries = [entries[i] for i in rng.permutation(len(entries))]
        layers.append((layer.name, entries))
    layers.append(("mrcnn_unused_layer", [("mrcnn_unused_layer/kernel:0",
                                           np.ones((2, 2), np.float32))]))
    return layers


@pytest.mark.parametrize("variant", ["plain", "model_weights", "chunked", "prefixed"])
def test_loads_keras2_file_with_foreign_nested_order(source, tmp_path, variant):
    path = str(tmp_path / f"{variant}.h5")
    layers = _keras2_layers(source, prefix="resnet_model/" if variant == "prefixed" else "")
    order = [n for n, _ in dict(layers)["resnet_model"]]
    model_order = [n for n, _ in weights_io.layer_weight_entries(source.get_layer("resnet_model"))]
    assert [n.split("resnet_model/")[-1] for n in order] != model_order  # really foreign
    _legacy_file(path, layers, root_group="model_weights" if variant == "model_weights" else None,
                 chunk_layer_names=variant == "chunked")
    fresh = tiny_model(seed=11)
    report = load_weights(fresh, path, by_name=True)
    assert report.unused == ["mrcnn_unused_layer"]
    expected = weights_by_path(source)
    for path_, value in weights_by_path(fresh).items():
        np.testing.assert_array_equal(value, expected[path_], err_msg=path_)


def test_unresolvable_single_layer_names_fall_back(source, tmp_path):
    # A TimeDistributed-era file may name a layer's weights after its inner layer.
    layers = _keras2_layers(source, shuffle_resnet=False)
    # ... and in another order (bias first): pairing must go by variable name.
    layers = [(n, [(w.replace("fpn_c2p2/", "conv2d_7/"), v) for w, v in reversed(ws)])
              if n == "fpn_c2p2" else (n, ws) for n, ws in layers]
    path = str(tmp_path / "td.h5")
    _legacy_file(path, layers)
    fresh = tiny_model(seed=12)
    load_weights(fresh, path, by_name=True)
    assert_same_outputs(source, fresh)


def test_by_order_load_pairs_same_names_by_name_else_by_position(source, tmp_path):
    layers = [item for item in _keras2_layers(source) if item[0] != "mrcnn_unused_layer"]
    # Same layer names in another order (a training graph's file loaded into the
    # inference graph): paired by name.
    reordered = [layers[0], layers[3], layers[1], layers[2]]
    assert [n for n, _ in reordered] != [n for n, _ in layers]
    path = str(tmp_path / "reordered.h5")
    _legacy_file(path, reordered)
    fresh = tiny_model(seed=16)
    load_weights(fresh, path, by_name=False)
    assert_same_outputs(source, fresh)
    # Different layer names: Keras 2's positional pairing (inside a layer too, as no
    # stored weight name resolves).
    layers = [item for item in _keras2_layers(source, shuffle_resnet=False)
              if item[0] != "mrcnn_unused_layer"]
    renamed = [(f"old_{n}", [(f"old_{w}", v) for w, v in ws]) for n, ws in layers]
    path = str(tmp_path / "renamed.h5")
    _legacy_file(path, renamed)
    fresh = tiny_model(seed=17)
    report = load_weights(fresh, path, by_name=False)
    assert sorted(report.loaded) == ["fpn_c2p2", "resnet_model", "rpn_model"]
    assert_same_outputs(source, fresh)


# ------------------------------------------------------------------ errors
def test_shape_mismatch_names_layer_weight_and_file(source, tmp_path):
    layers = _keras2_layers(source, shuffle_resnet=False)
    layers = [(n, [(w, np.zeros((1, 1, 6, 9), np.float32) if w.endswith("kernel:0") else v)
                   for w, v in ws]) if n == "fpn_c2p2" else (n, ws) for n, ws in layers]
    path = str(tmp_path / "bad_shape.h5")
    _legacy_file(path, layers)
    fresh = tiny_model(seed=13)
    before = weights_by_path(fresh)
    with pytest.raises(ValueError, match=r"fpn_c2p2.*kernel.*\(1, 1, 6, 9\).*\(1, 1, 6, 5\)") as e:
        load_weights(fresh, path, by_name=True)
    assert path in str(e.value)
    # Nothing was assigned: the load is all or nothing.
    for path_, value in weights_by_path(fresh).items():
        np.testing.assert_array_equal(value, before[path_])
    report = load_weights(fresh, path, by_name=True, skip_mismatch=True)
    assert report.skipped == ["fpn_c2p2"]
    assert sorted(report.loaded) == ["resnet_model", "rpn_model"]
    np.testing.assert_array_equal(fresh.get_layer("fpn_c2p2").kernel.numpy(),
                                  before["fpn_c2p2/kernel"])


def test_layer_count_mismatch_by_order(source, tmp_path):
    layers = [item for item in _keras2_layers(source) if item[0] != "mrcnn_unused_layer"]
    layers = [item for item in layers if item[0] != "fpn_c2p2"]
    path = str(tmp_path / "short.h5")
    _legacy_file(path, layers)
    with pytest.raises(ValueError, match="2 layers with weights.*has 3"):
        load_weights(tiny_model(seed=14), path, by_name=False)


def test_missing_corrupt_and_truncated_files_name_the_path(source, tmp_path):
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_weights(source, missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not an HDF5 file" * 100)
    with pytest.raises(WeightFileError, match="garbage.h5"):
        load_weights(source, str(garbage))
    good = tmp_path / "good.h5"
    save_weights(source, str(good))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(WeightFileError, match="truncated.h5"):
        load_weights(source, str(truncated))
    not_keras = tmp_path / "plain.h5"
    with h5py.File(not_keras, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(WeightFileError, match="plain.h5.*layer_names"):
        load_weights(source, str(not_keras))


def test_save_is_atomic(source, tmp_path, monkeypatch):
    path = str(tmp_path / "ckpt.h5")
    save_weights(source, path)
    original = open(path, "rb").read()
    calls = {"n": 0}
    real = keras.ops.convert_to_numpy

    def failing(x):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("disk full (simulated)")
        return real(x)

    monkeypatch.setattr(weights_io.keras.ops, "convert_to_numpy", failing)
    other = tiny_model(seed=15)
    with pytest.raises(RuntimeError, match="simulated"):
        save_weights(other, path)
    monkeypatch.undo()
    assert open(path, "rb").read() == original
    assert os.listdir(tmp_path) == ["ckpt.h5"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_weights(source, str(tmp_path / "no_dir" / "x.h5"))


def test_long_attributes_are_chunked(tmp_path):
    names = [f"layer_with_a_long_name_{i:05d}" for i in range(3000)]  # > 64 KiB
    with h5py.File(tmp_path / "a.h5", "w") as f:
        weights_io._write_name_attr(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
        assert weights_io._read_name_attr(f, "layer_names") == names


# ------------------------------------------------------------------ ImageNet conversion
def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.split("/")[-1]
        if name == "moving_variance":
            value = rng.uniform(0.5, 1.5, variable.shape)
        elif name == "moving_mean":
            value = rng.normal(0, 0.2, variable.shape)
        elif name == "gamma":
            value = rng.uniform(0.5, 1.0, variable.shape)
        elif name in ("beta", "bias"):
            value = rng.normal(0, 0.1, variable.shape)
        else:
            continue  # keep Keras' kernel initialisation
        variable.assign(value.astype(np.float32))


@pytest.fixture(scope="module")
def resnet50_app():
    app = keras.applications.ResNet50(weights=None, include_top=False,
                                      input_shape=(64, 64, 3))
    _randomise(app, seed=0)
    return app


@pytest.fixture(scope="module")
def our_resnet50():
    return build_resnet_model([None, None, 3], "resnet50", pool_padding="symmetric",
                              bn_epsilon=1.001e-5)


def test_converted_resnet50_reproduces_keras_applications(resnet50_app, our_resnet50):
    """C2..C5 equal keras.applications' stage outputs to rtol 1e-4 and an absolute
    tolerance of 1e-4 x the largest activation of that stage (float32 on CPU, same
    op order; the margin covers summation-order differences only)."""
    ours = our_resnet50
    names = load_resnet_from_keras_applications(ours, resnet50_app, "resnet50")
    assert len(names) == 2 + 2 * (3 * 16 + 4)  # conv1 + 16 blocks x 3 + 4 shortcuts
    stage_outputs = ["conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                     "conv5_block3_out"]
    probe = keras.Model(resnet50_app.input,
                        [resnet50_app.get_layer(n).output for n in stage_outputs])
    image = np.random.default_rng(3).normal(0, 50, size=(2, 64, 64, 3)).astype(np.float32)
    expected = [e.numpy() for e in probe(image)]
    got = [g.numpy() for g in ours(image)]
    for level, (g, e) in enumerate(zip(got, expected), start=2):
        assert g.shape == e.shape
        assert np.abs(e).max() > 0
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * np.abs(e).max(),
                                   err_msg=f"C{level}")


def test_conversion_mapping_and_errors(resnet50_app):
    names = keras_applications_layer_names("resnet101")
    assert names["res4w_branch2c"] == "conv4_block23_3_conv"
    assert names["bn5a_branch1"] == "conv5_block1_0_bn"
    assert names["bn_conv1"] == "conv1_bn"
    converted = convert_resnet_from_keras_applications(resnet50_app, "resnet50")
    np.testing.assert_array_equal(
        converted["bn3b_branch2a"][2],
        resnet50_app.get_layer("conv3_block2_1_bn").moving_mean.numpy())
    assert [w.shape for w in converted["res2a_branch1"]] == [(1, 1, 64, 256), (256,)]
    with pytest.raises(ValueError, match="conv4_block7_1_conv"):
        convert_resnet_from_keras_applications(resnet50_app, "resnet101")
    with pytest.raises(ValueError, match="lacks backbone layers"):
        load_resnet_from_keras_applications(tiny_resnet(), resnet50_app, "resnet50")


def test_rgb_option_reverses_conv1_input_channels():
    model = tiny_resnet()
    kernel, bias = model.get_layer("conv1").get_weights()
    reverse_conv1_input_channels(model)
    flipped, same_bias = model.get_layer("conv1").get_weights()
    np.testing.assert_array_equal(flipped[:, :, 0], kernel[:, :, 2])
    np.testing.assert_array_equal(flipped[:, :, 2], kernel[:, :, 0])
    np.testing.assert_array_equal(same_bias, bias)
    # A BGR image through the original kernel = the RGB image through the flipped one.
    bgr = np.random.default_rng(0).normal(size=(1, 5, 5, 3)).astype(np.float32)
    probe = keras.Model(model.input, model.get_layer("conv1").output)
    out_rgb = probe(bgr[..., ::-1].copy()).numpy()
    model.get_layer("conv1").set_weights([kernel, bias])
    np.testing.assert_allclose(out_rgb, probe(bgr).numpy(), rtol=1e-5, atol=1e-6)


def test_write_imagenet_backbone_offline(resnet50_app, our_resnet50, tmp_path):
    local = str(tmp_path / "resnet50_notop.weights.h5")
    resnet50_app.save_weights(local)
    output = str(tmp_path / "resnet50_converted.h5")
    assert write_imagenet_backbone("resnet50", output, weights=local) == 106
    with h5py.File(output, "r") as f:
        groups = [n.decode() for n in f.attrs["layer_names"]]
        assert "res5c_branch2c" in groups and "resnet_model" not in groups
    # The file loads by name into a Siamese-style nested resnet_model.
    target = our_resnet50
    for variable in target.weights:
        variable.assign(np.full(variable.shape, 0.5, np.float32))
    report = load_weights(target, output, by_name=True)
    assert len(report.loaded) == 106 and report.missing == []
    converted = convert_resnet_from_keras_applications(resnet50_app, "resnet50")
    for name, values in converted.items():
        for got, want in zip(target.get_layer(name).get_weights(), values):
            np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_array_equal(target.get_layer("bn4f_branch2c").moving_variance.numpy(),
                                  resnet50_app.get_layer("conv4_block6_3_bn")
                                  .moving_variance.numpy())
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        write_imagenet_backbone("resnet50", output, weights=str(tmp_path / "missing.h5"))


def test_convert_script_refuses_a_missing_weights_file(tmp_path):
    """scripts/convert_imagenet_weights.py, the command line of write_imagenet_backbone."""
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "scripts", "convert_imagenet_weights.py")
    done = subprocess.run([sys.executable, script, "--output", str(tmp_path / "out.h5"),
                           "--weights", str(tmp_path / "missing.h5")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert f"--weights file not found: {tmp_path / 'missing.h5'}" in done.stderr
    assert not (tmp_path / "out.h5").exists()
