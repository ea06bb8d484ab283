#!/usr/bin/env python
"""Detect a reference's category in a query image: ``siamese-mrcnn detect`` (see ``--help``).

Needs the package installed (``pip install -e .``); every argument is passed on.
"""

import sys

from siamese_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["detect"] + sys.argv[1:]))
