"""Configuration of Siamese Mask R-CNN, with the paper's presets and the demo's.

``SiameseConfig`` extends :class:`mrcnn.config.Config` with the reference-image size,
the number of shots, the FPN width and the model variant. ``LargeConfig`` and
``SmallConfig`` carry the values of the paper's two configurations; ``DemoConfig``
(128-pixel queries, a quarter-width ResNet-18: trains in minutes on a CPU) and
``QuickConfig`` (64 pixels, a smoke test) those of the embedded demo. All four are
named in :data:`PRESETS` (``--config small|large|demo|quick`` on the command line).
Subclass them to override, as with any Matterport config::

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


class DemoConfig(SiameseConfig):
    """Siamese Mask R-CNN sized to learn the procedural benchmark in minutes on a CPU
    (the embedded demo's; ``--config demo``).

    Queries are 128x128 (the procedural images need no resizing; other images are
    resized "square" to 128), references 48-64 pixels; instances of 16-40 pixels,
    so anchors start at 16 pixels. The RPN runs on every other cell
    (RPN_ANCHOR_STRIDE 2): its 3x3 conv (512 channels on the 384 matched channels)
    is the costliest layer at this image size, so it and the matching convs are
    narrowed to 128 channels (RPN_CONV_SIZE, MATCHED_CHANNELS; the paper's 512 and
    384): with oneDNN and a full-width backbone a step of 8 images then takes
    0.65-0.9 s on 2 cores, not 1.5 s. Batch norm trains (TRAIN_BN): the weights
    start random, and frozen BN layers at their initial statistics leave the
    classifier stuck at a constant output. The ResNet-18 is a quarter as wide
    (BACKBONE_WIDTH 0.25: 16 to 128 channels): a step then takes about 0.32 s, so
    the demo's 12-minute budget holds about 2200 steps on an idle machine, and
    following the reference needs that many (measured, unseen AP50 against a
    wrong-category reference: no gap after 1000 steps at full width, 1.7x after
    1600 steps and 2.2x after the default 12 minutes at a quarter width).
    DETECTION_MIN_CONFIDENCE is 0.05, the corrected evaluation's cut-off.
    """

    NAME = "demo_siamese_mrcnn"
    BACKBONE = "resnet18"
    BACKBONE_WIDTH = 0.25
    TRAIN_BN = True
    IMAGES_PER_GPU = 8
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    TARGET_MIN_DIM = 48
    TARGET_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (16, 32, 64, 128, 256)
    RPN_ANCHOR_STRIDE = 2
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 600
    POST_NMS_ROIS_TRAINING = 100
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 16
    MAX_GT_INSTANCES = 10
    DETECTION_MAX_INSTANCES = 12
    # The corrected evaluation keeps detections down to 0.05 (EvalMode.corrected).
    DETECTION_MIN_CONFIDENCE = 0.05
    MINI_MASK_SHAPE = (28, 28)
    TOP_DOWN_PYRAMID_SIZE = 64
    FPN_FEATUREMAPS = 64
    MATCHED_CHANNELS = 128
    RPN_CONV_SIZE = 128
    FPN_CLASSIF_FC_LAYERS_SIZE = 128
    MASK_HEAD_CONV_SIZE = 16
    LEARNING_RATE = 0.02
    STEPS_PER_EPOCH = 200
    VALIDATION_STEPS = 0


class QuickConfig(DemoConfig):
    """A smoke-test version of :class:`DemoConfig` (``--config quick``, the demo's
    ``--quick``): 64-pixel queries, 32-pixel references, tiny heads, 2 images a step."""

    NAME = "demo_siamese_mrcnn_quick"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    TARGET_MIN_DIM = 24
    TARGET_MAX_DIM = 32
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_ANCHOR_STRIDE = 1
    PRE_NMS_LIMIT = 256
    POST_NMS_ROIS_TRAINING = 32
    POST_NMS_ROIS_INFERENCE = 16
    TRAIN_ROIS_PER_IMAGE = 8
    MAX_GT_INSTANCES = 6
    DETECTION_MAX_INSTANCES = 6
    MINI_MASK_SHAPE = (14, 14)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_FEATUREMAPS = 32
    MATCHED_CHANNELS = 32
    RPN_CONV_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_HEAD_CONV_SIZE = 16
    STEPS_PER_EPOCH = 2


# The named presets: --config NAME on the command line, the demo's configurations.
PRESETS = {"small": SmallConfig, "large": LargeConfig, "demo": DemoConfig,
           "quick": QuickConfig}
