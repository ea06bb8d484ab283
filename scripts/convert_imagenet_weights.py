#!/usr/bin/env python
"""Convert keras.applications ImageNet ResNet weights to our backbone layer names.

Writes a legacy HDF5 weight file with one top-level group per backbone layer
(conv1, bn_conv1, res2a_branch2a, ...), the layout of Matterport's ResNet-50
ImageNet file, so it loads by name into ``MaskRCNN`` (top-level backbone) or into a
Siamese model's ``resnet_model`` sub-model.

    python scripts/convert_imagenet_weights.py --architecture resnet50
        --output resnet50_imagenet.h5 [--weights resnet50_..._notop.h5] [--rgb]

Without ``--weights`` keras.applications downloads the ImageNet-1k weights (needs
internet). keras.applications' ResNet weights were converted from Caffe and expect
BGR inputs; Matterport fed them RGB images unchanged, and so does this file by
default. ``--rgb`` reverses conv1's input channels so the network sees the colour
order it was trained on when given RGB images.

ImageNet-1k contains COCO classes, so for one-shot experiments a backbone trained
without them ("imagenet-687", SPEC section 6) is the faithful choice.
"""

import argparse
import logging
import os
import sys

logger = logging.getLogger("convert_imagenet_weights")

APPLICATIONS = {"resnet50": "ResNet50", "resnet101": "ResNet101"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=sorted(APPLICATIONS), default="resnet50",
                        help="backbone depth (default resnet50)")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    parser.add_argument("--weights", default=None,
                        help="local keras.applications weight file (include_top=False) to "
                             "convert offline; default: download the ImageNet weights")
    parser.add_argument("--rgb", action="store_true",
                        help="reverse conv1's input channels (BGR-trained weights -> RGB "
                             "inputs); default keeps Matterport's behaviour")
    return parser.parse_args(argv)


def reverse_conv1_input_channels(model):
    """Reverse the input-channel axis of ``conv1``'s kernel [7, 7, in, out] in place
    (BGR-trained weights then respond to RGB images as they did to BGR ones)."""
    conv1 = model.get_layer("conv1")
    kernel, bias = conv1.get_weights()
    conv1.set_weights([kernel[:, :, ::-1, :], bias])


def convert(architecture, output, weights=None, rgb=False):
    """Build both models, copy the weights across and write ``output``. Returns the
    number of layers converted."""
    import keras

    from mrcnn.layers.backbone import resnet_graph
    from mrcnn.weights import load_resnet_from_keras_applications, save_weights

    if weights is not None and not os.path.isfile(weights):
        raise FileNotFoundError(f"--weights file not found: {weights}")
    app_cls = getattr(keras.applications, APPLICATIONS[architecture])
    app_model = app_cls(weights=weights if weights is not None else "imagenet",
                        include_top=False, input_shape=(None, None, 3))
    image = keras.Input([None, None, 3], name="input_image")
    _, c2, c3, c4, c5 = resnet_graph(image, architecture, stage5=True, train_bn=False)
    backbone = keras.Model(image, [c2, c3, c4, c5], name=f"{architecture}_backbone")
    names = load_resnet_from_keras_applications(backbone, app_model, architecture)
    if rgb:
        reverse_conv1_input_channels(backbone)
    save_weights(backbone, output)
    return len(names)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    count = convert(args.architecture, args.output, args.weights, rgb=args.rgb)
    logger.info("wrote %d %s layers to %s", count, args.architecture, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
