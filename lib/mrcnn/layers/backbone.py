"""ResNet backbone, feature pyramid network (FPN) and the frozen BatchNorm layer.

Shape shorthand: B batch, H x W input image (pixels), C channels. A stage-s map has
stride 2**s: C2 [B, H/4, W/4, C_2], ..., C5 [B, H/32, W/32, C_5] with (C_2..C_5) =
(256, 512, 1024, 2048) for the bottleneck ResNets (resnet50, resnet101) and
(64, 128, 256, 512) for the basic-block ones (resnet18, resnet34; see
:func:`backbone_channels`). Pyramid levels P2..P5 share those strides with
``pyramid_size`` channels and P6 has stride 64. Spatial dims may be None.

Layer names follow Matterport's Mask R-CNN (conv1, bn_conv1, res2a_branch2a,
bn2a_branch2a, ..., res2a_branch1, fpn_c5p5, fpn_p2, ...) so its weight files, the
original Siamese Mask R-CNN's and ours load by name into these graphs. Layers
without weights get deterministic names too (``res2a_out``, ``fpn_p4add``, ...).
"""

import string

import keras

# Bottleneck blocks per stage (C2..C5). Only these two have keras.applications
# weights (mrcnn.weights reads this table), so the basic-block nets live apart.
RESNET_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
# Bottleneck widths (1x1 reduce, 3x3, 1x1 expand) per stage.
STAGE_FILTERS = {2: (64, 64, 256), 3: (128, 128, 512), 4: (256, 256, 1024),
                 5: (512, 512, 2048)}
RESNET_CHANNELS = (256, 512, 1024, 2048)
# Basic blocks (two 3x3 convs) per stage, He et al. 2016, Table 1.
BASIC_RESNET_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
# Width of both 3x3 convs of a basic block per stage; also C2..C5's channels.
BASIC_STAGE_FILTERS = {2: 64, 3: 128, 4: 256, 5: 512}
BASIC_RESNET_CHANNELS = (64, 128, 256, 512)
ARCHITECTURES = tuple(sorted(RESNET_BLOCKS)) + tuple(sorted(BASIC_RESNET_BLOCKS))


def scaled_width(filters, width):
    """``filters`` channels scaled by the width multiplier ``width`` (at least 1)."""
    return max(1, int(round(filters * float(width))))


def backbone_channels(architecture, width=1.0):
    """Channels (C2, C3, C4, C5) of the named ResNet's stage outputs.

    (256, 512, 1024, 2048) for "resnet50"/"resnet101", (64, 128, 256, 512) for
    "resnet18"/"resnet34", each times ``width`` (see :func:`resnet_graph`); the input
    channels of :func:`build_fpn_model`.
    """
    if architecture in RESNET_BLOCKS:
        return tuple(scaled_width(c, width) for c in RESNET_CHANNELS)
    if architecture in BASIC_RESNET_BLOCKS:
        return tuple(scaled_width(c, width) for c in BASIC_RESNET_CHANNELS)
    raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, "
                     f"got {architecture!r}")


