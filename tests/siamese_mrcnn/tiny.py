"""Tiny Siamese configurations shared by the model tests (64x64 queries, 32x32
references, resnet18 and narrow heads), and a shapes dataset for one-shot batches."""

from samples.shapes.shapes import ShapesDataset
from siamese_mrcnn.config import SiameseConfig


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
    FPN_FEATUREMAPS = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_HEAD_CONV_SIZE = 16
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


class TinyThreeShotConfig(TinySiameseConfig):
    """TinySiameseConfig with three references per query (k-shot)."""

    NAME = "tiny_siamese_3shot"
    NUM_TARGETS = 3


def shapes_dataset(count=6, seed=1, size=64):
    """A prepared ShapesDataset of ``count`` size x size images (classes square,
    circle, triangle)."""
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=seed)
    dataset.prepare()
    return dataset
