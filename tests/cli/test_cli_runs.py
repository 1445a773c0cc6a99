"""`lumen runs` lists the run store; a `train` killed with SIGKILL mid-run is continued by `train --resume`."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.io.store import RunStore, checkpoints

MAIN = Path(__file__).resolve().parents[2] / "main.py"


def lumen(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, str(MAIN), *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ
    )


def test_runs_with_an_empty_store_says_so():
    result = lumen("runs")
    assert result.returncode == 0 and "no runs yet" in result.stdout


def test_train_needs_a_model_and_out_unless_it_resumes():
    result = lumen("train", "lenet5")
    assert result.returncode == 2 and "--out" in result.stderr
    result = lumen("train", "--resume", "nosuchrun")
    assert result.returncode == 1 and "no run in the store matches nosuchrun" in result.stderr


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_from_its_last_checkpoint(tmp_path, lumen_data_dir):
    out = tmp_path / "run"
    # 600 steps take about 2 s here; the kill comes at step 40-ish, so hundreds of steps of margin remain
    # even on a faster machine (with 24 steps, CI once finished the run before the kill landed).
    args = ["train", "lenet5", "--epochs", "3", "--steps", "600", "--batch-size", "16", "--checkpoint-every", "20"]
    process = subprocess.Popen(
        [sys.executable, str(MAIN), *args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        folder = None
        while time.monotonic() < deadline:
            found = list((lumen_data_dir / "runs").glob("*/checkpoints/step-*.safetensors"))
            if any(int(p.name[5:14]) >= 40 for p in found):
                folder = found[0].parents[1]
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.01)
        assert folder is not None, "no checkpoint within the time allowed"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert not out.exists()  # killed before it could write the run folder

    listed = lumen("runs")
    assert listed.returncode == 0
    run_line = next(line for line in listed.stdout.splitlines() if line.startswith(folder.name))
    assert "LeNet-5" in run_line and "mnist" in run_line and "interrupted" in run_line
    with RunStore(lumen_data_dir) as store:
        killed_at = store.run(folder.name).step
        last_checkpoint = checkpoints(folder)[-1][0]
    assert killed_at >= last_checkpoint  # the metrics up to the checkpoint were on disk before it

    resumed = lumen("train", "--resume", folder.name[:-2])  # a unique prefix will do
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {folder.name}" in resumed.stderr and f"at step {last_checkpoint}" in resumed.stderr
    with (out / "steps.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(1, 601))  # each step once: those after the checkpoint were recorded again
    with RunStore(lumen_data_dir) as store:
        run = store.run(folder.name)
        assert (run.status, run.step) == ("finished", 600)
        assert store.metric(folder.name, "loss")[0] == list(range(1, 601))
    again = lumen("train", "--resume", folder.name)
    assert again.returncode == 1 and "has finished" in again.stderr
