#!/usr/bin/env python
"""Export a trained model for serving: ``siamese-mrcnn export`` (see ``--help``).

Needs the package installed (``pip install -e .``); every argument is passed on.
"""

import sys

from siamese_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["export"] + sys.argv[1:]))
