"""Item 4: one image loader, tested per file mode, the same in every path.

Every mode is written by the test from a known 8-bit picture, so the expected RGB
uint8 array is known exactly: the dataset loader (training and evaluation),
``siamese-mrcnn detect``'s reader and ``read_image_file`` must all return it. Before
the issue a 16-bit PNG reached the network as 0..65535 (training, evaluation) or
clipped to white (detect), and a CMYK file lost its K channel as "alpha".
"""

import re
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from mrcnn import utils
from mrcnn._dataset import read_image_file
from mrcnn.config import Config
from mrcnn.data import load_image_gt
from siamese_mrcnn.cli_inputs import CliError, read_image

H, W = 12, 16
RGB = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
GRAY = RGB[..., 0]


def write_png16(path, array):
    """A 16-bit PNG (grayscale [H, W] or RGB [H, W, 3]) written byte by byte:
    Pillow cannot write 16-bit colour PNGs."""
    a = np.asarray(array, dtype=">u2")
    colour_type = 0 if a.ndim == 2 else 2
    rows = b"".join(b"\x00" + a[y].tobytes() for y in range(a.shape[0]))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", a.shape[1], a.shape[0], 16, colour_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def gray3(gray):
    return np.repeat(gray[..., None], 3, axis=-1)


def palette_image():
    """A palette image of RGB quantised to at most 64 colours, and its RGB pixels."""
    paletted = Image.fromarray(RGB).quantize(64)
    return paletted, np.asarray(paletted.convert("RGB"))


# name -> (write(path), expected RGB uint8 [H, W, 3])
def _cases():
    low = np.random.default_rng(8).integers(0, 256, (H, W, 3)).astype(np.uint16)
    paletted, paletted_rgb = palette_image()
    unit_float = np.random.default_rng(9).random((H, W)).astype(np.float32)
    levels_float = (unit_float * 200.0 + 30.0).astype(np.float32)
    colour_float = np.random.default_rng(10).random((H, W, 3)).astype(np.float32)
    bits = GRAY > 128
    return {
        # Held before the issue:
        "gray.png": (lambda p: Image.fromarray(GRAY, "L").save(p), gray3(GRAY)),
        "gray_alpha.png": (lambda p: Image.fromarray(np.stack([GRAY, RGB[..., 1]], -1),
                                                     "LA").save(p), gray3(GRAY)),
        "rgba.png": (lambda p: Image.fromarray(np.dstack([RGB, GRAY]), "RGBA").save(p), RGB),
        "palette.png": (lambda p: paletted.save(p), paletted_rgb),
        "palette_transparent.png": (lambda p: paletted.save(p, transparency=0), paletted_rgb),
        "rgb16.png": (lambda p: write_png16(p, RGB.astype(np.uint16) * 256 + low), RGB),
        # Silently wrong before the issue:
        "cmyk.tif": (lambda p: Image.fromarray(RGB).convert("CMYK").save(p), RGB),
        "gray16.png": (lambda p: Image.fromarray(
            (GRAY.astype(np.uint16) * 256 + 200).astype(np.uint16)).save(p), gray3(GRAY)),
        "bilevel.png": (lambda p: Image.fromarray(bits).save(p),
                        gray3(bits.astype(np.uint8) * 255)),
        "float_unit.tif": (lambda p: Image.fromarray(unit_float, "F").save(p),
                           gray3(np.round(unit_float.astype(np.float64) * 255).astype(np.uint8))),
        "float_levels.tif": (lambda p: Image.fromarray(levels_float, "F").save(p),
                             gray3(np.round(levels_float).astype(np.uint8))),
        "float_rgb.tif": (lambda p: tifffile.imwrite(p, colour_float, photometric="rgb"),
                          np.round(colour_float.astype(np.float64) * 255).astype(np.uint8)),
    }


CASES = _cases()


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modes")
    paths = {}
    for name, (write, _) in CASES.items():
        paths[name] = str(folder / name)
        write(paths[name])
    return paths


def _file_dataset(paths):
    dataset = utils.Dataset()
    dataset.add_class("files", 1, "thing")
    for i, path in enumerate(paths):
        dataset.add_image("files", i, path)
    dataset.prepare()
    return dataset


@pytest.mark.parametrize("name", list(CASES))
def test_every_mode_reads_as_the_documented_rgb_uint8_in_every_path(image_files, name):
    path = image_files[name]
    expected = CASES[name][1]
    from_dataset = _file_dataset([path]).load_image(0)  # training and evaluation
    from_cli = read_image(path, "query image")  # siamese-mrcnn detect
    for got in (from_dataset, from_cli, read_image_file(path)):
        assert got.dtype == np.uint8 and got.shape == (H, W, 3)
        np.testing.assert_array_equal(got, expected)


def test_a_16_bit_query_is_not_white_and_trains_as_its_8_bit_twin(image_files, tmp_path):
    """The training path (load_image_gt) of a 16-bit image equals that of the same
    picture in 8 bits, and detect's reader does not clip it to white."""
    eight = str(tmp_path / "gray8.png")
    Image.fromarray(GRAY, "L").save(eight)

    class OneInstance(utils.Dataset):
        def load_mask(self, image_id):
            mask = np.zeros((H, W, 1), bool)
            mask[2:9, 3:12] = True
            return mask, np.array([1], np.int32)

    dataset = OneInstance()
    dataset.add_class("files", 1, "thing")
    for i, path in enumerate([image_files["gray16.png"], eight]):
        dataset.add_image("files", i, path)
    dataset.prepare()
    config = type("Cfg", (Config,), {"NAME": "modes", "NUM_CLASSES": 2, "IMAGE_MIN_DIM": 64,
                                     "IMAGE_MAX_DIM": 64})()
    sixteen_gt = load_image_gt(dataset, config, 0, rng=np.random.default_rng(0))
    eight_gt = load_image_gt(dataset, config, 1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(sixteen_gt[0], eight_gt[0])
    query = read_image(image_files["gray16.png"], "query image")
    assert (query == 255).mean() < 0.1  # clipped to 255, nearly every pixel was white
    np.testing.assert_array_equal(query, gray3(GRAY))


@pytest.mark.parametrize("name, write, reason", [
    ("nan.tif", lambda p: Image.fromarray(np.full((H, W), np.nan, np.float32), "F").save(p),
     "floating-point image with NaN or infinite values"),
    ("hdr.tif", lambda p: Image.fromarray(np.linspace(0, 1000, H * W, dtype=np.float32)
                                          .reshape(H, W), "F").save(p),
     r"floating-point image with values in \[0, 1000\]; expected \[0, 1\] or \[0, 255\]"),
    ("int32.tif", lambda p: Image.fromarray(GRAY).convert("I").save(p),
     "32-bit integer TIFF image: its value range is undefined"),
])
def test_modes_without_a_defined_conversion_are_refused_naming_the_file(tmp_path, name, write,
                                                                          reason):
    path = str(tmp_path / name)
    write(path)
    with pytest.raises(utils.ImageLoadError, match=rf"image 0: {re.escape(path)}: {reason}"):
        _file_dataset([path]).load_image(0)
    with pytest.raises(CliError, match=rf"^query image {re.escape(path)}: {reason}"):
        read_image(path, "query image")
