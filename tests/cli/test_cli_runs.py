"""`lumen runs` lists the run store; a `train` killed with SIGKILL mid-run is continued by `train --resume`."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lumen.engine.io.store import RunStore, checkpoints
from tests.support import one_line_error

MAIN = Path(__file__).resolve().parents[2] / "main.py"


def lumen(*args, env=None, timeout=300):
    # One thread: torch's threads spinning against other busy processes made a 600-step resume take minutes.
    env = {"OMP_NUM_THREADS": "1", **(env or os.environ)}
    return subprocess.run([sys.executable, str(MAIN), *args], capture_output=True, text=True, timeout=timeout, env=env)


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
        [sys.executable, str(MAIN), *args, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
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
    assert_one_finished_run(out, folder.name, lumen_data_dir, 600)
    again = lumen("train", "--resume", folder.name)
    assert again.returncode == 1 and "has finished" in again.stderr


def assert_one_finished_run(out: Path, run_id: str, data_dir: Path, total: int) -> None:
    """``out`` is the run's one complete folder (no hidden partial or old one beside it), its steps.csv holds every
    step once, and the store agrees: finished, at the last step."""
    info = json.loads((out / "run.json").read_text())
    assert info["run_id"] == run_id and "interrupted" not in info and info["steps"] == total
    with (out / "steps.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(1, total + 1))  # each step once: those after the checkpoint were recorded again
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")) == []
    with RunStore(data_dir) as store:
        run = store.run(run_id)
        assert (run.status, run.step) == ("finished", total)
        assert store.metric(run_id, "loss")[0] == list(range(1, total + 1))


def start_training(out: Path, data_dir: Path, steps: int = 600):
    """``train lenet5`` in a subprocess, once it has written a checkpoint at step 20 or later: (process, the
    run's folder in the store)."""
    args = ["train", "lenet5", "--epochs", "3", "--steps", str(steps), "--batch-size", "16", "--checkpoint-every"]
    process = subprocess.Popen(
        [sys.executable, str(MAIN), *args, "20", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((data_dir / "runs").glob("*/checkpoints/step-*.safetensors"))
        if found:
            return process, found[0].parents[1]
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no checkpoint within the time allowed: {process.communicate()}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "ctrl-c"])
def test_a_stopped_run_resumes_into_its_own_folder(tmp_path, lumen_data_dir, sig):
    """Stopped by SIGTERM or Ctrl-C, the run is saved to --out (marked interrupted, naming the run); the resumed
    run replaces that folder with the whole run, every step once, and the store says finished."""
    out = tmp_path / "run"
    process, folder = start_training(out, lumen_data_dir)
    try:
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + sig, err
    assert "interrupted; saved the run so far" in err and "Traceback" not in err
    saved = json.loads((out / "run.json").read_text())
    assert saved["interrupted"] is True and saved["run_id"] == folder.name
    with (out / "steps.csv").open() as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, saved["steps"] + 1))
    with RunStore(lumen_data_dir) as store:
        run = store.run(folder.name)
        assert (run.status, run.step) == ("stopped", saved["steps"])
    assert checkpoints(folder)[-1][0] == saved["steps"]  # the checkpoint is the saved folder's step

    resumed = lumen("train", "--resume", folder.name)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {saved['steps']}" in resumed.stderr and "lumen:" not in resumed.stderr
    assert_one_finished_run(out, folder.name, lumen_data_dir, 600)


def _stopped_run(data_dir: Path, out: Path) -> str:
    """A run recorded in the store as stopped at step 3 with a checkpoint, as a stopped train leaves it."""
    import torch

    from lumen.engine.data.datasets import load_dataset
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.store import RunRecorder
    from lumen.engine.presets import get_preset
    from lumen.engine.training.config import TrainConfig
    from lumen.engine.training.loop import Training
    from lumen.engine.training.resume import training_state

    torch.manual_seed(0)
    spec = get_preset("lenet5")
    config = TrainConfig(epochs=1, batch_size=16, max_steps=200, device="cpu")
    training = Training(build_model(spec), load_dataset("mnist"), config)
    info = {"dataset": "mnist", "objective": training.objective.name, "config": vars(config), "out": str(out)}
    recorder = RunRecorder.start(RunStore(data_dir), spec, "mnist", training.objective.name, 200, info)
    events = training.steps()
    for event in events:
        recorder.record(event)
        if training.step == 3:
            break
    recorder.checkpoint(*training_state(training))
    recorder.close("stopped", "interrupted at step 3")
    return recorder.id


@pytest.mark.slow
def test_resume_checks_its_run_folder_before_the_first_batch(tmp_path, lumen_data_dir):
    """README: --out is checked before the first batch. A resume whose folder holds another run (no --force),
    other files, or is a file, is refused at once and changes nothing in the store."""
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.runs import save_run
    from lumen.engine.presets import get_preset

    out = tmp_path / "run"
    run_id = _stopped_run(lumen_data_dir, out)
    save_run(out, get_preset("lenet5"), build_model(get_preset("lenet5")), [], {"dataset": "mnist"})  # not this run's
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "file").write_text("a file")
    cases = [
        ([], "already holds a run; choose another folder, or replace it (--force)"),
        (["--out", str(tmp_path / "notes")], "the folder holds other files"),
        (["--out", str(tmp_path / "file")], "it is a file"),
    ]
    for extra, message in cases:
        result = lumen("train", "--resume", run_id, *extra)
        one_line_error(result, message)
        assert "resuming" not in result.stderr
    with RunStore(lumen_data_dir) as store:
        run = store.run(run_id)
        assert (run.status, run.step) == ("stopped", 3)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    assert "run_id" not in json.loads((out / "run.json").read_text())  # the other run is still there


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2(RENAME_EXCHANGE) is Linux's")
def test_a_run_folder_is_replaced_in_one_step(tmp_path, monkeypatch):
    """Replacing a run (a resume over its interrupted folder, --force) swaps the folders atomically: the run
    folder is never missing, and nothing is left beside it."""
    from lumen.engine.graph.model import build_model
    from lumen.engine.io.runs import save_run
    from lumen.engine.presets import get_preset

    out, spec = tmp_path / "run", get_preset("lenet5")
    save_run(out, spec, build_model(spec), [], {"which": "old"})
    renamed_onto_out = []
    replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (renamed_onto_out.append(a) if Path(b) == out else None, replace(a, b))
    )
    save_run(out, spec, build_model(spec), [], {"which": "new"}, force=True)
    assert renamed_onto_out == []  # not renamed aside and back: exchanged
    assert json.loads((out / "run.json").read_text())["which"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
