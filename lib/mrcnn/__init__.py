"""mrcnn: Mask R-CNN on TensorFlow 2 / Keras 3 with Matterport's API.

Public modules, where Matterport users look for them:
``mrcnn.config`` (Config), ``mrcnn.utils`` (numpy helpers, Dataset),
``mrcnn.model`` (MaskRCNN), ``mrcnn.visualize``.
"""

__version__ = "0.1.0"
