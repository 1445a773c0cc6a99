"""Hostile input to the run store and to data files, on the command line: a damaged, read-only or locked store,
data files whose header implies more than the memory budget, IDX headers that overflow, data that makes no
sense. Each ends in one ``lumen:`` line (or, for the store during ``train``, one warning and a saved run), fast."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.io.store import DB_FILE, LOCK_WAIT_S, RunStore
from tests.engine.test_store_failures import damaged_store

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


def one_line_error(result, *messages):
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lumen: "), result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr


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
