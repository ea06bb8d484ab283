#!/usr/bin/env python
"""Wall time, peak memory and multiply-adds of Mask R-CNN and Siamese Mask R-CNN beside
a bare ResNet, on any Keras backend and beside torchvision's Mask R-CNN.

    python scripts/benchmark.py [--size 1024] [--repeats 5] [--warmup 1]
        [--backend tensorflow,jax,torch,torchvision] [--only mrcnn|siamese|all]
        [--backbone resnet50] [--mixed-precision] [--profile] [--json out.json]

The benchmark is :mod:`siamese_mrcnn.benchmark` (what each row measures is said
there); this file runs it. Needs the project installed (``pip install -e .``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from siamese_mrcnn.benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
    sys.exit(0)
