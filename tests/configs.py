"""The test suite's one module of tiny configurations (64-pixel images, narrow heads).

Every test file takes its configuration from here or subclasses one of these with
the few attributes it is about, so a change of the CPU-sized widths is made once:

- :class:`TinyConfig`: Mask R-CNN (ResNet-50, 3 shape classes) that traces and steps
  in seconds on a 2-core CPU; :class:`DeterministicTinyConfig`: the same without
  random subsampling;
- :class:`TinySiameseConfig`, :class:`TinyThreeShotConfig`: Siamese Mask R-CNN
  (ResNet-18, 64x64 queries, 32x32 references), 1 and 3 shots;
- ``TINY_CLI``: the same Siamese model as command-line flags;
- :func:`shapes_dataset`: a prepared shapes dataset (square, circle, triangle).
"""

from samples.shapes.shapes import ShapesConfig, ShapesDataset
from siamese_mrcnn.config import SiameseConfig


class TinyConfig(ShapesConfig):
    """A Mask R-CNN small enough to trace and step in seconds on a 2-core CPU."""

    NAME = "tiny"
    BACKBONE = "resnet50"
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    IMAGES_PER_GPU = 2
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 512
    POST_NMS_ROIS_TRAINING = 64
    POST_NMS_ROIS_INFERENCE = 32
    TRAIN_ROIS_PER_IMAGE = 16
    MAX_GT_INSTANCES = 5
    DETECTION_MAX_INSTANCES = 8
    DETECTION_MIN_CONFIDENCE = 0.0
    MINI_MASK_SHAPE = (14, 14)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_HEAD_CONV_SIZE = 16
    STEPS_PER_EPOCH = 2
    VALIDATION_STEPS = 1


class DeterministicTinyConfig(TinyConfig):
    """No random subsampling anywhere in a step, so two runs give identical losses.

    ROI_POSITIVE_RATIO 1.0 makes the ROI sampler take every positive and no negative
    (nothing random is left); RPN_TRAIN_ANCHORS_PER_IMAGE above the anchor count
    (1,023 at 64x64) makes the RPN target sampler keep every labelled anchor.
    """

    NAME = "tiny_det"
    ROI_POSITIVE_RATIO = 1.0
    TRAIN_ROIS_PER_IMAGE = 64
    RPN_TRAIN_ANCHORS_PER_IMAGE = 1024


class TinySiameseConfig(SiameseConfig):
    """A Siamese Mask R-CNN small enough to trace and step in seconds on a 2-core CPU.

    The matching convs keep their 384 output channels (a constant of the model);
    the FPN is narrowed to 32 channels (FPN_FEATUREMAPS must equal
    TOP_DOWN_PYRAMID_SIZE).
    """

    NAME = "tiny_siamese"
    BACKBONE = "resnet18"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    TARGET_MIN_DIM = 24
    TARGET_MAX_DIM = 32
    RPN_ANCHOR_SCALES = TinyConfig.RPN_ANCHOR_SCALES
    RPN_TRAIN_ANCHORS_PER_IMAGE = TinyConfig.RPN_TRAIN_ANCHORS_PER_IMAGE
    PRE_NMS_LIMIT = TinyConfig.PRE_NMS_LIMIT
    POST_NMS_ROIS_TRAINING = TinyConfig.POST_NMS_ROIS_TRAINING
    POST_NMS_ROIS_INFERENCE = TinyConfig.POST_NMS_ROIS_INFERENCE
    TRAIN_ROIS_PER_IMAGE = TinyConfig.TRAIN_ROIS_PER_IMAGE
    MAX_GT_INSTANCES = TinyConfig.MAX_GT_INSTANCES
    DETECTION_MAX_INSTANCES = TinyConfig.DETECTION_MAX_INSTANCES
    DETECTION_MIN_CONFIDENCE = 0.0
    MINI_MASK_SHAPE = TinyConfig.MINI_MASK_SHAPE
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_FEATUREMAPS = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_HEAD_CONV_SIZE = 16
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


class TinyThreeShotConfig(TinySiameseConfig):
    """TinySiameseConfig with three references per query (k-shot)."""

    NAME = "tiny_siamese_3shot"
    NUM_TARGETS = 3


# The command line's version of a CPU-sized Siamese model (64 px queries, 32 px
# references, resnet18, narrow heads and matching).
TINY_CLI = ["--image-size", "64", "--reference-size", "32", "--backbone", "resnet18",
            "--anchor-scales", "8,16,32,64,128",
            "--set", "TOP_DOWN_PYRAMID_SIZE=32", "--set", "FPN_FEATUREMAPS=32",
            "--set", "FPN_CLASSIF_FC_LAYERS_SIZE=32", "--set", "MASK_HEAD_CONV_SIZE=16",
            "--set", "MATCHED_CHANNELS=32", "--set", "RPN_CONV_SIZE=32",
            "--set", "TRAIN_ROIS_PER_IMAGE=16", "--set", "POST_NMS_ROIS_TRAINING=64",
            "--set", "POST_NMS_ROIS_INFERENCE=32", "--set", "PRE_NMS_LIMIT=512",
            "--set", "MAX_GT_INSTANCES=5", "--set", "DETECTION_MAX_INSTANCES=8",
            "--set", "MINI_MASK_SHAPE=[14,14]", "--set", "RPN_TRAIN_ANCHORS_PER_IMAGE=64"]


def shapes_dataset(count=8, seed=1, size=64):
    """A prepared ShapesDataset of ``count`` size x size images (classes square,
    circle, triangle)."""
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=seed)
    dataset.prepare()
    return dataset
