"""Reading users' image files: good ones decode, bad ones get a clear message before any harm."""

from pathlib import Path

import numpy as np
import pytest

from lumen.gui.image_io import ImageLoadError, read_image
from tests.support import write_png

SAMPLES = Path(__file__).resolve().parents[2] / "lumen" / "resources" / "samples"


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    write_png(path, 20_000, 20_000)
    return path


def test_sample_digit_decodes_to_rgba():
    pixels = read_image(SAMPLES / "digit_3.png")
    assert pixels.shape == (112, 112, 4) and pixels.dtype == np.uint8
    assert pixels[0, 0, :3].tolist() == [255, 255, 255] and pixels[..., :3].min() < 50  # dark ink, white paper
    assert (pixels[..., 3] == 255).all()


def test_large_image_is_decoded_scaled_down(tmp_path):
    write_png(tmp_path / "big.png", 3000, 1500)
    assert read_image(tmp_path / "big.png").shape == (512, 1024, 4)


def test_a_full_resolution_colour_photo_opens(tmp_path):
    """67 megapixels of colour decode to 270 MB, above Qt's own 256 MB limit, yet under Lumen's one MAX_PIXELS."""
    from PIL import Image

    Image.new("RGB", (8200, 8200), (200, 40, 10)).save(tmp_path / "photo.png", compress_level=1)
    pixels = read_image(tmp_path / "photo.png")
    assert pixels.shape == (1024, 1024, 4) and tuple(pixels[0, 0]) == (200, 40, 10, 255)


def test_enormous_image_is_refused_from_its_header(huge_png):
    with pytest.raises(ImageLoadError, match=r"huge.png is 20,000 × 20,000 pixels; Lumen opens images under 100"):
        read_image(huge_png)


def test_bad_files_get_clear_messages(tmp_path):
    (tmp_path / "notes.png").write_text("these are my lecture notes, not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    good = (SAMPLES / "digit_0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    cases = {
        "notes.png": "notes.png is not an image Lumen can read",
        "empty.jpg": "empty.jpg is empty (0 bytes)",
        "cut.png": "cut.png could not be decoded",
        "missing.png": "missing.png is not a file",
    }
    for name, message in cases.items():
        with pytest.raises(ImageLoadError) as error:
            read_image(tmp_path / name)
        assert message in str(error.value)
