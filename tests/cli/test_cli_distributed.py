"""`main.py train` under torch.distributed.run: two local processes (gloo) train data-parallel, and the weights
equal a single-process run with the same global batch; only rank 0 prints and writes the run folder."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from engine.data.datasets import load_dataset
from engine.graph.model import build_model
from engine.presets import get_preset
from engine.training.config import TrainConfig
from engine.training.loop import Training

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
    from engine.errors import LumenError
    from engine.training.distributed import Group

    with pytest.raises(LumenError, match="split evenly over 2 processes"):
        Group(0, 2, 0, "gloo").config_for(TrainConfig(batch_size=33))
    assert Group(1, 2, 1, "nccl").config_for(TrainConfig(device="auto")).device == "cuda:1"


def test_without_the_launcher_training_stays_single_process(monkeypatch):
    from engine.training.distributed import init_from_env

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env() is None
