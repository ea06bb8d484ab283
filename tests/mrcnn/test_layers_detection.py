"""Keras layers over the detection ops: config round trips and a tiny functional model."""

import json

import keras
import numpy as np
import pytest

from mrcnn.layers.detection import (AnchorLayer, DetectionLayer, DetectionTargetLayer,
                                    ProposalLayer, PyramidROIAlign)
from mrcnn.ops.anchors import feature_shapes_for, pyramid_anchors_normalised
from mrcnn.ops.boxes import box_overlaps
from mrcnn.ops.detection import refine_detections
from mrcnn.ops.proposals import generate_proposals
from mrcnn.ops.roi_align import pyramid_roi_align

STD = [0.1, 0.1, 0.2, 0.2]
IMAGE = [64, 64, 3]
SCALES, RATIOS, STRIDES = [8, 16, 32, 64], [0.5, 1, 2], [4, 8, 16, 32]
K, G, T, R_POOL = 3, 2, 8, 3


def make_layers():
    return {
        "anchors": AnchorLayer(SCALES, RATIOS, STRIDES, 1, IMAGE, name="anchors"),
        "proposals": ProposalLayer(16, 0.7, 60, STD, name="ROI"),
        "targets": DetectionTargetLayer(T, 0.5, STD, (6, 6), True, seed=3,
                                        name="proposal_targets"),
        "align": PyramidROIAlign(R_POOL, name="roi_align"),
        "detections": DetectionLayer(STD, 0.3, 5, 0.5, name="mrcnn_detection"),
    }


@pytest.mark.parametrize("key", ["anchors", "proposals", "targets", "align", "detections"])
def test_get_config_round_trip(key):
    layer = make_layers()[key]
    config = layer.get_config()
    json.dumps(config)  # plain values only
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_anchor_layer_output_and_custom_feature_shapes():
    layer = AnchorLayer(SCALES, RATIOS, STRIDES, 1, IMAGE)
    out = np.asarray(layer(np.zeros((3, 64, 64, 3), np.float32)))
    expected = pyramid_anchors_normalised(SCALES, RATIOS, feature_shapes_for(IMAGE, STRIDES),
                                          STRIDES, 1, IMAGE)
    assert out.shape == (3, len(expected), 4)
    np.testing.assert_array_equal(out[2], expected)
    small = AnchorLayer([8], [1], [4], 1, IMAGE, feature_shapes=[[2, 3]])
    assert small.anchors.shape == (6, 4)
    assert AnchorLayer.from_config(small.get_config()).anchors.shape == (6, 4)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="rpn_bbox_std_dev"):
        ProposalLayer(10, 0.7, 100, [0.1, 0.1])
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign((7, 7, 7))


def build_model(layers):
    num_anchors = layers["anchors"].anchors.shape[0]
    inputs = {
        "image": keras.Input(IMAGE, name="image"),
        "meta": keras.Input((12 + K,), name="meta"),
        "rpn_probs": keras.Input((num_anchors, 2), name="rpn_probs"),
        "rpn_bbox": keras.Input((num_anchors, 4), name="rpn_bbox"),
        "gt_class_ids": keras.Input((G,), dtype="int32", name="gt_class_ids"),
        "gt_boxes": keras.Input((G, 4), name="gt_boxes"),
        "gt_masks": keras.Input((8, 8, G), dtype="bool", name="gt_masks"),
        "mrcnn_class": keras.Input((T, K), name="mrcnn_class"),
        "mrcnn_bbox": keras.Input((T, K, 4), name="mrcnn_bbox"),
    }
    for level, size in zip((2, 3, 4, 5), (16, 8, 4, 2)):
        inputs[f"P{level}"] = keras.Input((size, size, 4), name=f"P{level}")
    anchors = layers["anchors"](inputs["image"])
    proposals = layers["proposals"]([inputs["rpn_probs"], inputs["rpn_bbox"], anchors])
    rois, class_ids, deltas, masks = layers["targets"](
        [proposals, inputs["gt_class_ids"], inputs["gt_boxes"], inputs["gt_masks"]])
    pooled = layers["align"]([rois, inputs["meta"]] + [inputs[f"P{i}"] for i in (2, 3, 4, 5)])
    detections = layers["detections"]([rois, inputs["mrcnn_class"], inputs["mrcnn_bbox"],
                                       inputs["meta"]])
    outputs = {"anchors": anchors, "proposals": proposals, "rois": rois,
               "class_ids": class_ids, "deltas": deltas, "masks": masks, "pooled": pooled,
               "detections": detections}
    return keras.Model(inputs, outputs, name="tiny_detection")


