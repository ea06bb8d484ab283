"""Mask R-CNN configuration.

Configure a run the Matterport way: subclass :class:`Config` and override the
UPPER_CASE attributes you need::

    class ShapesConfig(Config):
        NAME = "shapes"
        NUM_CLASSES = 1 + 3
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 128

    config = ShapesConfig()
    config.display()

Derived attributes (``BATCH_SIZE``, ``IMAGE_SHAPE``, ``IMAGE_META_SIZE``) are
computed in ``__init__`` and the whole configuration is validated there, so an
inconsistent setting fails at construction with an error naming the attribute.

A configuration round-trips through ``to_dict()`` / ``from_dict()`` and through
JSON (``save()`` / ``load()``); training stores it beside its checkpoints.
"""

import json
import math
import os

import numpy as np


class ConfigError(ValueError):
    """An attribute of a :class:`Config` has an invalid value."""


# Integer attributes that must be >= 1.
_POSITIVE_INTEGER_ATTRIBUTES = (
    "GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "NUM_CLASSES",
    "TRAIN_ROIS_PER_IMAGE", "MAX_GT_INSTANCES", "DETECTION_MAX_INSTANCES",
    "RPN_TRAIN_ANCHORS_PER_IMAGE", "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING",
    "POST_NMS_ROIS_INFERENCE", "POOL_SIZE", "MASK_POOL_SIZE", "RPN_ANCHOR_STRIDE",
    "IMAGE_CHANNEL_COUNT", "MASK_HEAD_CONV_SIZE", "FPN_CLASSIF_FC_LAYERS_SIZE",
    "TOP_DOWN_PYRAMID_SIZE", "RPN_CONV_SIZE", "IMAGE_MIN_DIM", "IMAGE_MAX_DIM")
# Switches: a real bool only. A string such as "no" is truthy, so it would
# silently switch the setting on.
_SWITCH_ATTRIBUTES = ("USE_MINI_MASK", "USE_RPN_ROIS", "TRAIN_BN")


