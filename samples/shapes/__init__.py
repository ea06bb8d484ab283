"""Synthetic shapes: a tiny dataset for smoke tests and demos (see ``shapes.py``)."""

from samples.shapes.shapes import ShapesConfig, ShapesDataset

__all__ = ["ShapesConfig", "ShapesDataset"]