def make_data(anchors, seed=0):
    rng = np.random.default_rng(seed)
    num_anchors = len(anchors)
    gt_boxes = np.array([[[0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.9, 0.8]],
                         [[0.2, 0.3, 0.6, 0.7], [0, 0, 0, 0]]], np.float32)
    logits = rng.normal(size=(2, num_anchors, 2))
    # anchors on the GT score high, so that some proposals become positive ROIs
    logits[..., 1] += 4.0 * (box_overlaps(anchors, gt_boxes).numpy().max(-1) > 0.5)
    data = {
        "image": rng.normal(size=[2] + IMAGE).astype(np.float32),
        # image 1 has a window that cuts off the bottom quarter of the molded image
        "meta": np.array([[1, 64, 64, 3, 64, 64, 3, 0, 0, 64, 64, 1.0, 1, 1, 1],
                          [2, 48, 64, 3, 64, 64, 3, 0, 0, 48, 64, 1.0, 1, 1, 1]], np.float32),
        "rpn_probs": (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32),
        "rpn_bbox": rng.normal(scale=0.2, size=(2, num_anchors, 4)).astype(np.float32),
        "gt_class_ids": np.array([[1, 2], [2, 0]], np.int32),
        "gt_boxes": gt_boxes,
        "gt_masks": rng.uniform(size=(2, 8, 8, G)) > 0.5,
        "mrcnn_class": rng.dirichlet(np.ones(K) * 0.3, size=(2, T)).astype(np.float32),
        "mrcnn_bbox": rng.normal(size=(2, T, K, 4)).astype(np.float32),
    }
    for level, size in zip((2, 3, 4, 5), (16, 8, 4, 2)):
        data[f"P{level}"] = rng.normal(size=(2, size, size, 4)).astype(np.float32)
    return data


def check_model_outputs(model, data, anchors, graph=False):
    raw = model.predict(data, batch_size=2, verbose=0) if graph else model(data)
    out = {k: np.asarray(v) for k, v in raw.items()}
    assert out["anchors"].shape == (2, len(anchors), 4)
    np.testing.assert_array_equal(out["anchors"][1], anchors)
    np.testing.assert_allclose(out["proposals"], generate_proposals(
        data["rpn_probs"], data["rpn_bbox"], anchors, 16, 0.7, 60, STD).numpy(), atol=1e-6)
    rois = out["rois"]
    assert out["class_ids"].dtype == np.int32 and out["masks"].shape == (2, T, 6, 6)
    positives = out["class_ids"] > 0
    assert positives.any()
    iou = box_overlaps(rois, data["gt_boxes"]).numpy()
    assert (iou.max(-1)[positives] >= 0.5).all()
    maps = [data[f"P{i}"] for i in (2, 3, 4, 5)]
    np.testing.assert_allclose(out["pooled"], pyramid_roi_align(rois, maps, R_POOL, [64, 64]),
                               atol=1e-6)
    window = np.array([[0, 0, 1, 1], [0, 0, 47 / 63, 1]], np.float32)
    expected = refine_detections(rois, data["mrcnn_class"], data["mrcnn_bbox"], window, STD,
                                 0.3, 5, 0.5).numpy()
    np.testing.assert_allclose(out["detections"], expected, atol=1e-6)
    assert out["detections"][1, :, 2].max() <= 47 / 63 + 1e-6
    assert (out["detections"][..., 4] > 0).any()
    return out


def test_layers_in_functional_model_and_model_config_round_trip():
    layers = make_layers()
    model = build_model(layers)
    assert model.output["class_ids"].dtype == "int32"
    assert tuple(model.output["pooled"].shape) == (None, T, R_POOL, R_POOL, 4)
    assert tuple(model.output["detections"].shape) == (None, 5, 6)
    anchors = layers["anchors"].anchors
    data = make_data(anchors)
    check_model_outputs(model, data, anchors)
    check_model_outputs(model, data, anchors, graph=True)

    clone = keras.Model.from_config(model.get_config())
    check_model_outputs(clone, data, anchors)
    from_json = keras.models.model_from_json(model.to_json())
    check_model_outputs(from_json, data, anchors)


def test_layers_stay_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layers = make_layers()
        assert all(layer.compute_dtype == "float32" for layer in layers.values())
        boxes = np.array([[[0.1, 0.1, 0.6, 0.6]]], np.float32)
        meta = np.array([[1, 64, 64, 3, 64, 64, 3, 0, 0, 64, 64, 1.0, 1, 1, 1]], np.float32)
        maps = [np.ones((1, s, s, 2), np.float16) for s in (16, 8, 4, 2)]
        pooled = layers["align"]([boxes, meta] + maps)
        assert pooled.dtype == "float32"
        np.testing.assert_allclose(np.asarray(pooled), 1.0)
    finally:
        keras.config.set_dtype_policy(previous)
