"""`main.py train` under torch.distributed.run: two local processes (gloo) train data-parallel, and the weights
equal a single-process run with the same global batch; only rank 0 prints and writes the run folder."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lumen.engine.data.datasets import load_dataset
from lumen.engine.graph.model import build_model
from lumen.engine.io.store import RunStore
from lumen.engine.presets import get_preset
from lumen.engine.training.config import TrainConfig
from lumen.engine.training.loop import Training

ROOT = Path(__file__).resolve().parents[2]
# SGD without momentum, a fixed seed and order: each step is one gradient step on the same global batch.
ARGS = ["lenet5", "--data", "mnist", "--steps", "4", "--batch-size", "32", "--optimizer", "sgd", "--momentum", "0"]
ARGS += ["--lr", "0.1", "--device", "cpu", "--epochs", "1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*command, "main.py", "train", *ARGS, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_two_processes_train_the_same_weights_as_one_with_the_same_global_batch(tmp_path):
    single = run([sys.executable], tmp_path / "single")
    assert single.returncode == 0, single.stderr
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    parallel = run(launcher, tmp_path / "parallel")
    assert parallel.returncode == 0, parallel.stderr
    assert "data-parallel over 2 processes (gloo)" in parallel.stderr
    assert parallel.stdout.count("saved ") == 1  # rank 0 alone reports, and writes
    assert parallel.stdout.count("epoch 1:") == 1
    one, two = (load_file(tmp_path / name / "weights.safetensors") for name in ("single", "parallel"))
    assert one.keys() == two.keys()
    torch.manual_seed(0)  # main.py's initial weights: the training moved them
    start = {k: v for k, v in build_model(get_preset("lenet5")).state_dict().items()}
    assert any(not torch.allclose(start[k], v) for k, v in one.items())
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6, msg=key)


def spy(loss, batches):
    def record(x, y):
        batches.append(y.clone())
        return loss(x, y)

    return record


def test_each_process_computes_its_strided_share_of_every_global_batch():
    """DistributedSampler's split, per batch: rank r of N takes samples r, r + N, ... of the global batch."""
    data = load_dataset("mnist")
    seen = {}
    for rank in (0, 1, None):
        training = Training(build_model(get_preset("lenet5")), data, TrainConfig(batch_size=8, max_steps=2, seed=3))
        training.shard = None if rank is None else (rank, 2)
        batches: list[torch.Tensor] = []
        training.objective.loss = spy(training.objective.loss, batches)
        list(training.steps())
        seen[rank] = batches
    for step in range(2):
        whole = seen[None][step]
        assert len(whole) == 8
        assert torch.equal(seen[0][step], whole[0::2]) and torch.equal(seen[1][step], whole[1::2])


def test_a_global_batch_that_does_not_split_evenly_is_refused():
    from lumen.engine.errors import LumenError
    from lumen.engine.training.distributed import Group

    with pytest.raises(LumenError, match="split evenly over 2 processes"):
        Group(0, 2, 0, "gloo").config_for(TrainConfig(batch_size=33))
    assert Group(1, 2, 1, "nccl").config_for(TrainConfig(device="auto")).device == "cuda:1"


def test_without_the_launcher_training_stays_single_process(monkeypatch):
    from lumen.engine.training.distributed import init_from_env

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env() is None


def launch(out: Path, *extra: str, data_dir: Path) -> subprocess.Popen:
    """``torch.distributed.run --nproc_per_node 2 main.py train …`` (gloo, CPU), its run store in ``data_dir``."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    args = ["lenet5", "--data", "mnist", "--batch-size", "32", "--device", "cpu", *extra, "--out", str(out)]
    return subprocess.Popen(
        [*launcher, "main.py", "train", *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LUMEN_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_a_taken_out_is_refused_once_by_rank_0_and_every_process_exits_1(tmp_path, lumen_data_dir):
    """Rank 0 alone checks --out, before the process group starts; every process hears its refusal and exits 1
    before any work, and the lumen line is printed once (the launcher's own summary of the failed processes
    follows: torch.distributed.run prints it for any process that exits non-zero)."""
    from lumen.engine.io.runs import RUN_FORMAT, save_run

    out = tmp_path / "taken"
    save_run(out, get_preset("lenet5"), build_model(get_preset("lenet5")), [], {"mine": True})
    process = launch(out, "--steps", "4", "--epochs", "1", data_dir=lumen_data_dir)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err.count("lumen:") == 1 and "already holds a run; choose another folder" in err, err
    assert "exitcode  : 1" in err and "RuntimeError" not in err and "data-parallel over" not in err, err
    assert json.loads((out / "run.json").read_text()) == {"mine": True, "format": RUN_FORMAT, "steps": 0, "final": {}}
    assert not (lumen_data_dir / "runs").exists() or not any((lumen_data_dir / "runs").iterdir())  # nothing recorded


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the launcher's processes in /proc")
def test_when_a_peer_dies_rank_0_saves_the_run_so_far(tmp_path, lumen_data_dir):
    """One process killed mid-run: rank 0 saves the run so far (as SIGTERM would) and says so in one line, not
    gloo's RuntimeError and a traceback; the folder and the store agree on the steps done."""
    out = tmp_path / "run"
    process = launch(out, "--steps", "3000", "--epochs", "30", "--checkpoint-every", "10", data_dir=lumen_data_dir)
    try:
        deadline = time.monotonic() + 120
        while not list(lumen_data_dir.glob("runs/*/checkpoints/step-*")):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.02)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        rank_1 = [pid for pid in children if b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
        assert len(rank_1) == 1, children
        os.kill(int(rank_1[0]), signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    ours = [line for line in err.splitlines() if line.startswith("lumen:")]
    assert len(ours) == 1 and "another process of the data-parallel run stopped" in ours[0], err
    assert f"saved the run so far to {out}" in ours[0] and "RuntimeError" not in err, err
    assert err.count("Traceback") <= 1  # the launcher's own, for its ChildFailedError; none from rank 0
    info = json.loads((out / "run.json").read_text())
    assert info["interrupted"] is True and 10 <= info["steps"] < 3000
    with (out / "steps.csv").open() as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, info["steps"] + 1))
    with RunStore(lumen_data_dir) as store:
        run = store.run(info["run_id"])
        assert (run.status, run.step) == ("stopped", info["steps"])


@pytest.mark.slow
def test_resume_under_the_launcher_is_refused_once(tmp_path, lumen_data_dir):
    """Each process would resume the whole run on its own and write the same folder: refused, said once."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    result = subprocess.run(
        [*launcher, "main.py", "train", "--resume", "20250101-000000-abcd"],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("lumen:") == 1 and "run it without torch.distributed.run" in result.stderr
