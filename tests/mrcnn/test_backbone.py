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

from mrcnn.config import ConfigError  # noqa: E402
from mrcnn.layers.backbone import (BatchNorm, backbone_channels,  # noqa: E402
                                   build_fpn_model, build_resnet_model, fpn_graph,
                                   resnet_graph)
from tests.configs import TinyConfig  # noqa: E402


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
        resnet_graph(image, "resnet152")
    with pytest.raises(ValueError, match="architecture.*'resnet152'"):
        backbone_channels("resnet152")
    with pytest.raises(ValueError, match="pool_padding"):
        resnet_graph(image, "resnet50", pool_padding="reflect")



# ------------------------------------------------------------------ basic-block ResNets
def expected_basic_resnet_names(blocks):
    """Layers with weights of a basic-block ResNet: two 3x3 convs per block and a 1x1
    projection in the first block of stages 3-5 only (res2a keeps its shape)."""
    names = ["conv1", "bn_conv1"]
    for stage, count in zip((2, 3, 4, 5), blocks):
        for i in range(count):
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            for branch in ("2a", "2b") + (("1",) if i == 0 and stage > 2 else ()):
                names += [f"res{stage}{letter}_branch{branch}", f"bn{stage}{letter}_branch{branch}"]
    return names


@pytest.fixture(scope="module")
def basic_resnets():
    return {name: build_resnet_model([None, None, 3], name) for name in ("resnet18", "resnet34")}


@pytest.fixture(scope="module")
def resnet18(basic_resnets):
    return basic_resnets["resnet18"]


@pytest.mark.parametrize("architecture, blocks, layer_count, trainable_params", [
    # Trainable parameters = torchvision's resnet18/34 without the fc layer
    # (11,689,512 - 513,000 and 21,797,672 - 513,000; bias-free convs, BN gamma+beta)
    # plus one conv bias per BN channel here: 4,800 BN channels in resnet18 and
    # 8,512 in resnet34.
    ("resnet18", (2, 2, 2, 2), 2 + 4 * 8 + 2 * 3, 11_176_512 + 4_800),
    ("resnet34", (3, 4, 6, 3), 2 + 4 * 16 + 2 * 3, 21_284_672 + 8_512),
])
def test_basic_resnet_layer_names_and_parameter_count(architecture, blocks, layer_count,
                                                      trainable_params, basic_resnets):
    model = basic_resnets[architecture]
    names = weighted_layer_names(model)
    assert len(names) == layer_count
    assert sorted(names) == sorted(expected_basic_resnet_names(blocks))
    assert "res2a_branch1" not in names and "res2a_branch2c" not in names
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == trainable_params
    # Non-trainable: moving mean and variance of every BN channel.
    bn_channels = sum(layer.gamma.shape[0] for layer in model.layers
                      if isinstance(layer, BatchNorm))
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 2 * bn_channels


def test_basic_resnet_strides_and_kernels(resnet18):
    get = resnet18.get_layer
    assert get("conv1").kernel.shape == (7, 7, 3, 64) and get("conv1").strides == (2, 2)
    assert get("res2a_branch2a").strides == (1, 1)
    assert get("res2a_branch2a").kernel.shape == (3, 3, 64, 64)
    for stage, (c_in, c_out) in zip((3, 4, 5), ((64, 128), (128, 256), (256, 512))):
        assert get(f"res{stage}a_branch2a").strides == (2, 2)
        assert get(f"res{stage}a_branch2a").kernel.shape == (3, 3, c_in, c_out)
        assert get(f"res{stage}a_branch2b").strides == (1, 1)
        assert get(f"res{stage}a_branch2b").kernel.shape == (3, 3, c_out, c_out)
        assert get(f"res{stage}a_branch1").strides == (2, 2)
        assert get(f"res{stage}a_branch1").kernel.shape == (1, 1, c_in, c_out)
        assert get(f"res{stage}b_branch2a").strides == (1, 1)


@pytest.mark.parametrize("architecture", ["resnet18", "resnet34"])
def test_basic_resnet_c2_to_c5_strides_and_channels(architecture, basic_resnets):
    model = basic_resnets[architecture]
    image = np.random.default_rng(0).normal(size=(1, 64, 96, 3)).astype(np.float32)
    shapes = [tuple(o.shape) for o in model(image, training=False)]
    assert shapes == [(1, 16, 24, 64), (1, 8, 12, 128), (1, 4, 6, 256), (1, 2, 3, 512)]
    assert backbone_channels(architecture) == (64, 128, 256, 512)
    assert [s[-1] for s in shapes] == list(backbone_channels(architecture))


