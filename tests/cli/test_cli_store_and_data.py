"""Hostile input to the run store and to data files, on the command line: a damaged, read-only or locked store,
data files whose header implies more than the memory budget, IDX headers that overflow, data that makes no
sense. Each ends in one ``lumen:`` line (or, for the store during ``train``, one warning and a saved run), fast."""

import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lumen.engine.io.store import DB_FILE, LOCK_WAIT_S, RunStore
from tests.engine.test_store_failures import damaged_store
from tests.support import one_line_error

ROOT = Path(__file__).resolve().parents[2]
QUICK = ("--epochs", "1", "--steps", "2", "--batch-size", "8")


def lumen(*args, data_dir, timeout=120, env=None):
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LUMEN_DATA_DIR": str(data_dir), **(env or {})},
    )


def trained_unrecorded(result, out, *messages):
    """``train`` went on without the store: one ``lumen:`` line about it, and the run folder written."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("lumen:")]
    assert len(lines) == 1, result.stderr
    for message in messages:
        assert message in lines[0], lines[0]
    assert (out / "weights.safetensors").is_file()


# ---- 2. the run store: damaged, read-only, locked ----------------------------------------------------------------


def test_a_damaged_store_is_one_line_for_runs_and_a_warning_for_train(tmp_path):
    data = tmp_path / "data"
    path = damaged_store(data)
    one_line_error(lumen("runs", data_dir=data), str(path), "is damaged", "aside")
    out = tmp_path / "run"
    trained_unrecorded(lumen("train", "lenet5", *QUICK, "--out", out, data_dir=data), out, "not recorded", "is damaged")


def test_damage_found_mid_run_stops_the_recording_not_the_training(tmp_path):
    data = tmp_path / "data"
    damaged_store(data, pages=("metrics", "metrics_by_run"))
    out = tmp_path / "run"
    trained_unrecorded(
        lumen("train", "lenet5", *QUICK, "--out", out, data_dir=data),
        out,
        "stopped recording",
        "training goes on",
        "is damaged",
    )


def test_a_locked_store_is_waited_for_a_few_seconds_then_said(tmp_path):
    data = tmp_path / "data"
    RunStore(data).close()
    other = sqlite3.connect(data / DB_FILE, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for as long as it likes
    try:
        listed = lumen("runs", data_dir=data)
        assert listed.returncode == 0 and "no runs yet" in listed.stdout, listed.stderr  # readers are not blocked
        out = tmp_path / "run"
        began = time.monotonic()
        result = lumen("train", "lenet5", *QUICK, "--out", out, data_dir=data)
        assert time.monotonic() - began < LOCK_WAIT_S + 12  # not 10 s and more per statement
        trained_unrecorded(result, out, "is locked by another process", f"waited {LOCK_WAIT_S:g} s")
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only file system needs root")
def test_a_store_on_a_read_only_file_system(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with RunStore(mount / "data") as store:
            store.new_run("lenet5", "mnist", "classification", 10)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        one_line_error(lumen("runs", data_dir=mount / "data"), "cannot be written (it is read-only)", "LUMEN_DATA_DIR")
        out = tmp_path / "run"
        trained_unrecorded(
            lumen("train", "lenet5", *QUICK, "--out", out, data_dir=mount / "data"), out, "cannot be written"
        )
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# ---- 3-6. data files: what they imply, checked before anything is built ---------------------------------------------


def write_idx(path: Path, array, code: int) -> Path:
    array = np.asarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())
    return path


IMAGES = np.random.default_rng(0).integers(0, 255, (100, 28, 28), dtype=np.uint8)
LABELS = {
    "a label of 2³¹ − 1": (np.array([0] * 99 + [2**31 - 1], dtype=">i4"), 0x0C),
    "one class": (np.full(100, 3, dtype=np.uint8), 0x08),
    "NaN labels": (np.array([0, 1] * 49 + [np.nan, 1], dtype=">f4"), 0x0D),
    "an images file as labels": (IMAGES, 0x08),
}


@pytest.mark.parametrize(
    "case, message",
    [
        ("a label of 2³¹ − 1", "a label of 2,147,483,647 would make 2,147,483,648 classes, more than 10,000"),
        ("one class", "every label is 3, one class; classification needs at least two"),
        ("NaN labels", "the value at (98,), nan, is not a finite number"),
        ("an images file as labels", "a labels file has one dimension (a label per image), this one has 3 (100×28×28)"),
    ],
)
def test_idx_labels_that_make_no_sense_are_one_line(tmp_path, case, message):
    labels, code = LABELS[case]
    images = write_idx(tmp_path / "train-images-idx3-ubyte", IMAGES, 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, code)
    began = time.monotonic()
    one_line_error(
        lumen("train", "lenet5", *QUICK, "--data", images, "--out", tmp_path / "run", data_dir=tmp_path), message
    )
    assert time.monotonic() - began < 20  # no tuple of 2³¹ class names
    assert not (tmp_path / "run").exists()


def test_idx_headers_that_overflow_or_hold_nothing_are_one_line(tmp_path):
    overflow = tmp_path / "overflow" / "train-images-idx3-ubyte"
    overflow.parent.mkdir()
    overflow.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">4I", *[65536] * 4))  # 2⁶⁴ values, wraps to 0 in int64
    one_line_error(
        lumen("train", "lenet5", *QUICK, "--data", overflow, "--out", tmp_path / "run", data_dir=tmp_path),
        "65536×65536×65536×65536 = 18,446,744,073,709,551,616 values, the file holds 0",
    )
    empty = write_idx(tmp_path / "empty" / "train-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8), 0x08)
    write_idx(tmp_path / "empty" / "train-labels-idx1-ubyte", np.zeros((0,), np.uint8), 0x08)
    one_line_error(
        lumen("train", "lenet5", *QUICK, "--data", empty, "--out", tmp_path / "run", data_dir=tmp_path),
        "holds no images (0×28×28)",
    )


def test_csv_windows_beyond_the_memory_limit_are_refused_with_the_figure(tmp_path):
    series = tmp_path / "series.csv"
    series.write_text("0.5\n1.5\n" * 100_000)  # 200,000 rows: 199,968 windows of 32 steps
    began = time.monotonic()
    one_line_error(
        lumen(
            "train",
            "lstm_many_to_many",
            *QUICK,
            "--data",
            series,
            "--out",
            tmp_path / "run",
            data_dir=tmp_path,
            env={"LUMEN_MEMORY_LIMIT": "16M"},
        ),
        "series.csv: 199,968 windows of 32 steps × 1 column (inputs and targets, float32) would need about 48.8 MiB",
        "more than Lumen's limit, 16.0 MiB (LUMEN_MEMORY_LIMIT)",
    )
    assert time.monotonic() - began < 20


@pytest.mark.slow
def test_a_csv_of_33_million_rows_is_refused_in_seconds(tmp_path):
    series = tmp_path / "series.csv"
    series.write_text("0\n" * 33_000_000)  # 63 MiB, inside the 64 MiB limit on CSV files
    began = time.monotonic()
    one_line_error(
        lumen(
            "train",
            "lstm_many_to_many",
            *QUICK,
            "--data",
            series,
            "--out",
            tmp_path / "run",
            data_dir=tmp_path,
            env={"LUMEN_MEMORY_LIMIT": "4G"},
        ),
        "32,999,968 windows of 32 steps",
        "would need about 7.9 GiB, more than Lumen's limit, 4.0 GiB",
    )
    assert time.monotonic() - began < 45  # parsing 33 M rows takes seconds; nothing of the windows is made


def test_csv_values_at_float32s_edge_train_and_beyond_it_are_refused(tmp_path):
    edge = tmp_path / "edge.csv"
    edge.write_text("".join(f"{v}\n" for v in [3e38, -3e38, 1.0, 2.0] * 50))
    result = lumen("train", "lstm_many_to_many", *QUICK, "--data", edge, "--out", tmp_path / "run", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "nan" not in result.stdout.lower(), (result.stdout, result.stderr)
    for text, message in (
        ("1.0\n2.0\n1e39\n", "row 3, column 1: '1e39' is beyond ±3.4e+38, float32's range"),
        ("x\n1.0\nnan\n", "row 3, column 1: 'nan' is not a finite number"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(text * 30 if text[0] != "x" else text + "1.0\n" * 60)
        one_line_error(
            lumen("train", "lstm_many_to_many", *QUICK, "--data", bad, "--out", tmp_path / "r2", data_dir=tmp_path),
            message,
        )


def test_out_inside_the_image_folder_is_refused_before_training(tmp_path):
    from PIL import Image

    folder = tmp_path / "pictures"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(IMAGES[i]).save(folder / name / f"{i}.png")
    one_line_error(
        lumen("train", "lenet5", *QUICK, "--data", folder, "--out", folder / "run", data_dir=tmp_path),
        "is inside the image folder",
        "choose a folder outside it",
    )
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b"]
