"""Small Keras layers used while wiring the Mask R-CNN graph.

Shape shorthand: B batch, N boxes.
"""

import keras
from keras import ops

from mrcnn.ops.boxes import norm_boxes


@keras.saving.register_keras_serializable(package="mrcnn")
class NormBoxes(keras.layers.Layer):
    """Pixel boxes [B, N, 4] -> normalised boxes, using the image tensor's height/width.

    Inputs: [boxes [B, N, 4] pixel (y2, x2 exclusive), image [B, H, W, C]].
    All-zero (padding) rows stay all-zero, so downstream ops still recognise them.
    """

    def call(self, inputs):
        boxes, image = inputs
        boxes = ops.cast(boxes, "float32")
        shape = ops.stack(ops.shape(image)[1:3])
        is_box = ops.any(ops.not_equal(boxes, 0.0), axis=-1, keepdims=True)
        return ops.where(is_box, norm_boxes(boxes, shape), ops.zeros_like(boxes))

    def compute_output_shape(self, input_shape):
        return input_shape[0]
