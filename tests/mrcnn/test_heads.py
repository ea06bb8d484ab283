"""RPN, classifier and mask heads (mrcnn.layers.heads).

Shape shorthand: B batch, R ROIs per image, K classes, A anchors per cell, P pool
size, C channels. Channel counts are kept small for speed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mrcnn.layers.heads import (FoldROIs, RepeatAxis, UnfoldROIs,  # noqa: E402
                                build_fpn_mask_graph, build_rpn_model,
                                fpn_classifier_graph)


def rng_array(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ------------------------------------------------------------------ RPN
@pytest.mark.parametrize("anchor_stride, expected_cells", [(1, 5 * 6), (2, 3 * 3)])
def test_rpn_shapes_and_anchor_order(anchor_stride, expected_cells):
    a = 3
    rpn = build_rpn_model(anchor_stride, a, depth=8)
    assert rpn.name == "rpn_model"
    assert sorted(layer.name for layer in rpn.layers if layer.weights) == [
        "rpn_bbox_pred", "rpn_class_raw", "rpn_conv_shared"]
    assert rpn.get_layer("rpn_class_raw").kernel.shape == (1, 1, 512, 2 * a)
    assert rpn.get_layer("rpn_bbox_pred").kernel.shape == (1, 1, 512, 4 * a)
    assert [tuple(o.shape) for o in rpn.outputs] == [(None, None, 2), (None, None, 2),
                                                     (None, None, 4)]
    x = rng_array((2, 5, 6, 8))
    logits, probs, deltas = [o.numpy() for o in rpn(x)]
    n = expected_cells * a
    assert logits.shape == (2, n, 2) and probs.shape == (2, n, 2) and deltas.shape == (2, n, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    expected_probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-5, atol=1e-6)

    # Anchor index (y * w + x) * A + a must read conv channel a * 2 + class (deltas:
    # a * 4 + coordinate): row-major over cells, then the anchors of a cell.
    raw = keras.Model(rpn.input, [rpn.get_layer("rpn_class_raw").output,
                                   rpn.get_layer("rpn_bbox_pred").output])
    raw_logits, raw_deltas = [o.numpy() for o in raw(x)]
    h, w = raw_logits.shape[1:3]
    for b in range(2):
        for y in range(h):
            for xx in range(w):
                for k in range(a):
                    index = (y * w + xx) * a + k
                    np.testing.assert_allclose(logits[b, index],
                                               raw_logits[b, y, xx, 2 * k:2 * k + 2], rtol=1e-6)
                    np.testing.assert_allclose(deltas[b, index],
                                               raw_deltas[b, y, xx, 4 * k:4 * k + 4], rtol=1e-6)


# ------------------------------------------------------------------ classifier
def classifier(num_classes=3, class_agnostic_bbox=False, pool=7, channels=6, fc=16):
    pooled = keras.Input([None, pool, pool, channels])
    outputs = fpn_classifier_graph(pooled, num_classes, fc_layers_size=fc,
                                   class_agnostic_bbox=class_agnostic_bbox)
    return keras.Model(pooled, list(outputs))


def test_classifier_layers_match_spec_names_and_shapes():
    model = classifier(num_classes=3)
    assert sorted(layer.name for layer in model.layers if layer.weights) == sorted([
        "mrcnn_class_conv1", "mrcnn_class_bn1", "mrcnn_class_conv2", "mrcnn_class_bn2",
        "mrcnn_class_logits", "mrcnn_bbox_fc"])
    # Matterport's TimeDistributed weight shapes.
    assert model.get_layer("mrcnn_class_conv1").kernel.shape == (7, 7, 6, 16)
    assert model.get_layer("mrcnn_class_conv2").kernel.shape == (1, 1, 16, 16)
    assert model.get_layer("mrcnn_class_logits").kernel.shape == (16, 3)
    assert model.get_layer("mrcnn_bbox_fc").kernel.shape == (16, 12)
    assert "mrcnn_bbox" in {layer.name for layer in model.layers}
    assert [tuple(o.shape) for o in model.outputs] == [(None, None, 3), (None, None, 3),
                                                       (None, None, 3, 4)]


def test_classifier_rois_are_independent_and_in_order():
    model = classifier(num_classes=3)
    pooled = rng_array((2, 5, 7, 7, 6), seed=1)
    logits, probs, bbox = [o.numpy() for o in model(pooled, training=True)]
    assert logits.shape == (2, 5, 3) and probs.shape == (2, 5, 3) and bbox.shape == (2, 5, 3, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # Folding B and R into one batch must not mix ROIs: each ROI alone gives the
    # same outputs (BatchNorm is frozen, so batch composition cannot matter).
    for b, r in [(0, 0), (1, 3), (1, 4)]:
        single = [o.numpy() for o in model(pooled[b:b + 1, r:r + 1])]
        np.testing.assert_allclose(single[0][0, 0], logits[b, r], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(single[2][0, 0], bbox[b, r], rtol=1e-4, atol=1e-5)
    # Class k's box is Dense output columns 4k..4k+3.
    probe = keras.Model(model.input, model.get_layer("mrcnn_bbox_fc").output)
    flat = probe(pooled).numpy()  # [B*R, 4K]
    np.testing.assert_allclose(bbox.reshape(10, 12), flat, rtol=1e-5, atol=1e-6)


def test_class_agnostic_box_is_repeated_over_classes():
    model = classifier(num_classes=2, class_agnostic_bbox=True)
    assert model.get_layer("mrcnn_bbox_fc").kernel.shape == (16, 4)
    _, _, bbox = [o.numpy() for o in model(rng_array((1, 4, 7, 7, 6), seed=2))]
    assert bbox.shape == (1, 4, 2, 4)
    np.testing.assert_array_equal(bbox[:, :, 0], bbox[:, :, 1])
    assert np.abs(bbox).max() > 0


def test_heads_accept_zero_rois():
    model = classifier(num_classes=3)
    logits, probs, bbox = [o.numpy() for o in model(np.zeros((2, 0, 7, 7, 6), np.float32))]
    assert logits.shape == (2, 0, 3) and bbox.shape == (2, 0, 3, 4)


def test_classifier_rejects_non_square_pool():
    with pytest.raises(ValueError, match="square"):
        fpn_classifier_graph(keras.Input([None, 7, 5, 4]), 3)


# ------------------------------------------------------------------ mask
@pytest.mark.parametrize("class_agnostic", [False, True])
def test_mask_head_shapes_names_and_range(class_agnostic):
    pooled = keras.Input([None, 6, 6, 4])
    masks = build_fpn_mask_graph(pooled, 3, class_agnostic=class_agnostic)
    model = keras.Model(pooled, masks)
    assert tuple(masks.shape) == (None, None, 12, 12, 3)
    expected = [f"mrcnn_mask_conv{i}" for i in range(1, 5)] + [
        f"mrcnn_mask_bn{i}" for i in range(1, 5)] + ["mrcnn_mask_deconv", "mrcnn_mask"]
    assert sorted(layer.name for layer in model.layers if layer.weights) == sorted(expected)
    assert model.get_layer("mrcnn_mask_conv1").kernel.shape == (3, 3, 4, 256)
    assert model.get_layer("mrcnn_mask_deconv").kernel.shape == (2, 2, 256, 256)
    assert model.get_layer("mrcnn_mask_deconv").strides == (2, 2)
    out_channels = 1 if class_agnostic else 3
    assert model.get_layer("mrcnn_mask").kernel.shape == (1, 1, 256, out_channels)

    x = rng_array((2, 3, 6, 6, 4), seed=5)
    out = model(x).numpy()
    assert out.shape == (2, 3, 12, 12, 3) and out.dtype == np.float32
    assert (out > 0).all() and (out < 1).all()
    if class_agnostic:
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
    else:
        assert np.abs(out[..., 0] - out[..., 2]).max() > 1e-4
    single = model(x[1:2, 2:3]).numpy()
    np.testing.assert_allclose(single[0, 0], out[1, 2], rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ helper layers
def test_fold_unfold_round_trip_and_configs():
    x = rng_array((2, 3, 4, 5))
    folded = FoldROIs()(x)
    assert tuple(folded.shape) == (6, 4, 5)
    np.testing.assert_array_equal(folded.numpy()[4], x[1, 1])
    np.testing.assert_array_equal(UnfoldROIs()([folded, x]).numpy(), x)
    repeat = RepeatAxis.from_config(RepeatAxis(4, axis=2, name="rep").get_config())
    assert (repeat.count, repeat.axis, repeat.name) == (4, 2, "rep")
    out = repeat(x[:, :, :1]).numpy()
    assert out.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(out[:, :, 3], x[:, :, 0])


def test_rpn_model_serialises():
    rpn = build_rpn_model(1, 3, depth=4)
    clone = keras.Model.from_config(rpn.get_config())
    clone.set_weights(rpn.get_weights())
    x = rng_array((1, 3, 3, 4), seed=7)
    for a, b in zip(rpn(x), clone(x)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