@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization whose statistics can be frozen independently of training.

    Args:
        train_bn: False (Matterport's TRAIN_BN=False, used everywhere here): always
            normalise with the moving mean/variance and never update them, whatever
            the ``training`` flag; gamma and beta still receive gradients when the
            layer is trainable. True: behave like a plain BatchNormalization (batch
            statistics when called with ``training=True``).
        Other arguments as keras.layers.BatchNormalization (epsilon defaults to
        1e-3, Keras 2's and Matterport's value).

    Input and output: [..., C], same shape; float32 statistics under mixed precision.
    """

    def __init__(self, train_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.train_bn = bool(train_bn)

    def call(self, inputs, training=None, mask=None):
        if not self.train_bn:
            # Batches of 1-3 large images make batch statistics useless; the
            # ImageNet statistics are kept for the whole of training.
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config["train_bn"] = self.train_bn
        return config


def _block_letters(count):
    """Block suffixes a, b, ..., z (res4 of resnet101 uses a..w)."""
    if count > len(string.ascii_lowercase):
        raise ValueError(f"at most 26 blocks per stage are supported, got {count}")
    return string.ascii_lowercase[:count]


def _bottleneck(x, stage, block, strides, shortcut_conv, train_bn, bn_epsilon, width):
    """One ResNet-v1 bottleneck block (1x1 -> 3x3 -> 1x1, residual add, ReLU).

    ``strides`` applies to the first 1x1 conv and to the projection shortcut
    (``shortcut_conv``), as in Matterport's and keras.applications' ResNet.
    ``width`` scales the STAGE_FILTERS widths.
    """
    f1, f2, f3 = (scaled_width(f, width) for f in STAGE_FILTERS[stage])
    conv = f"res{stage}{block}_branch"
    bn = f"bn{stage}{block}_branch"
    y = keras.layers.Conv2D(f1, 1, strides=strides, use_bias=True, name=conv + "2a")(x)
    y = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "2a")(y)
    y = keras.layers.Activation("relu", name=conv + "2a_relu")(y)
    y = keras.layers.Conv2D(f2, 3, padding="same", use_bias=True, name=conv + "2b")(y)
    y = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "2b")(y)
    y = keras.layers.Activation("relu", name=conv + "2b_relu")(y)
    y = keras.layers.Conv2D(f3, 1, use_bias=True, name=conv + "2c")(y)
    y = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "2c")(y)
    if shortcut_conv:
        shortcut = keras.layers.Conv2D(f3, 1, strides=strides, use_bias=True,
                                       name=conv + "1")(x)
        shortcut = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "1")(shortcut)
    else:
        shortcut = x
    y = keras.layers.Add(name=f"res{stage}{block}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def _basic_block(x, stage, block, strides, shortcut_conv, train_bn, bn_epsilon, width):
    """One ResNet-v1 basic block (3x3 -> 3x3, residual add, ReLU).

    ``strides`` applies to the first 3x3 conv and to the 1x1 projection shortcut
    (``shortcut_conv``); both 3x3 convs have BASIC_STAGE_FILTERS[stage] channels,
    times ``width``.
    Convs keep their bias, like the rest of this file, so every conv layer has the
    same two weights whatever the architecture.
    """
    filters = scaled_width(BASIC_STAGE_FILTERS[stage], width)
    conv = f"res{stage}{block}_branch"
    bn = f"bn{stage}{block}_branch"
    y = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=True,
                            name=conv + "2a")(x)
    y = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "2a")(y)
    y = keras.layers.Activation("relu", name=conv + "2a_relu")(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=True, name=conv + "2b")(y)
    y = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "2b")(y)
    if shortcut_conv:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=True,
                                       name=conv + "1")(x)
        shortcut = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name=bn + "1")(shortcut)
    else:
        shortcut = x
    y = keras.layers.Add(name=f"res{stage}{block}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def resnet_graph(input_image, architecture, stage5=True, train_bn=False,
                 pool_padding="same", bn_epsilon=1e-3, width=1.0):
    """ResNet-18/34/50/101 (v1, Matterport layout) on a functional image tensor.

    Args:
        input_image: [B, H, W, 3] tensor (molded image; H, W may be None).
        architecture: bottleneck nets "resnet50" (3, 4, 6, 3 blocks) or "resnet101"
            (3, 4, 23, 3); basic-block nets "resnet18" (2, 2, 2, 2) or "resnet34"
            (3, 4, 6, 3), cheap enough for CPU tests and demos. All share the stem
            and the layer names (basic blocks have no ``_branch2c``; stage 2 of a
            basic-block net has no ``res2a_branch1``, its shape does not change).
        stage5: build stage 5 (C5); False returns None in its place.
        train_bn: see :class:`BatchNorm`.
        pool_padding: "same" (Matterport: 3x3/2 max-pool with "same" padding) or
            "symmetric" (1 pixel of zero padding on every side, then a valid 3x3/2
            pool: keras.applications' and torchvision's layout). They differ only at
            the bottom/right border for even sizes.
        bn_epsilon: BatchNorm epsilon; 1e-3 for Matterport/Keras-2 weights,
            1.001e-5 to reproduce keras.applications exactly.
        width: width multiplier of every conv (the stem's 64 channels included),
            MobileNet style: 0.5 halves the channels and quarters the FLOPs and the
            weights. Pretrained weights exist only for 1.0; smaller widths are for
            training from scratch on CPU (the procedural demo).

    Returns: [C1, C2, C3, C4, C5], C1 the pooled stem output [B, H/4, W/4, 64 * width],
    C2..C5 with the channels of :func:`backbone_channels`.
    """
    if not float(width) > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    if architecture in RESNET_BLOCKS:
        block_fn, stage_blocks = _bottleneck, RESNET_BLOCKS[architecture]
    elif architecture in BASIC_RESNET_BLOCKS:
        block_fn, stage_blocks = _basic_block, BASIC_RESNET_BLOCKS[architecture]
    else:
        raise ValueError(f"architecture must be one of {list(ARCHITECTURES)}, "
                         f"got {architecture!r}")
    if pool_padding not in ("same", "symmetric"):
        raise ValueError(f"pool_padding must be 'same' or 'symmetric', got {pool_padding!r}")
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(input_image)
    x = keras.layers.Conv2D(scaled_width(64, width), 7, strides=2, use_bias=True,
                            name="conv1")(x)
    x = BatchNorm(train_bn=train_bn, epsilon=bn_epsilon, name="bn_conv1")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    if pool_padding == "same":
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    else:
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="pool1")(x)
    outputs = [x]
    stages = (2, 3, 4, 5) if stage5 else (2, 3, 4)
    for stage, blocks in zip(stages, stage_blocks):
        for i, block in enumerate(_block_letters(blocks)):
            strides = 2 if (i == 0 and stage > 2) else 1
            # A projection wherever the block changes the shape: the first block of
            # every bottleneck stage (64 -> 256 channels in stage 2) and of basic
            # stages 3-5 (res2a keeps 64 channels and stride 1: identity shortcut).
            projection = i == 0 and (block_fn is _bottleneck or stage > 2)
            x = block_fn(x, stage, block, strides, shortcut_conv=projection,
                         train_bn=train_bn, bn_epsilon=bn_epsilon, width=width)
        outputs.append(x)
    if not stage5:
        outputs.append(None)
    return outputs


def build_resnet_model(input_shape, architecture, train_bn=False, name="resnet_model",
                       **kwargs):
    """keras.Model mapping an image [B, H, W, 3] to [C2, C3, C4, C5].

    ``input_shape`` is [H, W, C] (H, W may be None); ``kwargs`` go to
    :func:`resnet_graph` (pool_padding, bn_epsilon, width). The Siamese model calls one
    instance on the query and on the references, so both share its weights.
    """
    image = keras.Input(list(input_shape), name=f"{name}_input")
    _, c2, c3, c4, c5 = resnet_graph(image, architecture, stage5=True, train_bn=train_bn,
                                     **kwargs)
    return keras.Model(image, [c2, c3, c4, c5], name=name)


def fpn_graph(C2, C3, C4, C5, pyramid_size=256, relu=False):
    """Feature pyramid on backbone maps C2..C5 -> [P2, P3, P4, P5, P6].

    Lateral 1x1 convs (fpn_c5p5 .. fpn_c2p2), top-down 2x nearest upsampling added to
    the next finer lateral, 3x3 "same" output convs (fpn_p2 .. fpn_p5), and
    P6 = 1x1 max-pool with stride 2 of P5 (no weights). Each P_l has
    ``pyramid_size`` channels and the stride of C_l (P6: 64).

    relu: follow every lateral and every output conv with ReLU (the Siamese FPN);
        the top-down path then adds rectified maps.
    """
    def conv(x, kernel, name):
        x = keras.layers.Conv2D(pyramid_size, kernel, padding="same", name=name)(x)
        if relu:
            x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
        return x

    p5 = conv(C5, 1, "fpn_c5p5")
    p4 = keras.layers.Add(name="fpn_p4add")([
        keras.layers.UpSampling2D(2, name="fpn_p5upsampled")(p5), conv(C4, 1, "fpn_c4p4")])
    p3 = keras.layers.Add(name="fpn_p3add")([
        keras.layers.UpSampling2D(2, name="fpn_p4upsampled")(p4), conv(C3, 1, "fpn_c3p3")])
    p2 = keras.layers.Add(name="fpn_p2add")([
        keras.layers.UpSampling2D(2, name="fpn_p3upsampled")(p3), conv(C2, 1, "fpn_c2p2")])
    p2 = conv(p2, 3, "fpn_p2")
    p3 = conv(p3, 3, "fpn_p3")
    p4 = conv(p4, 3, "fpn_p4")
    p5 = conv(p5, 3, "fpn_p5")
    p6 = keras.layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]


def build_fpn_model(channels=RESNET_CHANNELS, pyramid_size=256, relu=False,
                    name="fpn_model"):
    """keras.Model mapping [C2, C3, C4, C5] ([B, h_l, w_l, channels[l]], h_l, w_l may be
    None) to [P2, P3, P4, P5, P6] (see :func:`fpn_graph`).

    ``channels`` must match the backbone: ``backbone_channels(architecture)``, or the
    last dims of a :func:`build_resnet_model` model's outputs. The default fits
    resnet50/101 only.
    """
    if len(channels) != 4:
        raise ValueError(f"channels needs 4 values (C2..C5), got {channels!r}")
    inputs = [keras.Input([None, None, int(c)], name=f"{name}_input_C{level}")
              for level, c in zip((2, 3, 4, 5), channels)]
    return keras.Model(inputs, fpn_graph(*inputs, pyramid_size=pyramid_size, relu=relu),
                       name=name)
