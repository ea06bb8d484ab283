"""Tiny configurations shared by the model tests (64x64 images, narrow heads)."""

from samples.shapes.shapes import ShapesConfig, ShapesDataset


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


def shapes_dataset(count=8, seed=1, size=64):
    dataset = ShapesDataset()
    dataset.load_shapes(count, size, size, seed=seed)
    dataset.prepare()
    return dataset
