#!/usr/bin/env python
"""The embedded one-shot demo: train, evaluate and draw a small Siamese Mask R-CNN.

    python scripts/demo.py [--minutes M | --steps N | --weights CHECKPOINT] [--seed S]
        [--output-dir runs/demo] [--figures-dir figures] [--images N] [--categories K]
        [--eval-images N] [--runs R] [--ap-every N] [--ap-images N] [--quick]

The same as ``siamese-mrcnn demo`` (what it does: :mod:`siamese_mrcnn.demo`). This file
only parses the arguments and runs the package's demo, which prints as it goes; it
needs the project installed (``pip install -e .``, as ``bash scripts/demo.sh`` does).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from siamese_mrcnn import demo  # noqa: E402  (Keras is imported once the backend is chosen)


def parse_args(argv=None):
    """The demo's arguments with their defaults filled in; SystemExit on a mistake."""
    return demo.parse_args(argv, prog="scripts/demo.py")


def main(argv=None):
    """Run the demo; returns what :func:`siamese_mrcnn.demo.run` returns."""
    return demo.run(parse_args(argv))


if __name__ == "__main__":
    main()
    sys.exit(0)
