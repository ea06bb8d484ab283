"""``python -m siamese_mrcnn train|evaluate|detect ...``: the ``siamese-mrcnn`` command."""

import sys

from siamese_mrcnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
