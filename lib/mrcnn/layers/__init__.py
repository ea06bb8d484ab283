"""Keras layers of Mask R-CNN; each wraps pure ops with its settings and get_config."""
