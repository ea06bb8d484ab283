#!/usr/bin/env python
"""Train Siamese Mask R-CNN: ``siamese-mrcnn train`` (see ``--help``).

Needs the package installed (``pip install -e .``); every argument is passed on.
"""

import sys

from siamese_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["train"] + sys.argv[1:]))
