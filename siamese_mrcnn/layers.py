"""Keras layers specific to Siamese Mask R-CNN: reference pooling and L1 matching.

Shape shorthand: B batch (queries), S shots (references per query), h, w feature map
size, C channels (FPN_FEATUREMAPS, 256).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="siamese_mrcnn")
class ReferencePooling(keras.layers.Layer):
    """Reference feature maps of all shots -> one embedding vector per query.

    Input: [B * S, h, w, C], the S references of each query consecutive. Output:
    [B, C], the mean over shots and locations. Averaging the shots' pyramids level by
    level and then global-average-pooling (the paper's k-shot rule) equals this,
    because both are means over the same values (all references share h, w).
    """

    def __init__(self, shots, **kwargs):
        super().__init__(**kwargs)
        if int(shots) < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        self.shots = int(shots)

    def call(self, reference_maps):
        pooled = ops.mean(ops.cast(reference_maps, "float32"), axis=(1, 2))  # [B*S, C]
        pooled = ops.reshape(pooled, (-1, self.shots, pooled.shape[-1]))      # [B, S, C]
        return ops.cast(ops.mean(pooled, axis=1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])

    def get_config(self):
        return dict(super().get_config(), shots=self.shots)


@keras.saving.register_keras_serializable(package="siamese_mrcnn")
class L1Match(keras.layers.Layer):
    """[query [B, h, w, C], reference [B, C]] -> [B, h, w, 2C] = [query, |query - ref|].

    The reference vector itself is not concatenated (as in the paper). A learned 1x1
    convolution (``fpn_distance_P*``) follows in the model.
    """

    def call(self, inputs):
        query, reference = inputs
        reference = ops.cast(reference, query.dtype)[:, None, None, :]
        return ops.concatenate([query, ops.abs(query - reference)], axis=-1)

    def compute_output_shape(self, input_shape):
        query_shape = input_shape[0]
        channels = None if query_shape[-1] is None else 2 * query_shape[-1]
        return tuple(query_shape[:-1]) + (channels,)