@pytest.mark.parametrize("architecture", ["resnet18", "resnet50"])
def test_width_multiplier_scales_every_conv_and_keeps_layer_names(architecture, basic_resnets,
                                                                  resnet50):
    full = basic_resnets["resnet18"] if architecture == "resnet18" else resnet50
    half = build_resnet_model([None, None, 3], architecture, width=0.5, name="half")
    assert weighted_layer_names(half) == weighted_layer_names(full)
    for layer in full.layers:
        if isinstance(layer, keras.layers.Conv2D):
            k_full = layer.kernel.shape
            k_half = half.get_layer(layer.name).kernel.shape
            c_in = 3 if layer.name == "conv1" else k_full[2] // 2
            assert tuple(k_half) == (k_full[0], k_full[1], c_in, k_full[3] // 2), layer.name
    channels = tuple(c // 2 for c in backbone_channels(architecture))
    assert backbone_channels(architecture, width=0.5) == channels
    image = np.zeros((1, 64, 64, 3), np.float32)
    assert tuple(o.shape[-1] for o in half(image, training=False)) == channels
    # Conv kernels dominate: a quarter of the weights (biases and BN halve).
    count = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)  # noqa: E731
    assert 0.24 < count(half) / count(full) < 0.27
    with pytest.raises(ValueError, match="width"):
        build_resnet_model([None, None, 3], architecture, width=0)


def test_backbone_width_reaches_the_model_and_is_validated(tmp_path):
    from mrcnn.model import MaskRCNN
    narrow = type("Narrow", (TinyResnet18Config,), {"BACKBONE_WIDTH": 0.25})()
    model = MaskRCNN("inference", narrow, str(tmp_path))
    assert model.keras_model.get_layer("conv1").kernel.shape == (7, 7, 3, 16)
    assert model.keras_model.get_layer("fpn_c5p5").kernel.shape == (1, 1, 128, 16)
    for bad in (0, -0.5, "half", True, 8):
        with pytest.raises(ConfigError, match="BACKBONE_WIDTH"):
            type("Bad", (TinyResnet18Config,), {"BACKBONE_WIDTH": bad})()


def test_backbone_channels_of_bottleneck_resnets_match_the_graph(resnet50):
    for architecture in ("resnet50", "resnet101"):
        assert backbone_channels(architecture) == (256, 512, 1024, 2048)
    assert [int(o.shape[-1]) for o in resnet50.outputs] == list(backbone_channels("resnet50"))


def _conv_same_reference(x, kernel, bias, stride):
    """Naive 'same' convolution [B,H,W,Ci] -> [B,ceil(H/s),ceil(W/s),Co] with TF's
    padding split (the extra row/column goes to the bottom/right)."""
    k = kernel.shape[0]
    b, h, w, _ = x.shape
    out_h, out_w = -(-h // stride), -(-w // stride)
    pad_h = max((out_h - 1) * stride + k - h, 0)
    pad_w = max((out_w - 1) * stride + k - w, 0)
    xp = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2),
                    (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((b, out_h, out_w, kernel.shape[-1]), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            window = xp[:, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, i, j] = np.einsum("bhwc,hwcd->bd", window, kernel)
    return out + bias


def _bn_reference(x, layer):
    gamma, beta, mean, var = layer.get_weights()
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def _randomise_batchnorms(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.5, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.5, 2.0, c)])


@pytest.mark.parametrize("block, stride, projection", [("res3a", 2, True),
                                                       ("res3b", 1, False)])
def test_basic_block_against_numpy(block, stride, projection):
    image = keras.Input([32, 32, 3])
    _, _, c3, _, _ = resnet_graph(image, "resnet18", stage5=False)
    model = keras.Model(image, c3)
    _randomise_batchnorms(model, seed=5)
    previous = "res2b_out" if block == "res3a" else "res3a_out"
    probe = keras.Model(model.get_layer(previous).output, model.get_layer(f"{block}_out").output)
    channels = 64 if block == "res3a" else 128
    size = 8 if block == "res3a" else 4
    x = np.abs(np.random.default_rng(6).normal(size=(2, size, size, channels)))
    get = model.get_layer
    kernel, bias = get(f"{block}_branch2a").get_weights()
    y = np.maximum(_bn_reference(_conv_same_reference(x, kernel, bias, stride),
                                 get(f"bn{block[3:]}_branch2a")), 0)
    kernel, bias = get(f"{block}_branch2b").get_weights()
    y = _bn_reference(_conv_same_reference(y, kernel, bias, 1), get(f"bn{block[3:]}_branch2b"))
    if projection:
        kernel, bias = get(f"{block}_branch1").get_weights()
        shortcut = _bn_reference(_conv_same_reference(x, kernel, bias, stride),
                                 get(f"bn{block[3:]}_branch1"))
    else:
        shortcut = x
        assert all(layer.name != f"{block}_branch1" for layer in model.layers)
    expected = np.maximum(y + shortcut, 0)
    got = probe(x.astype(np.float32), training=True).numpy()
    assert got.shape == (2, size // stride, size // stride, 128)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_fpn_on_resnet18_takes_its_channels(resnet18):
    fpn = build_fpn_model(backbone_channels("resnet18"), pyramid_size=8, relu=True)
    assert fpn.get_layer("fpn_c2p2").kernel.shape == (1, 1, 64, 8)
    assert fpn.get_layer("fpn_c5p5").kernel.shape == (1, 1, 512, 8)
    image = np.random.default_rng(1).normal(size=(1, 64, 64, 3)).astype(np.float32)
    pyramid = fpn(resnet18(image, training=False))
    assert [tuple(p.shape) for p in pyramid] == [(1, 16, 16, 8), (1, 8, 8, 8), (1, 4, 4, 8),
                                                 (1, 2, 2, 8), (1, 1, 1, 8)]
    with pytest.raises(ValueError):
        build_fpn_model(pyramid_size=8)(resnet18(image, training=False))


class TinyResnet18Config(TinyConfig):
    """The shared tiny config on a ResNet-18, narrower still, one class."""

    NAME = "tiny_resnet18"
    BACKBONE = "resnet18"
    NUM_CLASSES = 2
    IMAGES_PER_GPU = 1
    PRE_NMS_LIMIT = 200
    POST_NMS_ROIS_INFERENCE = 20
    TOP_DOWN_PYRAMID_SIZE = 16
    FPN_CLASSIF_FC_LAYERS_SIZE = 16
    MASK_HEAD_CONV_SIZE = 8
    DETECTION_MAX_INSTANCES = 5


def test_config_accepts_basic_resnets_and_rejects_unknown_names():
    assert TinyResnet18Config().BACKBONE == "resnet18"
    assert type("R34", (TinyResnet18Config,), {"BACKBONE": "resnet34"})().BACKBONE == "resnet34"
    with pytest.raises(ConfigError, match="BACKBONE.*resnet18"):
        type("Bad", (TinyResnet18Config,), {"BACKBONE": "resnet152"})()


def test_tiny_maskrcnn_with_resnet18_detects(tmp_path):
    from mrcnn.model import MaskRCNN
    keras.utils.set_random_seed(0)
    model = MaskRCNN("inference", TinyResnet18Config(), str(tmp_path))
    layer_names = {layer.name for layer in model.keras_model.layers}
    assert {"res5b_branch2b", "res5a_branch1"} <= layer_names
    assert not {"res2a_branch1", "res2a_branch2c", "res5c_branch2a"} & layer_names
    assert model.keras_model.get_layer("fpn_c2p2").kernel.shape == (1, 1, 64, 16)
    image = np.random.default_rng(2).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    results = model.detect([image])
    assert len(results) == 1
    r = results[0]
    assert set(r) == {"rois", "class_ids", "scores", "masks"}
    n = len(r["class_ids"])
    assert 1 <= n <= 5
    assert r["rois"].shape == (n, 4) and r["rois"].dtype == np.int32
    assert r["class_ids"].dtype == np.int32 and set(r["class_ids"].tolist()) <= {1}
    assert r["scores"].shape == (n,) and r["scores"].dtype == np.float32
    assert ((r["scores"] >= 0) & (r["scores"] <= 1)).all()
    assert r["masks"].shape == (48, 64, n) and r["masks"].dtype == bool
    # Boxes are pixels of the original 48 x 64 image.
    assert (r["rois"][:, [0, 2]] >= 0).all() and (r["rois"][:, [0, 2]] <= 48).all()
    assert (r["rois"][:, [1, 3]] >= 0).all() and (r["rois"][:, [1, 3]] <= 64).all()


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
