"""Region proposal network, box classifier and mask heads as Keras graph builders.

Shape shorthand: B batch, h x w feature map cells, A anchors per cell (RPN) or anchors
over all levels, R ROIs per image, K classes including background, C channels,
P pool size. ROI heads take features already pooled by ROI align (the model owns
the ``PyramidROIAlign`` layers), so they never see boxes.

Per-ROI layers run on [B*R, ...] tensors: :class:`FoldROIs` merges the batch and ROI
dims and :class:`UnfoldROIs` splits them again. This replaces Matterport's
TimeDistributed wrappers while keeping their layer names and weight shapes, so
Matterport's and the original Siamese project's weight files load unchanged.
"""

import keras
from keras import ops

from mrcnn.layers.backbone import BatchNorm


@keras.saving.register_keras_serializable(package="mrcnn")
class FoldROIs(keras.layers.Layer):
    """[B, R, ...] -> [max(B*R, 1), ...] (row b*R + r holds ROI r of image b).

    With no ROIs at all (B*R = 0) the result is one row of zeros: oneDNN's Conv2D
    (on by default here, see mrcnn/__init__) fails on an empty batch in TF 2.21.
    :class:`UnfoldROIs` drops that row again.
    """

    def call(self, inputs):
        inner = tuple(inputs.shape[2:])
        folded = ops.reshape(inputs, (-1,) + inner)
        batch, rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        # Python ints where the backend knows the shape (JAX slices need them).
        rows = (max(batch * rois, 1) if isinstance(batch * rois, int)
                else ops.maximum(batch * rois, 1))
        return ops.concatenate([folded, ops.zeros((1,) + inner, dtype=folded.dtype)],
                               axis=0)[:rows]

    def compute_output_shape(self, input_shape):
        b, r = input_shape[0], input_shape[1]
        folded = max(b * r, 1) if (b is not None and r is not None) else None
        return (folded,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="mrcnn")
class UnfoldROIs(keras.layers.Layer):
    """Inverse of :class:`FoldROIs`: inputs [x [B*R, ...], like [B, R, ...]] -> [B, R, ...].

    ``like`` only supplies B and R (it is the tensor that was folded).
    """

    def call(self, inputs):
        x, like = inputs
        batch, rois = ops.shape(like)[0], ops.shape(like)[1]
        x = x[:batch * rois]  # drops FoldROIs' row for B*R = 0
        return ops.reshape(x, (batch, rois) + tuple(x.shape[1:]))

    def compute_output_shape(self, input_shape):
        x_shape, like_shape = input_shape
        return tuple(like_shape[:2]) + tuple(x_shape[1:])


