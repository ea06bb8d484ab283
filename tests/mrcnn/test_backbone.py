"""ResNet backbone, FPN and frozen BatchNorm (mrcnn.layers.backbone).

Shape shorthand: B batch, H x W image, C channels. Images are tiny (64 px) to keep
the file fast on CPU.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from mrcnn.layers.backbone import (BatchNorm, build_fpn_model,  # noqa: E402
                                   build_resnet_model, fpn_graph, resnet_graph)


def expected_resnet_names(blocks):
    """SPEC section 6 names of the layers with weights, in build order."""
    names = ["conv1", "bn_conv1"]
    for stage, count in zip((2, 3, 4, 5), blocks):
        for i in range(count):
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            for branch in ("2a", "2b", "2c") + (("1",) if i == 0 else ()):
                names += [f"res{stage}{letter}_branch{branch}", f"bn{stage}{letter}_branch{branch}"]
    return names


def weighted_layer_names(model):
    return [layer.name for layer in model.layers if layer.weights]


@pytest.fixture(scope="module")
def resnet50():
    return build_resnet_model([None, None, 3], "resnet50")


@pytest.mark.parametrize("architecture, blocks", [("resnet50", (3, 4, 6, 3)),
                                                  ("resnet101", (3, 4, 23, 3))])
def test_resnet_layer_names_follow_spec(architecture, blocks, resnet50):
    model = resnet50 if architecture == "resnet50" else build_resnet_model(
        [None, None, 3], architecture)
    names = weighted_layer_names(model)
    assert sorted(names) == sorted(expected_resnet_names(blocks))
    for stage, count in zip((2, 3, 4, 5), blocks):
        block_letters = {n[4] for n in names if n.startswith(f"res{stage}")}
        assert len(block_letters) == count
    if architecture == "resnet101":
        assert "res4w_branch2c" in names and "res4x_branch2a" not in names
    # Every conv has a bias; conv1 is 7x7/2 on 3 channels.
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.use_bias, layer.name
    assert model.get_layer("conv1").kernel.shape == (7, 7, 3, 64)
    assert model.get_layer("conv1").strides == (2, 2)


def test_stride_is_in_first_1x1_conv_of_a_stage(resnet50):
    get = resnet50.get_layer
    assert get("res2a_branch2a").strides == (1, 1)
    for stage in (3, 4, 5):
        assert get(f"res{stage}a_branch2a").strides == (2, 2)
        assert get(f"res{stage}a_branch1").strides == (2, 2)
        assert get(f"res{stage}a_branch2b").strides == (1, 1)
        assert get(f"res{stage}b_branch2a").strides == (1, 1)


def test_c2_to_c5_strides_and_channels(resnet50):
    image = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    outputs = resnet50(image, training=False)
    shapes = [tuple(o.shape) for o in outputs]
    assert shapes == [(1, 16, 24, 256), (1, 8, 12, 512), (1, 4, 6, 1024), (1, 2, 3, 2048)]


@pytest.mark.parametrize("pool_padding", ["same", "symmetric"])
def test_stem_pooling_layouts(pool_padding):
    image = keras.Input([64, 64, 3])
    c1, c2, c3, c4, c5 = resnet_graph(image, "resnet50", stage5=False,
                                      pool_padding=pool_padding)
    assert c5 is None
    assert tuple(c1.shape) == (None, 16, 16, 64)
    assert tuple(c4.shape) == (None, 4, 4, 1024)
    model = keras.Model(image, c1)
    has_pad = any(layer.name == "pool1_pad" for layer in model.layers)
    assert has_pad == (pool_padding == "symmetric")
    # Reference max-pool over the valid cells of each 3x3/2 window: "same" windows
    # start at rows 0, 2, 4, ... (one padded row at the bottom), "symmetric" ones at
    # -1, 1, 3, ... (one padded row on each side). Inputs are ReLU outputs (>= 0), so
    # zero padding never wins.
    probe = keras.Model(model.get_layer("conv1_relu").output, c1)
    x = np.abs(np.random.default_rng(4).normal(size=(1, 32, 32, 2))).astype(np.float32)
    x = np.concatenate([x, np.zeros((1, 32, 32, 62), np.float32)], axis=-1)
    start = 0 if pool_padding == "same" else -1
    expected = np.zeros((1, 16, 16, 64), np.float32)
    for i in range(16):
        for j in range(16):
            r0, c0 = max(2 * i + start, 0), max(2 * j + start, 0)
            expected[0, i, j] = x[0, r0:2 * i + start + 3, c0:2 * j + start + 3].max(axis=(0, 1))
    np.testing.assert_array_equal(probe(x).numpy(), expected)


def test_bad_architecture_and_padding_names_the_argument():
    image = keras.Input([64, 64, 3])
    with pytest.raises(ValueError, match="architecture"):
        resnet_graph(image, "resnet34")
    with pytest.raises(ValueError, match="pool_padding"):
        resnet_graph(image, "resnet50", pool_padding="reflect")


# ------------------------------------------------------------------ BatchNorm
def _bn_with_stats(train_bn, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    layer = BatchNorm(train_bn=train_bn, epsilon=1e-3)
    layer.build((None, 4, 4, channels))
    gamma = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    beta = rng.normal(size=channels).astype(np.float32)
    mean = rng.normal(size=channels).astype(np.float32)
    var = rng.uniform(0.5, 3.0, channels).astype(np.float32)
    layer.set_weights([gamma, beta, mean, var])
    return layer, (gamma, beta, mean, var)


def test_frozen_batchnorm_ignores_training_flag_and_keeps_stats():
    layer, (gamma, beta, mean, var) = _bn_with_stats(train_bn=False)
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 4, 4, 3)).astype(np.float32)
    out_train = layer(x, training=True).numpy()
    out_infer = layer(x, training=False).numpy()
    np.testing.assert_array_equal(out_train, out_infer)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    np.testing.assert_allclose(out_train, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), var)
    trainable = {v.name for v in layer.trainable_weights}
    assert trainable == {"gamma", "beta"}


def test_frozen_batchnorm_trains_gamma_beta_only():
    layer, (_, _, mean, var) = _bn_with_stats(train_bn=False)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 4, 4, 3)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), var)


def test_trainable_batchnorm_uses_batch_statistics():
    # The contrast case: with train_bn=True a training call normalises with the batch
    # and updates the moving statistics.
    layer, (_, _, mean, _) = _bn_with_stats(train_bn=True)
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(2, 4, 4, 3)).astype(np.float32)
    out_train = layer(x, training=True).numpy()
    out_infer = layer(x, training=False).numpy()
    assert np.abs(out_train - out_infer).max() > 1e-2
    assert np.abs(layer.moving_mean.numpy() - mean).max() > 1e-3


def test_batchnorm_config_round_trip():
    layer = BatchNorm(train_bn=False, epsilon=1.001e-5, name="bn_x")
    clone = BatchNorm.from_config(layer.get_config())
    assert clone.train_bn is False and clone.epsilon == pytest.approx(1.001e-5)
    assert clone.name == "bn_x"
    assert BatchNorm.from_config(BatchNorm(train_bn=True).get_config()).train_bn is True


# ------------------------------------------------------------------ FPN
def _conv1x1(x, layer):
    kernel, bias = layer.get_weights()
    return np.einsum("bhwc,cd->bhwd", x, kernel[0, 0]) + bias


def _random_pyramid_inputs(channels, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(2, size // 2 ** i, size // 2 ** i, c)).astype(np.float32)
            for i, c in enumerate(channels)]


@pytest.mark.parametrize("relu", [False, True])
def test_fpn_top_down_path_against_numpy(relu):
    channels = (4, 6, 8, 10)
    fpn = build_fpn_model(channels, pyramid_size=5, relu=relu)
    c2, c3, c4, c5 = _random_pyramid_inputs(channels)
    act = (lambda t: np.maximum(t, 0.0)) if relu else (lambda t: t)
    p5 = act(_conv1x1(c5, fpn.get_layer("fpn_c5p5")))
    up = np.repeat(np.repeat(p5, 2, axis=1), 2, axis=2)
    p4 = up + act(_conv1x1(c4, fpn.get_layer("fpn_c4p4")))
    probe = keras.Model(fpn.inputs, fpn.get_layer("fpn_p4add").output)
    np.testing.assert_allclose(probe([c2, c3, c4, c5]), p4, rtol=1e-5, atol=1e-5)


def test_fpn_relu_outputs_shapes_and_p6():
    channels = (4, 6, 8, 10)
    inputs = _random_pyramid_inputs(channels, seed=3)
    outs_relu = [o.numpy() for o in build_fpn_model(channels, 7, relu=True)(inputs)]
    outs_lin = [o.numpy() for o in build_fpn_model(channels, 7, relu=False)(inputs)]
    assert [o.shape for o in outs_relu] == [(2, 16, 16, 7), (2, 8, 8, 7), (2, 4, 4, 7),
                                             (2, 2, 2, 7), (2, 1, 1, 7)]
    assert all((o >= 0).all() for o in outs_relu)
    assert any((o < 0).any() for o in outs_lin)  # the test above could fail
    for outs in (outs_relu, outs_lin):
        np.testing.assert_array_equal(outs[4], outs[3][:, ::2, ::2])


def test_fpn_layer_names_and_dynamic_shapes():
    fpn = build_fpn_model()
    assert sorted(weighted_layer_names(fpn)) == sorted(
        ["fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2", "fpn_p2", "fpn_p3", "fpn_p4",
         "fpn_p5"])
    names = {layer.name for layer in fpn.layers}
    assert {"fpn_p5upsampled", "fpn_p4add", "fpn_p3add", "fpn_p2add", "fpn_p6"} <= names
    assert fpn.get_layer("fpn_p2").kernel.shape == (3, 3, 256, 256)
    assert all(tuple(o.shape) == (None, None, None, 256) for o in fpn.outputs)


def test_fpn_graph_on_resnet_tensors():
    image = keras.Input([64, 64, 3])
    _, c2, c3, c4, c5 = resnet_graph(image, "resnet50")
    pyramid = fpn_graph(c2, c3, c4, c5, pyramid_size=32)
    assert [tuple(p.shape) for p in pyramid] == [(None, 16, 16, 32), (None, 8, 8, 32),
                                                 (None, 4, 4, 32), (None, 2, 2, 32),
                                                 (None, 1, 1, 32)]
