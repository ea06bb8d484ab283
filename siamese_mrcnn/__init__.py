"""siamese_mrcnn: one-shot instance segmentation (Siamese Mask R-CNN) on ``mrcnn``."""

__version__ = "0.1.0"
