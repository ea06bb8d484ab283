#!/usr/bin/env python
"""One-shot evaluation: ``siamese-mrcnn evaluate`` (see ``--help``).

Needs the package installed (``pip install -e .``); every argument is passed on.
"""

import sys

from siamese_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate"] + sys.argv[1:]))
