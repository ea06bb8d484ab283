"""Pure TensorFlow tensor functions used by the Mask R-CNN layers (no Keras state)."""
