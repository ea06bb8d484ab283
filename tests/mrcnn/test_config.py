"""mrcnn.config.Config: defaults, derived attributes, validation, serialisation."""

import json

import numpy as np
import pytest

from mrcnn.config import Config, ConfigError


class NamedConfig(Config):
    NAME = "unit"


def test_defaults_and_derived_attributes_follow_matterport():
    config = NamedConfig()
    assert config.BATCH_SIZE == 2  # IMAGES_PER_GPU 2 x GPU_COUNT 1
    assert config.IMAGE_SHAPE.tolist() == [1024, 1024, 3]
    assert config.IMAGE_META_SIZE == 12 + 1
    assert config.BACKBONE == "resnet101"
    assert config.DETECTION_NMS_THRESHOLD == 0.3
    assert config.RPN_ANCHOR_SCALES == (32, 64, 128, 256, 512)
    assert config.MEAN_PIXEL == [123.7, 116.8, 103.9]
    assert sorted(config.LOSS_WEIGHTS.values()) == [1.0] * 5


def test_subclass_overrides_and_crop_mode_shape():
    class Crop(Config):
        NAME = "crop"
        IMAGE_RESIZE_MODE = "crop"
        IMAGE_MIN_DIM = 256
        IMAGES_PER_GPU = 3
        GPU_COUNT = 2
        NUM_CLASSES = 5

    config = Crop()
    assert config.BATCH_SIZE == 6
    assert config.IMAGE_SHAPE.tolist() == [256, 256, 3]
    assert config.IMAGE_META_SIZE == 17


def test_display_prints_every_public_attribute_sorted(capsys):
    NamedConfig().display()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln and ln[0].isupper()]
    keys = [ln.split()[0] for ln in lines[1:]]  # first line is the heading
    assert keys == sorted(keys)
    for key in ("NAME", "BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE", "LEARNING_RATE",
                "RPN_ANCHOR_SCALES", "USE_MINI_MASK", "GRADIENT_CLIP_NORM"):
        assert key in keys
    assert len(keys) == len({a for a in dir(NamedConfig()) if a.isupper()}) >= 45


@pytest.mark.parametrize("overrides, attribute", [
    ({"NAME": None}, "NAME"),
    ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM"),
    ({"RPN_ANCHOR_SCALES": (32, 64, 128)}, "RPN_ANCHOR_SCALES"),
    ({"NUM_CLASSES": 0}, "NUM_CLASSES"),
    ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE"),
    ({"MASK_SHAPE": [56, 56]}, "MASK_SHAPE"),
    ({"ROI_POSITIVE_RATIO": 1.5}, "ROI_POSITIVE_RATIO"),
    ({"MEAN_PIXEL": [1.0, 2.0]}, "MEAN_PIXEL"),
    ({"BACKBONE": "vgg16"}, "BACKBONE"),
    ({"LOSS_WEIGHTS": {"rpn_class": 1.0}}, "LOSS_WEIGHTS"),
    ({"IMAGES_PER_GPU": 0}, "IMAGES_PER_GPU"),
    ({"RPN_CONV_SIZE": 0}, "RPN_CONV_SIZE"),
    ({"OPTIMIZER": "rmsprop"}, "OPTIMIZER"),
    ({"BACKBONE_WIDTH": 0.0}, "BACKBONE_WIDTH"),
])
def test_invalid_settings_fail_at_construction_naming_the_attribute(overrides, attribute):
    bad = type("Bad", (NamedConfig,), overrides)
    with pytest.raises(ConfigError, match=attribute):
        bad()


def test_callable_backbone_requires_shape_function():
    bad = type("Bad", (NamedConfig,), {"BACKBONE": lambda *a, **k: None})
    with pytest.raises(ConfigError, match="COMPUTE_BACKBONE_SHAPE"):
        bad()


def test_dict_and_json_round_trip(tmp_path):
    class Custom(NamedConfig):
        NUM_CLASSES = 4
        IMAGE_MAX_DIM = 512
        IMAGE_MIN_DIM = 400
        RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
        LOSS_WEIGHTS = dict(NamedConfig.LOSS_WEIGHTS, mrcnn_mask_loss=2.0)

    config = Custom()
    restored = NamedConfig.from_dict(config.to_dict())
    assert restored.to_dict() == config.to_dict()
    assert restored.IMAGE_SHAPE.tolist() == [512, 512, 3]
    assert restored.RPN_ANCHOR_SCALES == (8, 16, 32, 64, 128)  # tuples stay tuples

    path = tmp_path / "config.json"
    config.save(path)
    data = json.loads(path.read_text())
    assert data["config"]["NUM_CLASSES"] == 4
    loaded = NamedConfig.load(path)
    assert loaded.LOSS_WEIGHTS["mrcnn_mask_loss"] == 2.0
    assert loaded.IMAGE_META_SIZE == 16
    assert isinstance(loaded.IMAGE_SHAPE, np.ndarray)


def test_from_dict_rejects_unknown_keys_and_load_names_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="NOT_A_SETTING"):
        NamedConfig.from_dict({"NOT_A_SETTING": 1})
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json"):
        NamedConfig.load(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        NamedConfig.load(tmp_path / "missing.json")


def test_the_config_json_beside_a_checkpoint(tmp_path):
    from mrcnn.config import read_run_config, run_config_path
    checkpoint = tmp_path / "run" / "mask_rcnn_tiny_0002.h5"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    assert run_config_path(str(checkpoint)) is None and run_config_path(None) is None
    assert read_run_config(str(checkpoint)) == (None, None)

    class Saved(Config):
        NAME = "saved"
        NUM_CLASSES = 3
        IMAGES_PER_GPU = 1
    Saved().save(str(checkpoint.parent / "config.json"), run={"backend": "jax"})
    values, path = read_run_config(str(checkpoint))
    assert path == str(checkpoint.parent / "config.json") == run_config_path(str(checkpoint))
    assert values["NUM_CLASSES"] == 3 and values["IMAGES_PER_GPU"] == 1
    rebuilt = Config.from_dict(values)
    assert rebuilt.NUM_CLASSES == 3 and rebuilt.BATCH_SIZE == 1
    (checkpoint.parent / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json"):
        read_run_config(str(checkpoint))
