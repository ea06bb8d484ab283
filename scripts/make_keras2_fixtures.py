#!/usr/bin/env python
"""Write the Keras 2 weight-file fixtures of tests/fixtures/keras2 with real Keras 2.

Needs the Keras 2 API: the ``tf-keras`` package (with its TensorFlow), in its own
environment, never in the project's (which runs Keras 3)::

    python3.11 -m venv /tmp/venv-tfkeras
    /tmp/venv-tfkeras/bin/pip install "tensorflow==2.21.*" "tf-keras==2.21.*" h5py
    /tmp/venv-tfkeras/bin/python scripts/make_keras2_fixtures.py [--output-dir DIR]

It builds, with ``tf_keras`` layers in TF1 graph mode (how Keras 2.1.6 ran under
the original Siamese Mask R-CNN), tiny models with the original layer names and
shapes (ResNet-50 at 1/32 of its width, 8-channel FPN, matching, RPN and heads) and
writes them with Keras 2's own writers:

* ``matterport_mask_rcnn.h5``: ``save_weights`` of a Matterport-layout Mask R-CNN
  (3 classes): ResNet and FPN layers at top level, a nested ``rpn_model``,
  TimeDistributed heads;
* ``original_siamese_mrcnn.h5``: ``save_weights`` of an original-Siamese-layout
  model: nested ``resnet_model`` and ``fpn_model``, ``fpn_distance_P2..P6``, nested
  ``rpn_model``, 2-class heads. Some backbone layers were created after a throwaway
  copy of their names, so TensorFlow's graph uniquified their variable scopes:
  their weights are stored as ``conv1_1/kernel:0``, as in files written by a
  process that had built the network before;
* ``imagenet_backbone.h5``: ``model.save`` (a whole-model file, weights under
  ``model_weights``) of an ImageNet classifier: a nested ``resnet_model`` then
  pooling and a 5-way ``fc`` layer, the layout of the original's imagenet-687 /
  imagenet-771 backbone files.

Every weight's value is :func:`fixture_value` of ``seed`` and its canonical name
``"<layer>/<variable>"`` (no scope suffix), so a test recomputes what the file must
hold without TensorFlow. The files are shipped gzip-compressed (``NAME.h5.gz``,
about a quarter of the size: most of a small HDF5 file is per-object overhead);
decompressed they are byte for byte what Keras 2 wrote (``manifest.json`` records
their SHA-256, the seed, the versions and each file's layout). The fixture configuration is :data:`FIXTURE_CONFIG` (what a model of
this project needs to match the files: see tests/mrcnn/test_keras2_files.py).
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import zlib

import numpy as np

SEED = 20181128
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPO, "tests", "fixtures", "keras2")

# The configuration values the fixtures were built for (Config attribute names).
FIXTURE_CONFIG = {"BACKBONE": "resnet50", "BACKBONE_WIDTH": 1 / 32,
                  "TOP_DOWN_PYRAMID_SIZE": 8, "FPN_FEATUREMAPS": 8, "MATCHED_CHANNELS": 8,
                  "RPN_CONV_SIZE": 8, "FPN_CLASSIF_FC_LAYERS_SIZE": 8,
                  "MASK_HEAD_CONV_SIZE": 8, "MATTERPORT_NUM_CLASSES": 3}
WIDTH = 32                       # ResNet channels divided by this
STAGES = {2: ((64, 64, 256), 3), 3: ((128, 128, 512), 4), 4: ((256, 256, 1024), 6),
          5: ((512, 512, 2048), 3)}
PYRAMID = 8
MATCHED = 8
RPN_CONV = 8
ANCHORS = 3
HEAD = 8
# Layers built once before the real network in the Siamese file, so that the real
# ones get Keras 2's "_1" scope suffix.
SHADOWED = ("conv1", "bn_conv1", "res2a_branch2a", "res2a_branch1", "fpn_c5p5")


def fixture_value(seed, key, shape):
    """The value written for weight ``key`` ("<layer>/<variable>") of ``shape``:
    seeded normal numbers; BatchNorm variances are made positive."""
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode("utf8"))])
    value = rng.standard_normal(tuple(shape)).astype(np.float32) * np.float32(0.5)
    if key.endswith("/moving_variance"):
        value = np.abs(value) + np.float32(0.5)
    return value


def canonical_key(layer_name, weight_name):
    """"<layer>/<variable>" of a weight: the Keras layer's name and the variable's
    last name part ("conv1_1/kernel:0" of layer conv1 -> "conv1/kernel")."""
    return f"{layer_name}/{weight_name.split('/')[-1].split(':')[0]}"


def _channels(filters):
    return max(1, int(round(filters / WIDTH)))


# ---------------------------------------------------------------------- networks
def _resnet(layers, image):
    """ResNet-50 C2..C5 with the Matterport layer names, on ``image``."""
    x = layers.ZeroPadding2D((3, 3))(image)
    x = layers.Conv2D(_channels(64), 7, strides=2, use_bias=True, name="conv1")(x)
    x = layers.BatchNormalization(name="bn_conv1")(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    outputs = []
    for stage, (filters, blocks) in STAGES.items():
        f1, f2, f3 = (_channels(f) for f in filters)
        for index in range(blocks):
            block = chr(ord("a") + index)
            name = f"res{stage}{block}_branch"
            bn = f"bn{stage}{block}_branch"
            strides = 2 if index == 0 and stage > 2 else 1
            y = layers.Conv2D(f1, 1, strides=strides, name=name + "2a")(x)
            y = layers.Activation("relu")(layers.BatchNormalization(name=bn + "2a")(y))
            y = layers.Conv2D(f2, 3, padding="same", name=name + "2b")(y)
            y = layers.Activation("relu")(layers.BatchNormalization(name=bn + "2b")(y))
            y = layers.Conv2D(f3, 1, name=name + "2c")(y)
            y = layers.BatchNormalization(name=bn + "2c")(y)
            shortcut = x
            if index == 0:
                shortcut = layers.Conv2D(f3, 1, strides=strides, name=name + "1")(x)
                shortcut = layers.BatchNormalization(name=bn + "1")(shortcut)
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
        outputs.append(x)
    return outputs


def _fpn(layers, c2, c3, c4, c5, relu):
    """P2..P6 with the Matterport names (the Siamese FPN has ReLUs after its convs)."""
    act = (lambda t: layers.Activation("relu")(t)) if relu else (lambda t: t)
    p5 = act(layers.Conv2D(PYRAMID, 1, name="fpn_c5p5")(c5))
    p4 = layers.Add()([layers.UpSampling2D(2)(p5),
                       act(layers.Conv2D(PYRAMID, 1, name="fpn_c4p4")(c4))])
    p3 = layers.Add()([layers.UpSampling2D(2)(p4),
                       act(layers.Conv2D(PYRAMID, 1, name="fpn_c3p3")(c3))])
    p2 = layers.Add()([layers.UpSampling2D(2)(p3),
                       act(layers.Conv2D(PYRAMID, 1, name="fpn_c2p2")(c2))])
    outs = [act(layers.Conv2D(PYRAMID, 3, padding="same", name=f"fpn_p{i}")(p))
            for i, p in zip((2, 3, 4, 5), (p2, p3, p4, p5))]
    outs.append(layers.MaxPooling2D(1, strides=2, name="fpn_p6")(outs[-1]))
    return outs


def _rpn_model(keras, depth):
    layers = keras.layers
    feature_map = layers.Input([None, None, depth], name="input_rpn_feature_map")
    shared = layers.Conv2D(RPN_CONV, 3, padding="same", activation="relu",
                           name="rpn_conv_shared")(feature_map)
    logits = layers.Conv2D(2 * ANCHORS, 1, name="rpn_class_raw")(shared)
    deltas = layers.Conv2D(4 * ANCHORS, 1, name="rpn_bbox_pred")(shared)
    return keras.Model(feature_map, [logits, deltas], name="rpn_model")


def _heads(layers, num_classes, class_agnostic):
    """The classifier and mask heads (TimeDistributed, as Matterport built them) on
    their own ROI inputs: [(inputs), (outputs)]."""
    td = layers.TimeDistributed
    rois = layers.Input([None, 7, 7, MATCHED], name="input_pooled_rois")
    x = td(layers.Conv2D(HEAD, 7, padding="valid"), name="mrcnn_class_conv1")(rois)
    x = layers.Activation("relu")(td(layers.BatchNormalization(), name="mrcnn_class_bn1")(x))
    x = td(layers.Conv2D(HEAD, 1), name="mrcnn_class_conv2")(x)
    x = layers.Activation("relu")(td(layers.BatchNormalization(), name="mrcnn_class_bn2")(x))
    shared = layers.Lambda(lambda t: t[:, :, 0, 0, :])(x)
    logits = td(layers.Dense(num_classes), name="mrcnn_class_logits")(shared)
    boxes = td(layers.Dense(4 if class_agnostic else 4 * num_classes),
               name="mrcnn_bbox_fc")(shared)
    masks_in = layers.Input([None, 14, 14, MATCHED], name="input_pooled_masks")
    m = masks_in
    for i in range(1, 5):
        m = td(layers.Conv2D(HEAD, 3, padding="same"), name=f"mrcnn_mask_conv{i}")(m)
        m = layers.Activation("relu")(td(layers.BatchNormalization(),
                                         name=f"mrcnn_mask_bn{i}")(m))
    m = td(layers.Conv2DTranspose(HEAD, 2, strides=2, activation="relu"),
           name="mrcnn_mask_deconv")(m)
    m = td(layers.Conv2D(1 if class_agnostic else num_classes, 1, activation="sigmoid"),
           name="mrcnn_mask")(m)
    return [rois, masks_in], [logits, boxes, m]


def matterport_model(keras):
    layers = keras.layers
    image = layers.Input([64, 64, 3], name="input_image")
    c2, c3, c4, c5 = _resnet(layers, image)
    pyramid = _fpn(layers, c2, c3, c4, c5, relu=False)
    rpn = _rpn_model(keras, PYRAMID)
    rpn_out = [out for p in pyramid for out in rpn(p)]
    head_inputs, head_outputs = _heads(layers, FIXTURE_CONFIG["MATTERPORT_NUM_CLASSES"],
                                       class_agnostic=False)
    return keras.Model([image] + head_inputs, pyramid[:4] + rpn_out + head_outputs,
                       name="mask_rcnn")


def siamese_model(keras):
    layers = keras.layers
    # The throwaway layers: their names are taken in the graph first (see SHADOWED).
    scratch = layers.Input([8, 8, 3])
    for name in SHADOWED:
        layers.Dense(1, name=name)(scratch)
    image = layers.Input([None, None, 3], name="input_resnet_image")
    resnet = keras.Model(image, _resnet(layers, image), name="resnet_model")
    c_inputs = [layers.Input([None, None, _channels(STAGES[s][0][2])], name=f"input_c{s}")
                for s in (2, 3, 4, 5)]
    fpn = keras.Model(c_inputs, _fpn(layers, *c_inputs, relu=True), name="fpn_model")
    query = layers.Input([64, 64, 3], name="input_image")
    reference = layers.Input([32, 32, 3], name="input_target")
    query_pyramid = fpn(resnet(query))
    reference_pyramid = fpn(resnet(reference))
    matched = []
    for level, q, r in zip(("P2", "P3", "P4", "P5", "P6"), query_pyramid, reference_pyramid):
        vector = layers.GlobalAveragePooling2D(keepdims=True)(r)
        distance = layers.Lambda(lambda t: abs(t[0] - t[1]))([q, vector])
        joined = layers.Concatenate()([q, distance])
        matched.append(layers.Conv2D(MATCHED, 1, name=f"fpn_distance_{level}")(joined))
    rpn = _rpn_model(keras, MATCHED)
    rpn_out = [out for p in matched for out in rpn(p)]
    head_inputs, head_outputs = _heads(layers, 2, class_agnostic=True)
    return keras.Model([query, reference] + head_inputs, rpn_out + head_outputs,
                       name="siamese_mrcnn")


def imagenet_model(keras):
    layers = keras.layers
    image = layers.Input([None, None, 3], name="input_resnet_image")
    resnet = keras.Model(image, _resnet(layers, image), name="resnet_model")
    inputs = layers.Input([64, 64, 3], name="input_1")
    features = layers.GlobalAveragePooling2D(name="avg_pool")(resnet(inputs)[-1])
    logits = layers.Dense(5, activation="softmax", name="fc")(features)
    return keras.Model(inputs, logits, name="imagenet_classifier")


# ---------------------------------------------------------------------- writing
def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and not hasattr(layer, "layer"):
            yield from _leaf_layers(layer)
        else:
            yield layer


def assign_fixture_values(model, seed):
    """Set every weight to :func:`fixture_value`; returns {canonical key: stored name}."""
    stored = {}
    for layer in _leaf_layers(model):
        if not layer.weights:
            continue
        values = []
        for weight in layer.weights:
            key = canonical_key(layer.name, weight.name)
            values.append(fixture_value(seed, key, weight.shape.as_list()))
            stored[key] = weight.name
        layer.set_weights(values)
    return stored


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras  # the Keras 2 API (pip install tf-keras)

    tf.compat.v1.disable_eager_execution()  # TF1 graph mode, as Keras 2.1.6 ran
    os.makedirs(args.output_dir, exist_ok=True)
    manifest = {"seed": SEED, "generator": "scripts/make_keras2_fixtures.py",
                "tensorflow": tf.__version__, "tf_keras": keras.__version__,
                "python": sys.version.split()[0], "config": FIXTURE_CONFIG, "files": {}}
    builds = [("matterport_mask_rcnn.h5", matterport_model, "save_weights"),
              ("original_siamese_mrcnn.h5", siamese_model, "save_weights"),
              ("imagenet_backbone.h5", imagenet_model, "save")]
    for file_name, build, writer in builds:
        with tf.Graph().as_default():
            model = build(keras)
            stored = assign_fixture_values(model, SEED)
            path = os.path.join(args.output_dir, file_name)
            if os.path.exists(path):
                os.remove(path)
            if writer == "save":
                model.save(path, save_format="h5", include_optimizer=False)
            else:
                model.save_weights(path, save_format="h5")
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            size = os.path.getsize(path)
            # mtime 0: the same file gives the same archive.
            with open(path, "rb") as raw, gzip.GzipFile(path + ".gz", "wb", mtime=0) as gz:
                shutil.copyfileobj(raw, gz)
            os.remove(path)
            suffixed = sorted(k for k, name in stored.items()
                              if name.split("/")[0] != k.split("/")[0])
            manifest["files"][file_name] = {
                "writer": f"tf_keras Model.{writer}", "model": model.name,
                "top_level_layers": [layer.name for layer in model.layers if layer.weights],
                "weights": len(stored), "scope_suffixed": suffixed,
                "bytes": size, "sha256": digest, "shipped_as": file_name + ".gz"}
            print(f"wrote {path}.gz: {len(stored)} weights, {size} bytes "
                  f"({os.path.getsize(path + '.gz')} compressed)"
                  + (f", {len(suffixed)} stored with a scope suffix" if suffixed else ""))
    with open(os.path.join(args.output_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return manifest


if __name__ == "__main__":
    main()