@keras.saving.register_keras_serializable(package="mrcnn")
class RepeatAxis(keras.layers.Layer):
    """Repeat a size-1 axis ``count`` times: the class-agnostic output shared by K classes.

    Args:
        count: the new size of ``axis`` (K).
        axis: the axis of size 1 to repeat (negative counts from the end).
    """

    def __init__(self, count, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)
        self.axis = int(axis)

    def call(self, inputs):
        return ops.repeat(inputs, self.count, axis=self.axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if shape[self.axis] not in (None, 1):
            raise ValueError(f"{self.name}: axis {self.axis} must have size 1 to be "
                             f"repeated, got input shape {tuple(input_shape)}")
        shape[self.axis] = self.count
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(count=self.count, axis=self.axis)
        return config


def build_rpn_model(anchor_stride, anchors_per_location, depth, name="rpn_model",
                    conv_size=512):
    """Shared region proposal network, applied to every pyramid level.

    Args:
        anchor_stride: anchors at every ``anchor_stride``-th cell (stride of the shared
            3x3 conv, so the output grid has one cell per anchor position).
        anchors_per_location: A, the anchors per cell (one per ratio).
        depth: channels of the input feature map.
        conv_size: channels of the shared 3x3 conv (Config.RPN_CONV_SIZE).

    Model input: feature map [B, h, w, depth] (h, w may be None).
    Model outputs, with anchors ordered row-major over cells, then the A anchors of
    a cell (the order of ``generate_anchors``); n = ceil(h / anchor_stride) *
    ceil(w / anchor_stride) * A:
        rpn_class_logits [B, n, 2] (background, foreground), float32,
        rpn_probs [B, n, 2] softmax of the logits, float32,
        rpn_bbox [B, n, 4] deltas (dy, dx, log(dh), log(dw)), still divided by
            RPN_BBOX_STD_DEV, float32.
    """
    a = int(anchors_per_location)
    feature_map = keras.Input([None, None, int(depth)], name="input_rpn_feature_map")
    shared = keras.layers.Conv2D(int(conv_size), 3, padding="same", activation="relu",
                                 strides=anchor_stride, name="rpn_conv_shared")(feature_map)
    # Channel index of the 2A logits is anchor * 2 + class, so [B, h, w, 2A] ->
    # [B, h*w*A, 2] enumerates cells row-major, then the anchors of each cell.
    logits = keras.layers.Conv2D(2 * a, 1, name="rpn_class_raw")(shared)
    logits = keras.layers.Reshape((-1, 2), dtype="float32", name="rpn_class_reshape")(logits)
    probs = keras.layers.Activation("softmax", dtype="float32", name="rpn_class_softmax")(logits)
    deltas = keras.layers.Conv2D(4 * a, 1, name="rpn_bbox_pred")(shared)
    deltas = keras.layers.Reshape((-1, 4), dtype="float32", name="rpn_bbox_reshape")(deltas)
    return keras.Model(feature_map, [logits, probs, deltas], name=name)


def fpn_classifier_graph(pooled, num_classes, train_bn=False, fc_layers_size=1024,
                         class_agnostic_bbox=False):
    """Box classifier and regressor head on ROI-aligned features.

    Args:
        pooled: [B, R, P, P, C] ROI-aligned features (R may be None).
        num_classes: K, including background.
        train_bn: see :class:`mrcnn.layers.backbone.BatchNorm`.
        fc_layers_size: width of the two "fully connected" layers (a PxP valid conv
            and a 1x1 conv).
        class_agnostic_bbox: predict one box (Dense 4) and repeat it for all K classes
            (the Siamese head) instead of K boxes (Dense 4K).

    Returns (all float32):
        mrcnn_class_logits [B, R, K], mrcnn_probs [B, R, K] (softmax),
        mrcnn_bbox [B, R, K, 4] deltas (dy, dx, log(dh), log(dw)) divided by
        BBOX_STD_DEV.
    """
    pool = pooled.shape[2]
    if pool is None or pooled.shape[3] != pool:
        raise ValueError(f"fpn_classifier_graph needs square, static pooled features "
                         f"[B, R, P, P, C], got shape {pooled.shape}")
    x = FoldROIs(name="mrcnn_class_fold_rois")(pooled)  # [B*R, P, P, C]
    x = keras.layers.Conv2D(fc_layers_size, pool, padding="valid",
                            name="mrcnn_class_conv1")(x)
    x = BatchNorm(train_bn=train_bn, name="mrcnn_class_bn1")(x)
    x = keras.layers.Activation("relu", name="mrcnn_class_relu1")(x)
    x = keras.layers.Conv2D(fc_layers_size, 1, name="mrcnn_class_conv2")(x)
    x = BatchNorm(train_bn=train_bn, name="mrcnn_class_bn2")(x)
    x = keras.layers.Activation("relu", name="mrcnn_class_relu2")(x)
    shared = keras.layers.Reshape((fc_layers_size,), name="pool_squeeze")(x)  # [B*R, fc]

    logits = keras.layers.Dense(num_classes, name="mrcnn_class_logits")(shared)
    logits = UnfoldROIs(dtype="float32", name="mrcnn_class_logits_unfold")([logits, pooled])
    probs = keras.layers.Activation("softmax", dtype="float32", name="mrcnn_class")(logits)

    box_outputs = 4 if class_agnostic_bbox else 4 * num_classes
    bbox = keras.layers.Dense(box_outputs, name="mrcnn_bbox_fc")(shared)
    bbox = UnfoldROIs(dtype="float32", name="mrcnn_bbox_unfold")([bbox, pooled])
    if class_agnostic_bbox:
        bbox = keras.layers.Reshape((-1, 1, 4), name="mrcnn_bbox_agnostic")(bbox)
        bbox = RepeatAxis(num_classes, axis=2, dtype="float32", name="mrcnn_bbox")(bbox)
    else:
        bbox = keras.layers.Reshape((-1, num_classes, 4), dtype="float32",
                                    name="mrcnn_bbox")(bbox)
    return logits, probs, bbox


def build_fpn_mask_graph(pooled, num_classes, train_bn=False, class_agnostic=False,
                         conv_size=256):
    """Mask head on ROI-aligned features.

    Args:
        pooled: [B, R, P, P, C] ROI-aligned features (P = MASK_POOL_SIZE; R may be None).
        num_classes: K, including background.
        train_bn: see :class:`mrcnn.layers.backbone.BatchNorm`.
        class_agnostic: predict one mask per ROI and repeat it for all K classes (the
            Siamese head) instead of one mask per class.
        conv_size: channels of the four convs and the deconv (256 in the paper and
            Matterport; smaller only to make tiny CPU models cheap).

    Returns: float32 [B, R, 2P, 2P, K] mask probabilities (sigmoid), in the ROI's frame.
    """
    x = FoldROIs(name="mrcnn_mask_fold_rois")(pooled)  # [B*R, P, P, C]
    for i in range(1, 5):
        x = keras.layers.Conv2D(conv_size, 3, padding="same", name=f"mrcnn_mask_conv{i}")(x)
        x = BatchNorm(train_bn=train_bn, name=f"mrcnn_mask_bn{i}")(x)
        x = keras.layers.Activation("relu", name=f"mrcnn_mask_relu{i}")(x)
    x = keras.layers.Conv2DTranspose(conv_size, 2, strides=2, activation="relu",
                                     name="mrcnn_mask_deconv")(x)  # [B*R, 2P, 2P, conv_size]
    x = keras.layers.Conv2D(1 if class_agnostic else num_classes, 1, activation="sigmoid",
                            name="mrcnn_mask")(x)
    masks = UnfoldROIs(dtype="float32", name="mrcnn_mask_unfold")([x, pooled])
    if class_agnostic:
        masks = RepeatAxis(num_classes, axis=-1, dtype="float32",
                           name="mrcnn_mask_repeat")(masks)
    return masks
