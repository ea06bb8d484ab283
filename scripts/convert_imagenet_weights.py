#!/usr/bin/env python
"""Convert keras.applications ImageNet ResNet weights to our backbone layer names.

Writes a legacy HDF5 weight file with one top-level group per backbone layer
(conv1, bn_conv1, res2a_branch2a, ...), the layout of Matterport's ResNet-50
ImageNet file, so it loads by name into ``MaskRCNN`` (top-level backbone) or into a
Siamese model's ``resnet_model`` sub-model (:mod:`mrcnn.imagenet`).

    python scripts/convert_imagenet_weights.py --architecture resnet50
        --output resnet50_imagenet.h5 [--weights resnet50_..._notop.h5] [--rgb]

Without ``--weights`` keras.applications downloads the ImageNet-1k weights (needs
internet). keras.applications' ResNet weights were converted from Caffe and expect
BGR inputs; Matterport fed them RGB images unchanged, and so does this file by
default. ``--rgb`` reverses conv1's input channels so the network sees the colour
order it was trained on when given RGB images.

ImageNet-1k contains COCO classes, so for one-shot experiments a backbone trained
without them ("imagenet-687", SPEC section 6) is the faithful choice. Needs the
project installed (``pip install -e .``).
"""

import argparse
import logging
import os
import sys

from mrcnn.imagenet import APPLICATIONS, write_imagenet_backbone

logger = logging.getLogger("convert_imagenet_weights")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/convert_imagenet_weights.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=sorted(APPLICATIONS), default="resnet50",
                        help="backbone depth (default resnet50)")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--weights", default=None,
                        help="local keras.applications weight file (include_top=False) to "
                             "convert offline; default: download the ImageNet weights")
    parser.add_argument("--rgb", action="store_true",
                        help="reverse conv1's input channels (BGR-trained weights -> RGB "
                             "inputs); default keeps Matterport's behaviour")
    args = parser.parse_args(argv)
    if args.weights is not None and not os.path.isfile(args.weights):
        parser.error(f"--weights file not found: {args.weights}")
    return args


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    count = write_imagenet_backbone(args.architecture, args.output, args.weights, rgb=args.rgb)
    logger.info("wrote %d %s layers to %s", count, args.architecture, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
