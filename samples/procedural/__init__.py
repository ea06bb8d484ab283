"""Procedural one-shot benchmark: hundreds of shape categories generated from a seed.

See :mod:`samples.procedural.procedural` for the dataset and its design,
:mod:`samples.procedural.templates` for the categories and
:mod:`samples.procedural.export` for COCO export and preview figures.

Names are imported lazily, so that ``python -m samples.procedural.procedural`` runs
the module once (an eager import here would load it before runpy executes it).
"""

import importlib

_EXPORTS = {
    "ProceduralOneShotDataset": "procedural", "procedural_split": "procedural",
    "export_coco": "export", "render_preview": "export", "template_gallery": "export",
    "Template": "templates", "make_templates": "templates", "template_iou": "templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
