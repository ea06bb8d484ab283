"""Configuration of Siamese Mask R-CNN, with the paper's Small and Large presets.

``SiameseConfig`` extends :class:`mrcnn.config.Config` with the reference-image size,
the number of shots, the FPN width and the model variant. ``LargeConfig`` and
``SmallConfig`` carry the values of the paper's two configurations; subclass them to
override, as with any Matterport config::

    class MyConfig(SmallConfig):
        NAME = "my_run"
        IMAGES_PER_GPU = 4
"""

import numpy as np

from mrcnn.config import Config, ConfigError, number_problem


class SiameseConfig(Config):
    """Base one-shot configuration: 2 classes (background, "matches the reference")."""

    NAME = "siamese"
    NUM_CLASSES = 1 + 1
    BACKBONE = "resnet50"

    # Reference images: the instance crop is scaled up so its short side is at least
    # TARGET_MIN_DIM (never down for this rule), its long side capped at
    # TARGET_MAX_DIM, then zero-padded to TARGET_MAX_DIM x TARGET_MAX_DIM.
    TARGET_MIN_DIM = 150
    TARGET_MAX_DIM = 192
    # References per query (k-shot). Their feature pyramids are averaged.
    NUM_TARGETS = 1
    # Channels of the FPN feature maps shared by query and references.
    FPN_FEATUREMAPS = 256
    # Channels of the matched maps (the 1x1 convs fpn_distance_P2..P6) that feed the
    # RPN and the heads: 384 in the paper and its checkpoints; smaller only for
    # CPU-sized models.
    MATCHED_CHANNELS = 384
    # "mrcnn" (boxes and masks) or "frcnn" (boxes only, no mask head).
    MODEL = "mrcnn"

    # The paper's optimiser settings and loss weights (SPEC section 2 and 3).
    LEARNING_RATE = 0.02
    DETECTION_NMS_THRESHOLD = 0.5
    LOSS_WEIGHTS = {
        "rpn_class_loss": 2.0,
        "rpn_bbox_loss": 0.1,
        "mrcnn_class_loss": 2.0,
        "mrcnn_bbox_loss": 0.5,
        "mrcnn_mask_loss": 1.0,
    }

    def __init__(self):
        self.TARGET_SHAPE = np.array([self.TARGET_MAX_DIM, self.TARGET_MAX_DIM,
                                      self.IMAGE_CHANNEL_COUNT])
        super().__init__()

    def validate(self):
        super().validate()
        name = type(self).__name__
        if self.NUM_CLASSES != 2:
            raise_config(name, "NUM_CLASSES", "Siamese Mask R-CNN has exactly 2 classes "
                                              f"(background, match); got {self.NUM_CLASSES}")
        for attribute, low in (("NUM_TARGETS", 1), ("TARGET_MIN_DIM", 0),
                               ("TARGET_MAX_DIM", 1), ("FPN_FEATUREMAPS", 1)):
            value = getattr(self, attribute)
            problem = number_problem(value, low=low, integer=True)
            if problem:
                raise_config(name, attribute, f"{problem}, got {value!r}")
        if self.TARGET_MAX_DIM % 32:
            raise_config(name, "TARGET_MAX_DIM", "must be divisible by 32 (the C5 stride), "
                                                 f"got {self.TARGET_MAX_DIM}")
        if self.TARGET_MIN_DIM > self.TARGET_MAX_DIM:
            raise_config(name, "TARGET_MIN_DIM", f"{self.TARGET_MIN_DIM} exceeds "
                                                 f"TARGET_MAX_DIM {self.TARGET_MAX_DIM}")
        if (not isinstance(self.MATCHED_CHANNELS, (int, np.integer))
                or isinstance(self.MATCHED_CHANNELS, bool) or self.MATCHED_CHANNELS < 1):
            raise_config(name, "MATCHED_CHANNELS", f"must be a positive integer, got "
                                                   f"{self.MATCHED_CHANNELS!r}")
        if self.MODEL not in ("mrcnn", "frcnn"):
            raise_config(name, "MODEL", f"must be 'mrcnn' or 'frcnn', got {self.MODEL!r}")
        if self.FPN_FEATUREMAPS != self.TOP_DOWN_PYRAMID_SIZE:
            raise_config(name, "FPN_FEATUREMAPS", "must equal TOP_DOWN_PYRAMID_SIZE "
                                                  f"({self.TOP_DOWN_PYRAMID_SIZE}), got "
                                                  f"{self.FPN_FEATUREMAPS}")

    @classmethod
    def from_dict(cls, values):
        values = {k: v for k, v in values.items() if k != "TARGET_SHAPE"}
        return super().from_dict(values)


def raise_config(class_name, attribute, message):
    raise ConfigError(f"{class_name}.{attribute}: {message}")


class LargeConfig(SiameseConfig):
    """The paper's configuration: 4 GPUs x 3 images, 1024x1024 queries, 192 references."""

    NAME = "large_siamese_mrcnn"
    GPU_COUNT = 4
    IMAGES_PER_GPU = 3
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    TARGET_MIN_DIM = 150
    TARGET_MAX_DIM = 192
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000
    TRAIN_ROIS_PER_IMAGE = 200
    MAX_GT_INSTANCES = 100
    DETECTION_MAX_INSTANCES = 100


class SmallConfig(SiameseConfig):
    """The paper's one-GPU configuration: 12 images, 512x512 queries, 96 references."""

    NAME = "small_siamese_mrcnn"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 12
    IMAGE_MIN_DIM = 400
    IMAGE_MAX_DIM = 512
    TARGET_MIN_DIM = 75
    TARGET_MAX_DIM = 96
    FPN_CLASSIF_FC_LAYERS_SIZE = 512
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    POST_NMS_ROIS_TRAINING = 500
    POST_NMS_ROIS_INFERENCE = 500
    TRAIN_ROIS_PER_IMAGE = 100
    MAX_GT_INSTANCES = 30
    DETECTION_MAX_INSTANCES = 30
