"""Item 5: settings are parsed strictly and every numeric attribute is validated.

A bad value fails when the configuration is built, with the attribute named, instead
of switching a feature on or off by accident (``TRAIN_BN=no`` meant True, a negative
GRADIENT_CLIP_NORM meant no clipping) or training on NaN.
"""

import argparse
import math
import re

import pytest

from mrcnn.config import Config, ConfigError
from siamese_mrcnn.cli_inputs import CliError, build_config
from siamese_mrcnn.config import SmallConfig
from tests.robustness.conftest import data_flags, run_error


class Named(Config):
    NAME = "robust"


def _args(**kw):
    base = dict(config=None, name=None, images_per_gpu=None, steps_per_epoch=None,
                validation_steps=None, backbone=None, shots=None, anchor_scales=None,
                image_size=None, reference_size=None, set=None)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("text, expected", [
    ("TRAIN_BN=no", False), ("TRAIN_BN=false", False), ("TRAIN_BN=False", False),
    ("TRAIN_BN=0", False), ("TRAIN_BN=off", False),
    ("TRAIN_BN=yes", True), ("TRAIN_BN=true", True), ("TRAIN_BN=1", True),
    ("USE_MINI_MASK=NO", False)])
def test_switches_given_with_set_are_read_strictly(text, expected):
    config, _ = build_config(_args(set=[text]), extra={"GPU_COUNT": 1})
    key = text.split("=")[0]
    assert getattr(config, key) is expected


@pytest.mark.parametrize("text", ["TRAIN_BN=maybe", "TRAIN_BN=2", "TRAIN_BN=[]"])
def test_a_switch_that_is_not_a_boolean_is_an_error_naming_it(text):
    with pytest.raises(CliError, match=rf"--set {re.escape(text)}: TRAIN_BN is a switch"):
        build_config(_args(set=[text]))


@pytest.mark.parametrize("attribute, value, message", [
    ("LEARNING_RATE", math.nan, "must be finite"),
    ("LEARNING_RATE", 0.0, "must be > 0"),
    ("WEIGHT_DECAY", -1e-4, "must be >= 0"),
    ("LEARNING_MOMENTUM", 5, r"must be in \[0, 1\)"),
    ("LEARNING_MOMENTUM", 1.0, r"must be in \[0, 1\)"),
    ("GRADIENT_CLIP_NORM", -1.0, r"must be >= 0 \(0 or None switches clipping off\)"),
    ("GRADIENT_CLIP_NORM", math.inf, "must be finite"),
    ("LOSS_WEIGHTS", dict(Config.LOSS_WEIGHTS, mrcnn_mask_loss=-1.0),
     "weight of 'mrcnn_mask_loss' must be >= 0"),
    ("LOSS_WEIGHTS", dict(Config.LOSS_WEIGHTS, rpn_class_loss=math.nan),
     "weight of 'rpn_class_loss' must be finite"),
    ("MEAN_PIXEL", [math.nan, 116.8, 103.9], "entry 0 must be finite"),
    ("MEAN_PIXEL", [123.7, 300.0, 103.9], r"entry 1 must be in \[0, 255\]"),
    ("TRAIN_BN", "no", "must be True or False"),
    ("USE_MINI_MASK", 1, "must be True or False"),
    ("IMAGE_MIN_SCALE", -1.0, "must be >= 0"),
    ("BBOX_STD_DEV", [0.1, 0.1, 0.2, -0.2], "entry 3 must be > 0"),
    ("RPN_ANCHOR_RATIOS", [0.5, math.nan, 2], "entry 1 must be finite"),
    ("MINI_MASK_SHAPE", (56, 0), "entry 1 must be >= 1"),
    ("VALIDATION_STEPS", 1.5, "must be an integer"),
    ("NUM_CLASSES", "2", "must be an integer"),
    ("DETECTION_MIN_CONFIDENCE", math.nan, "must be finite"),
    ("RPN_NMS_THRESHOLD", 1.5, r"must be in \[0, 1\]"),
    ("IMAGES_PER_GPU", True, "must be an integer"),
    # These held before the issue and must keep holding.
    ("IMAGE_MAX_DIM", 1000, "must be divisible by 64"),
    ("ROI_POSITIVE_RATIO", 1.5, r"must be in \(0, 1\]"),
])
def test_bad_numbers_fail_at_construction_naming_the_attribute(attribute, value, message):
    bad = type("Bad", (Named,), {attribute: value})
    with pytest.raises(ConfigError, match=rf"Bad\.{attribute}: {message}"):
        bad()


def test_a_subclass_attribute_that_is_not_finite_is_refused():
    class Custom(Named):
        MY_MARGIN = [0.5, math.inf]

    with pytest.raises(ConfigError, match=r"Custom\.MY_MARGIN: must be finite, got inf"):
        Custom()


@pytest.mark.parametrize("attribute, value", [
    ("NUM_TARGETS", True), ("TARGET_MIN_DIM", -5), ("TARGET_MAX_DIM", 96.5)])
def test_siamese_settings_are_checked_too(attribute, value):
    with pytest.raises(ConfigError, match=rf"SmallConfig\.{attribute}: must be"):
        SmallConfig.from_dict({attribute: value})


def test_clipping_can_still_be_switched_off_on_purpose():
    assert type("NoClip", (Named,), {"GRADIENT_CLIP_NORM": None})().GRADIENT_CLIP_NORM is None
    assert type("NoClip", (Named,), {"GRADIENT_CLIP_NORM": 0})().GRADIENT_CLIP_NORM == 0


@pytest.mark.parametrize("setting, attribute", [
    ("GRADIENT_CLIP_NORM=-1", "GRADIENT_CLIP_NORM"),
    ("LEARNING_MOMENTUM=5", "LEARNING_MOMENTUM"),
    ("LEARNING_RATE=NaN", "LEARNING_RATE"),
    ("MEAN_PIXEL=[NaN,116,104]", "MEAN_PIXEL"),
    ("TRAIN_BN=perhaps", "TRAIN_BN")])
def test_the_cli_reports_a_bad_setting_in_one_line_before_building_a_model(
        capsys, tiny_coco, tmp_path, setting, attribute):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"not read: the setting is refused first")
    line = run_error(capsys, ["evaluate", *data_flags(tiny_coco), "--weights", str(weights),
                              "--set", setting])
    assert line.startswith("siamese-mrcnn: error: ") and attribute in line
    assert "w.h5" not in line
