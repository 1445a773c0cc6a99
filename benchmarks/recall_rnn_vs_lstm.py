"""Recall: a vanilla RNN against an LSTM as the gap grows.

The ``recall`` data (engine/data/sequences.py): the first token is one of 8 letters, then ``steps − 2``
distractors drawn from the same letters, then a query mark; the target is the first letter (chance: 12.5 %).
For each length, the ``rnn_many_to_one`` and ``lstm_many_to_one`` presets (hidden size 32; the LSTM's forget
bias starts at 1) are fitted to the data and trained through ``engine.training.Training`` exactly as
``main.py train --lr 0.003`` does (Adam, batch 64) on 10,000 sequences (8,500 train, 1,500 held out),
for ``--epochs`` epochs or ``--budget`` seconds, whichever ends first, on one thread; each pair runs with
several seeds (weights and batch order) and the held-out accuracy is reported per seed and as the mean.

    python benchmarks/recall_rnn_vs_lstm.py [--lengths 10,25,50,100] [--seeds 0,1,2] [--epochs 15] [--budget 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from engine.data.sequences import recall
from engine.events import EpochMetrics
from engine.graph.model import build_model
from engine.presets import get_preset
from engine.training.config import TrainConfig
from engine.training.fit import plan_run
from engine.training.loop import Training


def run(family: str, steps: int, seed: int, epochs: int, budget_s: float, count: int = 10_000) -> tuple[float, float]:
    """Held-out accuracy after training, and the seconds it took."""
    data = recall(count=count, steps=steps)
    spec = plan_run(get_preset(f"{family}_many_to_one"), data).spec
    torch.manual_seed(seed)
    model = build_model(spec)
    config = TrainConfig(epochs=epochs, lr=3e-3, batch_size=64, seed=seed, device="cpu")
    training = Training(model, data, config, "classification")
    began, accuracy = time.perf_counter(), 0.0
    for event in training.steps():
        if isinstance(event, EpochMetrics):
            accuracy = event.val["accuracy"]
            if time.perf_counter() - began > budget_s:
                break
    return accuracy, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,25,50,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run (checked after each epoch)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{'steps':>5} {'model':>5}  {'accuracy per seed':<24} {'mean':>6} {'s/run':>6}")
    for steps in (int(n) for n in args.lengths.split(",")):
        for family in ("rnn", "lstm"):
            results = [run(family, steps, seed, args.epochs, args.budget) for seed in seeds]
            accuracies = [a for a, _ in results]
            each = " ".join(f"{a:.2f}" for a in accuracies)
            print(
                f"{steps:>5} {family:>5}  {each:<24} {statistics.mean(accuracies):>6.2f} "
                f"{statistics.mean(t for _, t in results):>6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
