"""Test-session setup shared by all test packages."""

import os

# Quieten TensorFlow's C++ logging (grappler cost-model warnings and the like);
# must be set before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# oneDNN convolutions (see lib/mrcnn/__init__.py): tests that import tensorflow
# before mrcnn get them too.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
