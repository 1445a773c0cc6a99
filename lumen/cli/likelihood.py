"""``lumen likelihood RUN [--data NAME|PATH] [--method exact|ais] [--chains N] [--betas N] [--seed S]``: the average
log-likelihood of a run's RBM on validation data, in nats per example, as the last line printed.

``exact`` sums log Z over every hidden state (at most 20 hidden units: ``engine.explain.likelihood``); ``ais``
estimates it by annealed importance sampling and prints its range (±3 standard errors of the chains' mean weight).
Without ``--method``: exact when the RBM allows it and no AIS option is given, else ais. A Bernoulli RBM's
likelihood is of binary data: data that is not binary is binarised at ½ first, and the last line says so."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lumen.cli.parser import Command, whole

METHODS = ("exact", "ais")
CHAINS, BETAS = 100, 10_000


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder (from train or import) of a single RBM")
    parser.add_argument(
        "--data", help="a built-in dataset or a path: its validation part (default: the run's own dataset)"
    )
    parser.add_argument(
        "--method", choices=METHODS, help="exact (≤ 20 hidden units) or ais (default: exact when it can)"
    )
    parser.add_argument("--chains", type=whole(2, 100_000), help=f"ais: independent chains (default {CHAINS})")
    parser.add_argument("--betas", type=whole(2, 10**7), help=f"ais: inverse temperatures, 0 to 1 (default {BETAS:,})")
    parser.add_argument("--seed", type=whole(0, 2**63 - 1), default=0, help="ais: the chains' seed (default 0)")


def refuse(args: argparse.Namespace) -> str | None:
    if args.method == "exact" and (args.chains is not None or args.betas is not None):
        return "--chains and --betas are options of --method ais, not exact"
    return None


def run(args: argparse.Namespace) -> None:
    import torch

    from lumen.engine.errors import DataError
    from lumen.engine.explain.likelihood import (
        MAX_EXACT_HIDDEN,
        ais_log_partition,
        check_exact,
        exact_log_partition,
        log_likelihood,
        single_rbm,
        visible_data,
    )
    from lumen.engine.graph import budget
    from lumen.engine.io.runs import open_run, read_run_info
    from lumen.engine.training.fit import load_run_data
    from lumen.engine.untrusted import printable

    run_name = printable(str(args.run))
    info = read_run_info(args.run)
    model = open_run(args.run)
    model.eval()
    node, rbm = single_rbm(model, run_name)
    hidden, visible = rbm.hidden_bias.numel(), rbm.visible_bias.numel()
    ais_asked = args.chains is not None or args.betas is not None
    method = args.method or ("ais" if ais_asked or hidden > MAX_EXACT_HIDDEN else "exact")
    if method == "exact":
        check_exact(rbm, f"the RBM of {run_name}")
    chains, betas = args.chains or CHAINS, args.betas or BETAS
    budget.check_data(chains * (visible + hidden) * 8 * 4, f"{chains:,} AIS chains of {visible + hidden:,} units")

    dataset = args.data if args.data is not None else info.get("dataset")
    data, _ = load_run_data(model.spec, dataset if isinstance(dataset, str) else None)
    takes, has = tuple(model.spec.input_shape), tuple(data.input_shape)
    if takes != has:
        shape = "×".join(map(str, takes))
        raise DataError(f"{run_name} takes {shape} inputs; {printable(data.name)} has {'×'.join(map(str, has))}")
    if len(data.val_x) == 0:
        raise DataError(f"{printable(data.name)} has no validation samples to measure the likelihood of")
    v = visible_data(model, node, data.val_x)
    binarised = ""
    if rbm.visible == "bernoulli" and not bool(((v == 0) | (v == 1)).all()):
        v, binarised = (v >= 0.5).double(), ", binarised at ½"
    print(f"{run_name}: {node}, {visible:,} {rbm.visible} visible units, {hidden:,} hidden units")

    start = time.perf_counter()
    if method == "exact":
        log_z = exact_log_partition(rbm)
        print(
            f"log Z = {log_z:.2f}, summed over 2^{hidden} = {2**hidden:,} hidden states "
            f"({time.perf_counter() - start:.1f} s)"
        )
        detail = "exact"
    else:
        train = visible_data(model, node, data.train_x)
        if rbm.visible == "bernoulli":
            train = (train >= 0.5).double()
        generator = torch.Generator().manual_seed(args.seed)
        estimate = ais_log_partition(rbm, chains, betas, train, generator)
        log_z = estimate.log_z
        print(
            f"log Z ≈ {log_z:.2f} by AIS ({chains:,} chains, {betas:,} inverse temperatures, seed {args.seed}), "
            f"{estimate.low:.2f} to {estimate.high:.2f} within ±3 standard errors ({time.perf_counter() - start:.1f} s)"
        )
        mean_neg_f = float(log_likelihood(rbm, v, 0.0).mean())
        detail = f"ais, {mean_neg_f - estimate.high:.2f} to {mean_neg_f - estimate.low:.2f}"
    average = float(log_likelihood(rbm, v, log_z).mean())
    print(
        f"{average:.2f} nats per example ({detail}, {hidden:,} hidden units, "
        f"{len(v):,} validation samples of {printable(data.name)}{binarised})"
    )


COMMAND = Command(
    "likelihood", "the average log-likelihood of a run's RBM on validation data (exact or AIS)", define, run, refuse
)
