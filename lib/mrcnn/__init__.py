"""mrcnn: Mask R-CNN on TensorFlow 2 / Keras 3 with Matterport's API.

Public modules, where Matterport users look for them:
``mrcnn.config`` (Config), ``mrcnn.utils`` (numpy helpers, Dataset),
``mrcnn.model`` (MaskRCNN), ``mrcnn.visualize``.
"""

import os

# oneDNN kernels for convolutions and their gradients on x86 CPUs. The TensorFlow
# 2.21 wheel leaves them off by default on some CPUs; measured on a 2-core Xeon, a
# 64x64 Mask R-CNN training step is 2.7x faster with them (0.38 s vs 1.03 s) and a
# 128x128 Siamese step 3x (1.5 s vs 4.5 s). Takes effect only if TensorFlow is not
# imported yet; set TF_ENABLE_ONEDNN_OPTS=0 before importing mrcnn to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