class Config:
    """Base configuration. Every attribute and default follows Matterport's Mask R-CNN."""

    # Name of the configuration; used in log directory and checkpoint names. Required.
    NAME = None

    # GPUs (or, more generally, replicas) to train on and images per replica.
    # With a tf.distribute strategy, GPU_COUNT is the number of replicas in sync.
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2

    # Training steps per epoch and validation steps at the end of each epoch.
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    # Backbone: "resnet50", "resnet101" (bottleneck ResNets, ImageNet weights exist),
    # "resnet18", "resnet34" (basic-block ResNets, C2..C5 with 64..512 channels, for
    # small CPU models), or a callable (input_image, stage5, train_bn) -> [C1, ..., C5];
    # a callable also needs COMPUTE_BACKBONE_SHAPE.
    BACKBONE = "resnet101"
    COMPUTE_BACKBONE_SHAPE = None
    # Width multiplier of every ResNet conv (0.5 halves the channels): 1.0 for
    # pretrained weights, less for small models trained from scratch on a CPU.
    BACKBONE_WIDTH = 1.0

    # Strides of the FPN levels P2..P6 relative to the input image.
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]

    # Width of the fully connected layers of the classifier head.
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024

    # Channels of the mask head's convolutions (256 in Matterport and the paper; a
    # smaller value only to make tiny CPU models cheap: the head runs on every ROI).
    MASK_HEAD_CONV_SIZE = 256

    # Channels of the RPN's shared 3x3 conv ``rpn_conv_shared`` (512 in Matterport and
    # the paper; smaller only for CPU-sized models: on Siamese Mask R-CNN's 384-channel
    # matched maps it is the costliest conv at small image sizes).
    RPN_CONV_SIZE = 512

    # Channels of the top-down pyramid (FPN) layers.
    TOP_DOWN_PYRAMID_SIZE = 256

    # Number of classes including background.
    NUM_CLASSES = 1

    # Anchor side lengths in pixels, one per pyramid level, and aspect ratios (w/h).
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]
    # Anchors at every feature map cell (1) or every other cell (2), ...
    RPN_ANCHOR_STRIDE = 1

    # Non-max suppression threshold on RPN proposals.
    RPN_NMS_THRESHOLD = 0.7
    # Anchors per image used to train the RPN.
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    # Top anchors by score kept before non-max suppression.
    PRE_NMS_LIMIT = 6000
    # Proposals kept after non-max suppression.
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    # Store instance masks resized to MINI_MASK_SHAPE inside their box (saves memory).
    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)

    # Input resizing: "none", "square", "pad64" or "crop" (see utils.resize_image).
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    IMAGE_MIN_SCALE = 0
    IMAGE_CHANNEL_COUNT = 3
    # How images, reference crops and masks are resampled (utils.resize_image and the
    # mask helpers): "corrected" (pixel-centre bilinear, edges extended, rounded) or
    # "faithful" (the original Siamese Mask R-CNN's scikit-image/SciPy calls: zeros
    # blended in at borders, truncated to uint8; see mrcnn._faithful).
    RESAMPLING = "corrected"

    # Per-channel mean (RGB) subtracted from input images.
    MEAN_PIXEL = [123.7, 116.8, 103.9]

    # ROIs per image fed to the classifier and mask heads in training.
    TRAIN_ROIS_PER_IMAGE = 200
    # Fraction of those ROIs that are positive.
    ROI_POSITIVE_RATIO = 0.33

    # ROI align output sizes of the classifier and mask heads.
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14
    # Output mask size; changing it requires changing the mask head.
    MASK_SHAPE = [28, 28]

    # Ground-truth instances per image kept in training.
    MAX_GT_INSTANCES = 100

    # Box refinement standard deviations for the RPN and the final detections.
    RPN_BBOX_STD_DEV = [0.1, 0.1, 0.2, 0.2]
    BBOX_STD_DEV = [0.1, 0.1, 0.2, 0.2]

    # Final detections per image, their minimum score and per-class NMS threshold.
    DETECTION_MAX_INSTANCES = 100
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3

    # Optimiser: "SGD" (with momentum LEARNING_MOMENTUM, as in the paper) or "Adam"
    # (Keras defaults besides the learning rate; faster from random weights).
    OPTIMIZER = "SGD"
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9
    # L2 penalty on trainable weights other than BatchNorm gamma/beta.
    WEIGHT_DECAY = 0.0001

    # Weights of the five losses.
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }

    # Train the heads on RPN proposals (True) or on externally given ROIs (False).
    USE_RPN_ROIS = True

    # Train BatchNorm statistics (False freezes them: small batches make them useless).
    TRAIN_BN = False

    # Gradient clipping by global norm (0 or None: no clipping).
    GRADIENT_CLIP_NORM = 5.0

    # Mixed precision: "float32" or "mixed_float16" (GPU only speeds up with it).
    DTYPE_POLICY = "float32"

    def __init__(self):
        # Validated before deriving: a bad value must be named, not fail in arithmetic.
        self.validate()
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            self.IMAGE_SHAPE = np.array(
                [self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM, self.IMAGE_CHANNEL_COUNT])
        else:
            self.IMAGE_SHAPE = np.array(
                [self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM, self.IMAGE_CHANNEL_COUNT])
        # image_id(1) + original_shape(3) + image_shape(3) + window(4) + scale(1)
        # + active_class_ids(NUM_CLASSES)
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    # ------------------------------------------------------------------ validation
    def validate(self):
        """Check the configuration; raise :class:`ConfigError` naming the bad attribute.

        Every numeric attribute is checked for type, finiteness and range (integers
        for counts and sizes; [0, 1] for thresholds; LEARNING_RATE > 0,
        LEARNING_MOMENTUM in [0, 1), WEIGHT_DECAY >= 0, LOSS_WEIGHTS >= 0,
        GRADIENT_CLIP_NORM > 0 or 0/None for no clipping, MEAN_PIXEL in [0, 255]);
        switches (TRAIN_BN, USE_MINI_MASK, USE_RPN_ROIS) must be bools. Any other
        numeric attribute, a subclass's included, must be finite.
        """
        def fail(name, msg):
            raise ConfigError(f"{type(self).__name__}.{name}: {msg}")

        def number(name, low=None, high=None, low_open=False, high_open=False,
                   integer=False, value=None, what=None):
            value = getattr(self, name) if value is None else value
            problem = number_problem(value, low, high, low_open, high_open, integer)
            if problem:
                fail(name, f"{problem}, got {value!r}" if what is None
                     else f"{what} {problem}, got {value!r}")
            return value

        def numbers(name, count=None, **limits):
            values = getattr(self, name)
            if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
                fail(name, f"must be a list of numbers, got {values!r}")
            if count is not None and len(values) != count:
                fail(name, f"needs {count} values, got {len(values)}")
            for i, v in enumerate(values):
                number(name, value=v, what=f"entry {i}", **limits)
            return values

        if not self.NAME or not isinstance(self.NAME, str):
            fail("NAME", "must be set to a non-empty string (subclass Config and set NAME)")
        for name in _POSITIVE_INTEGER_ATTRIBUTES:
            number(name, low=1, integer=True)
        number("VALIDATION_STEPS", low=0, integer=True)
        for name in _SWITCH_ATTRIBUTES:
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                fail(name, f"must be True or False, got {value!r}")
        if isinstance(self.BACKBONE, str):
            if self.BACKBONE not in ("resnet18", "resnet34", "resnet50", "resnet101"):
                fail("BACKBONE", f"must be 'resnet18', 'resnet34', 'resnet50', 'resnet101' "
                                 f"or a callable, got {self.BACKBONE!r}")
        elif callable(self.BACKBONE):
            if not callable(self.COMPUTE_BACKBONE_SHAPE):
                fail("COMPUTE_BACKBONE_SHAPE",
                     "a callable BACKBONE needs a callable COMPUTE_BACKBONE_SHAPE")
        else:
            fail("BACKBONE", f"must be a string or a callable, got {self.BACKBONE!r}")
        number("BACKBONE_WIDTH", low=0, high=4, low_open=True)
        numbers("BACKBONE_STRIDES", low=1, integer=True)
        numbers("RPN_ANCHOR_SCALES", low=0, low_open=True)
        numbers("RPN_ANCHOR_RATIOS", low=0, low_open=True)
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            fail("RPN_ANCHOR_SCALES",
                 f"needs one scale per pyramid level: {len(self.RPN_ANCHOR_SCALES)} scales "
                 f"but {len(self.BACKBONE_STRIDES)} BACKBONE_STRIDES")
        if list(self.BACKBONE_STRIDES) != sorted(self.BACKBONE_STRIDES):
            fail("BACKBONE_STRIDES", f"must be increasing, got {self.BACKBONE_STRIDES}")
        if self.IMAGE_RESIZE_MODE not in ("none", "square", "pad64", "crop"):
            fail("IMAGE_RESIZE_MODE",
                 f"must be one of none, square, pad64, crop; got {self.IMAGE_RESIZE_MODE!r}")
        if self.IMAGE_RESIZE_MODE in ("square", "pad64", "crop"):
            dim = self.IMAGE_MIN_DIM if self.IMAGE_RESIZE_MODE == "crop" else self.IMAGE_MAX_DIM
            name = "IMAGE_MIN_DIM" if self.IMAGE_RESIZE_MODE == "crop" else "IMAGE_MAX_DIM"
            if dim % 64:
                fail(name, f"must be divisible by 64 (the coarsest FPN stride), got {dim}")
        if self.RESAMPLING not in ("corrected", "faithful"):
            fail("RESAMPLING", f"must be 'corrected' or 'faithful', got {self.RESAMPLING!r}")
        if self.IMAGE_MIN_DIM and self.IMAGE_MAX_DIM and self.IMAGE_MIN_DIM > self.IMAGE_MAX_DIM:
            fail("IMAGE_MIN_DIM", f"{self.IMAGE_MIN_DIM} exceeds IMAGE_MAX_DIM {self.IMAGE_MAX_DIM}")
        number("IMAGE_MIN_SCALE", low=0)
        numbers("MINI_MASK_SHAPE", count=2, low=1, integer=True)
        numbers("MEAN_PIXEL", count=self.IMAGE_CHANNEL_COUNT, low=0, high=255)
        number("ROI_POSITIVE_RATIO", low=0, high=1, low_open=True)
        for name in ("RPN_NMS_THRESHOLD", "DETECTION_NMS_THRESHOLD", "DETECTION_MIN_CONFIDENCE"):
            number(name, low=0, high=1)
        if len(self.MASK_SHAPE) != 2 or list(self.MASK_SHAPE) != [2 * self.MASK_POOL_SIZE] * 2:
            fail("MASK_SHAPE", f"the mask head upsamples MASK_POOL_SIZE x2: expected "
                               f"{[2 * self.MASK_POOL_SIZE] * 2}, got {list(self.MASK_SHAPE)}")
        for name in ("RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
            numbers(name, count=4, low=0, low_open=True)
        expected_losses = {"rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss",
                           "mrcnn_bbox_loss", "mrcnn_mask_loss"}
        if not isinstance(self.LOSS_WEIGHTS, dict):
            fail("LOSS_WEIGHTS", f"must be a dict {{loss name: weight}}, got "
                                 f"{self.LOSS_WEIGHTS!r}")
        unknown = set(self.LOSS_WEIGHTS) - expected_losses
        if unknown:
            fail("LOSS_WEIGHTS", f"unknown loss names {sorted(unknown)}; "
                                 f"known: {sorted(expected_losses)}")
        for loss, weight in self.LOSS_WEIGHTS.items():
            number("LOSS_WEIGHTS", low=0, value=weight, what=f"weight of {loss!r}")
        if str(self.OPTIMIZER).lower() not in ("sgd", "adam"):
            fail("OPTIMIZER", f"must be SGD or Adam, got {self.OPTIMIZER!r}")
        if self.DTYPE_POLICY not in ("float32", "mixed_float16", "mixed_bfloat16"):
            fail("DTYPE_POLICY", f"must be float32, mixed_float16 or mixed_bfloat16, "
                                 f"got {self.DTYPE_POLICY!r}")
        number("LEARNING_RATE", low=0, low_open=True)
        number("LEARNING_MOMENTUM", low=0, high=1, high_open=True)
        number("WEIGHT_DECAY", low=0)
        if self.GRADIENT_CLIP_NORM is not None:
            # 0 (or None) is the documented way to switch clipping off; a negative norm
            # used to switch it off silently.
            problem = number_problem(self.GRADIENT_CLIP_NORM, low=0)
            if problem:
                fail("GRADIENT_CLIP_NORM", f"{problem} (0 or None switches clipping off), "
                                           f"got {self.GRADIENT_CLIP_NORM!r}")
        # Whatever else is numeric (a subclass's own attributes too) must be finite.
        for name, value in self._public_attributes().items():
            bad = _first_non_finite(value)
            if bad is not None:
                fail(name, f"must be finite, got {bad!r}")

    # ------------------------------------------------------------------ inspection
    def _public_attributes(self):
        names = sorted(a for a in dir(self) if a.isupper() and not a.startswith("_"))
        return {a: getattr(self, a) for a in names if not callable(getattr(self, a))}

    def display(self):
        """Print every public, non-callable attribute, sorted by name."""
        print("\nConfigurations:")
        for key, value in self._public_attributes().items():
            print(f"{key:30} {value}")
        print("\n")

    def to_dict(self):
        """JSON-friendly dict of all public attributes (numpy arrays become lists).

        A callable BACKBONE is stored by its qualified name and cannot be restored.
        """
        out = {}
        for key, value in self._public_attributes().items():
            out[key] = _to_jsonable(value)
        for key in ("BACKBONE", "COMPUTE_BACKBONE_SHAPE"):
            value = getattr(self, key)
            if callable(value):
                out[key] = f"<callable {getattr(value, '__module__', '?')}." \
                           f"{getattr(value, '__qualname__', repr(value))}>"
        return out

    @classmethod
    def from_dict(cls, values):
        """Build a configuration of this class with ``values`` overriding the defaults.

        Derived attributes (BATCH_SIZE, IMAGE_SHAPE, IMAGE_META_SIZE) in ``values`` are
        ignored: they are recomputed from the others. Unknown keys raise ConfigError.
        """
        derived = {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"}
        overrides = {}
        for key, value in values.items():
            if key in derived:
                continue
            if not hasattr(cls, key):
                raise ConfigError(f"{cls.__name__}: unknown configuration attribute {key!r}")
            if isinstance(value, str) and value.startswith("<callable "):
                raise ConfigError(f"{cls.__name__}.{key}: a callable ({value}) cannot be "
                                  f"restored from a dict; subclass the config instead")
            default = getattr(cls, key)
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            overrides[key] = value
        subclass = type(cls.__name__, (cls,), overrides)
        config = subclass()
        return config

    def save(self, path, run=None):
        """Write the configuration as JSON to ``path`` (atomically).

        ``run``: optional dict of facts about the run stored beside the configuration
        under the key "run" (``MaskRCNN.train`` records the Keras backend and
        version); :meth:`load` ignores it.
        """
        data = {"class": type(self).__name__, "config": self.to_dict()}
        if run:
            data["run"] = _to_jsonable(dict(run))
        from mrcnn.files import write_json
        write_json(path, data)

    @classmethod
    def load(cls, path):
        """Read a configuration written by :meth:`save`, as an instance of this class."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not a valid JSON config file ({e})") from None
        return cls.from_dict(data.get("config", data))

    def __repr__(self):
        return f"<{type(self).__name__} NAME={self.NAME!r}>"


def number_problem(value, low=None, high=None, low_open=False, high_open=False,
                    integer=False):
    """What is wrong with ``value`` as a number in the given range, or None.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``integer``
    also requires an int. Bools are not numbers here. For subclasses' ``validate``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        return "must be an integer" if integer else "must be a number"
    if integer and not isinstance(value, (int, np.integer)):
        return "must be an integer"
    if not math.isfinite(float(value)):
        return "must be finite"
    if low is not None and (value <= low if low_open else value < low):
        return f"must be {'>' if low_open else '>='} {low}" + (
            "" if high is None else f" and {'<' if high_open else '<='} {high}")
    if high is not None and (value >= high if high_open else value > high):
        return (f"must be {'<' if high_open else '<='} {high}" if low is None else
                f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")
    return None


def _first_non_finite(value):
    """The first NaN or infinite float inside ``value`` (number, list, tuple, dict,
    array), or None."""
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(float(value)) else value
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        bad = value[~np.isfinite(value)]
        return bad.flat[0] if bad.size else None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            bad = _first_non_finite(item)
            if bad is not None:
                return bad
    return None


def _to_jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# ---------------------------------------------------------------------- run config files
RUN_CONFIG_FILE = "config.json"  # what MaskRCNN.train writes beside its checkpoints


def run_config_path(weights_path):
    """The ``config.json`` a training run wrote beside the checkpoint ``weights_path``,
    or None when there is none (or no path)."""
    if not weights_path:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(weights_path)), RUN_CONFIG_FILE)
    return path if os.path.isfile(path) else None


def read_run_config(weights_path):
    """(attribute values dict, path) of the ``config.json`` beside a checkpoint, or
    (None, None) when there is none. ConfigError naming the file when it does not
    parse. Build the configuration with ``SomeConfig.from_dict(values)``."""
    path = run_config_path(weights_path)
    if path is None:
        return None, None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        values = dict(data.get("config", data))
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f"cannot read the run configuration {path}: {e}") from None
    return values, path

