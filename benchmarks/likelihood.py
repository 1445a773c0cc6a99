"""RBM log-likelihood, exact against annealed importance sampling: trains the ``rbm16`` preset on the bundled
binarised digits for a few epochs (plain SGD, CD-1), then prints the average log-likelihood of the 500 validation
digits with log Z summed exactly over the 2^16 hidden states and estimated by AIS (``engine.explain.likelihood``),
each with its run time, and AIS's gap to the exact figure and its ±3-standard-error range.

    python benchmarks/likelihood.py [--epochs 5] [--chains 100] [--betas 1000 10000] [--threads 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.explain.likelihood import (
    ais_log_partition,
    exact_log_partition,
    log_likelihood,
    single_rbm,
    visible_data,
)
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.training.loop import TrainConfig, Training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--betas", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")

    data = load_dataset("mnist", binarise=True)
    torch.manual_seed(args.seed)
    model = build_model(get_preset("rbm16"))
    config = TrainConfig(epochs=args.epochs, batch_size=32, optimizer="sgd", lr=0.05, seed=args.seed)
    start = time.perf_counter()
    for event in Training(model, data, config).steps():
        if hasattr(event, "val"):
            print(f"epoch {event.epoch}: validation log-likelihood {event.val['log_likelihood']:.2f} nats (exact)")
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s")

    node, rbm = single_rbm(model)
    v, train = visible_data(model, node, data.val_x), visible_data(model, node, data.train_x)
    mean_neg_f = float(log_likelihood(rbm, v, 0.0).mean())
    start = time.perf_counter()
    exact = exact_log_partition(rbm)
    exact_s = time.perf_counter() - start
    print(f"{'method':<28} {'log Z':>9} {'nats/example':>13} {'±3 s.e. (nats)':>20} {'time':>8}")
    print(f"{'exact (2^16 states)':<28} {exact:9.2f} {mean_neg_f - exact:13.2f} {'':>20} {exact_s:7.2f}s")
    for betas in args.betas:
        start = time.perf_counter()
        estimate = ais_log_partition(rbm, args.chains, betas, train, torch.Generator().manual_seed(args.seed))
        seconds = time.perf_counter() - start
        spread = f"{mean_neg_f - estimate.high:.2f} to {mean_neg_f - estimate.low:.2f}"
        label = f"ais ({args.chains} chains, {betas:,} βs)"
        print(f"{label:<28} {estimate.log_z:9.2f} {mean_neg_f - estimate.log_z:13.2f} {spread:>20} {seconds:7.2f}s")
        print(f"{'':<28} gap to exact: {estimate.log_z - exact:+.3f} nats")


if __name__ == "__main__":
    main()
