"""ImageNet ResNet backbone files from keras.applications weights.

:func:`write_imagenet_backbone` builds keras.applications' ResNet50 / ResNet101 and our
backbone (:func:`mrcnn.layers.backbone.resnet_graph`), copies the weights across
(:func:`mrcnn.weights.load_resnet_from_keras_applications`) and writes a legacy HDF5
weight file with one top-level group per backbone layer (conv1, bn_conv1,
res2a_branch2a, ...): the layout of Matterport's ResNet-50 ImageNet file, which loads by
name into ``MaskRCNN`` (top-level backbone) or into a Siamese model's ``resnet_model``.
``scripts/convert_imagenet_weights.py`` is its command line.

keras.applications' ResNet weights were converted from Caffe and expect BGR inputs;
Matterport fed them RGB images unchanged, and so does the file by default.
:func:`reverse_conv1_input_channels` (``rgb=True``) flips conv1's input channels so the
network sees the colour order it was trained on when given RGB images.
"""

import os

APPLICATIONS = {"resnet50": "ResNet50", "resnet101": "ResNet101"}


def reverse_conv1_input_channels(model):
    """Reverse the input-channel axis of ``conv1``'s kernel [7, 7, in, out] in place
    (BGR-trained weights then respond to RGB images as they did to BGR ones)."""
    conv1 = model.get_layer("conv1")
    kernel, bias = conv1.get_weights()
    conv1.set_weights([kernel[:, :, ::-1, :], bias])


def write_imagenet_backbone(architecture, output, weights=None, rgb=False):
    """Write the ImageNet backbone file ``output`` (see the module docstring).

    Args:
        architecture: "resnet50" or "resnet101".
        output: HDF5 path to write (atomically, :func:`mrcnn.weights.save_weights`).
        weights: a local keras.applications weight file (include_top=False) to
            convert offline; None downloads the ImageNet weights (needs internet).
        rgb: reverse conv1's input channels (:func:`reverse_conv1_input_channels`).
    Returns the number of layers written. FileNotFoundError for a missing ``weights``.
    """
    import keras

    from mrcnn.layers.backbone import resnet_graph
    from mrcnn.weights import load_resnet_from_keras_applications, save_weights

    if architecture not in APPLICATIONS:
        raise ValueError(f"architecture must be one of {sorted(APPLICATIONS)}, "
                         f"got {architecture!r}")
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
