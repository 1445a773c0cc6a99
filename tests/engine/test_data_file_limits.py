"""What a data file implies is checked before it is built: IDX headers that overflow, labels that would make
billions of classes or one, values NaN or beyond float32, CSV windows beyond the memory limit. No numpy warning
comes before the refusal."""

import struct
import warnings

import numpy as np
import pytest

from lumen.engine.data.files import MAX_CLASSES, check_out_of_data, csv_series, idx_file, image_folder, read_idx
from lumen.engine.errors import DataError


def write_idx(path, array, code):
    array = np.asarray(array)
    path.write_bytes(bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())
    return path


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_an_idx_header_of_2_to_the_64_values_is_refused(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">4I", *[65536] * 4))
    with pytest.raises(DataError, match="18,446,744,073,709,551,616 values, the file holds 0"):
        read_idx(path)


def test_non_finite_float_idx_values_are_refused_when_read(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.array([1.0, np.inf, 2.0], dtype=">f8"), 0x0E)
    with pytest.raises(DataError, match=r"the value at \(1,\), inf, is not a finite number"):
        read_idx(path)
    path = write_idx(tmp_path / "x.idx", np.array([1.0, 1e300], dtype=">f8"), 0x0E)
    with pytest.raises(DataError, match="beyond ±3.4e\\+38"):
        read_idx(path)


@pytest.mark.parametrize(
    "labels, code, message",
    [
        (np.array([0] * 9 + [MAX_CLASSES], dtype=">i4"), 0x0C, "more than 10,000"),
        (np.array([0.5] + [1.0] * 9, dtype=">f4"), 0x0D, "whole numbers"),
        (np.zeros(10, dtype=np.uint8), 0x08, "every label is 0, one class"),
        (np.array([-1] + [1] * 9, dtype=np.int8), 0x09, "labels must be ≥ 0, found -1"),
    ],
)
def test_labels_are_checked_before_classes_are_made(tmp_path, labels, code, message):
    images = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8), 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, code)
    with pytest.raises(DataError, match=message):
        idx_file(images)


def test_float_labels_that_are_whole_numbers_are_classes(tmp_path):
    images = write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((10, 4, 4), np.uint8), 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0.0, 2.0] * 5, dtype=">f4"), 0x0D)
    assert idx_file(images).classes == ("0", "1", "2")


def test_csv_windows_are_counted_against_the_limit_before_they_are_made(tmp_path, monkeypatch):
    path = tmp_path / "s.csv"
    path.write_text("1\n2\n" * 5000)
    monkeypatch.setenv("LUMEN_MEMORY_LIMIT", "1M")
    assert len(csv_series(path, steps=8).train_x) > 0  # 9,992 × 8 × 2 × 4 bytes = 625 KB: under 1 MiB, built
    with pytest.raises(DataError, match=r"9,968 windows of 32 steps × 1 column .*, more than Lumen's limit, 1.0 MiB"):
        csv_series(path, steps=32)


def test_csv_values_near_float32s_limit_standardise_without_overflow(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("".join(f"{v}\n" for v in [3e38, -3e38, 1.0, 2.0] * 20))
    data = csv_series(path, steps=4)
    assert np.isfinite(data.train_x.numpy()).all() and np.isfinite(data.train_y.numpy()).all()
    assert float(data.train_x.abs().max()) < 10


def test_a_run_folder_inside_the_image_folder_is_refused(tmp_path):
    (tmp_path / "pictures").mkdir()
    with pytest.raises(DataError, match="inside the image folder"):
        check_out_of_data(str(tmp_path / "pictures"), tmp_path / "pictures" / "runs" / "one")
    check_out_of_data(str(tmp_path / "pictures"), tmp_path / "run")
    check_out_of_data("mnist", tmp_path / "pictures")


def test_a_fake_picture_in_an_image_folder_is_named_not_its_buffer(tmp_path):
    """A text file called .png: the message named Pillow's in-memory buffer (<_io.BytesIO object at 0x…>)."""
    from PIL import Image

    for name in ("cats", "dogs"):
        (tmp_path / "pictures" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "pictures" / name / "real.png")
    (tmp_path / "pictures" / "dogs" / "fake.png").write_text("not a picture")
    with pytest.raises(DataError) as refused:
        image_folder(tmp_path / "pictures")
    message = str(refused.value)
    assert "fake.png is not an image Lumen can read" in message and "BytesIO" not in message
