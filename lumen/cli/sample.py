"""``lumen sample RUN --n N [--steps K] --out GRID.png [--npy SAMPLES.npy]``: new pictures from a generative model —
a VAE's decoded draws from its prior N(0, I), or an RBM's or DBN's K steps of block Gibbs sampling from noise
(a DBN's in its top RBM, carried down through the layers below, E[v | h] of each) — as one grid, and the raw
array."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, save_npy
from lumen.cli.parser import MAX_SEED, Command, whole

MAX_SAMPLES = 1024


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder of a VAE, an RBM or a DBN (from train or import)")
    parser.add_argument("--n", required=True, type=whole(1, MAX_SAMPLES), help="how many pictures")
    parser.add_argument(
        "--steps", type=whole(1, 100_000), help="RBM/DBN: Gibbs steps from noise (default 200); a VAE needs none"
    )
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=0, help="the random draws' seed (default 0)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write: the samples in a grid")
    parser.add_argument("--npy", type=Path, help="also write the samples (N × the model's input shape, float32)")


def gibbs_samples(rbms: list, n: int, steps: int, generator):
    """``n`` pictures (N × visible units of the bottom RBM): ``steps`` of block Gibbs sampling in the top RBM from
    uniform noise, then its last E[v | h] carried down through the RBMs below (E[v | h] of each)."""
    import torch

    top = rbms[-1]
    v = torch.bernoulli(torch.full((n, top.weight.shape[1]), 0.5), generator=generator)
    mean = v
    with torch.no_grad():
        for _ in range(steps):
            _, h = top.sample_h(v, generator)
            mean, v = top.sample_v(h, generator)
        for rbm in reversed(rbms[:-1]):
            mean = rbm.visible_mean(mean)
    return mean


def run(args: argparse.Namespace) -> None:
    import torch

    from lumen.engine.errors import DataError
    from lumen.engine.explain.generative import grid, prior_samples
    from lumen.engine.io.runs import open_run
    from lumen.engine.untrusted import atomic_writes, printable

    written = check_outputs(("--out", args.out), ("--npy", args.npy))
    model = open_run(args.run)
    shape = tuple(model.spec.input_shape)
    generator = torch.Generator().manual_seed(args.seed)
    rbm_nodes = model.nodes_of_type("rbm")
    if rbm_nodes:
        rbms = [model.layers[node] for node in rbm_nodes]
        if any(rbm.stack == "dbm" for rbm in rbms) and len(rbms) > 1:
            raise DataError(
                f"{printable(model.spec.name)}: a DBM is one undirected machine, and sample draws from VAEs, RBMs and "
                f"DBNs (the window's Boltzmann view runs a DBM's joint chain)"
            )
        steps = args.steps or 200
        samples = gibbs_samples(rbms, args.n, steps, generator)
        if samples.shape[1:].numel() != torch.Size(shape).numel():
            raise DataError(f"{printable(model.spec.name)}'s visible units do not make its {shape} input")
        samples = samples.reshape(args.n, *shape)
        how = f"{steps} Gibbs steps from noise in {rbm_nodes[-1]}" + (
            f", carried down through {', '.join(reversed(rbm_nodes[:-1]))}" if len(rbms) > 1 else ""
        )
    else:
        if args.steps is not None:
            raise DataError("--steps counts Gibbs steps of an RBM or DBN; a VAE's samples are decoded in one pass")
        samples = prior_samples(model, args.n, generator)
        how = "decoded from z ~ N(0, I)"
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise DataError(f"{printable(model.spec.name)} makes {shape} samples, not grey or RGB pictures")
    scale = max(1, 56 // max(shape[1:]))
    with atomic_writes(written) as temps:  # all or none
        from PIL import Image

        Image.fromarray(grid(samples, scale=scale)).save(temps[0], format="PNG")
        if args.npy is not None:
            save_npy(temps[1], samples.numpy().astype("float32"))
    files = ", ".join(printable(str(p)) for p in written)
    print(f"{args.n} samples of {printable(model.spec.name)}, {how}: wrote {files}")


COMMAND = Command("sample", "new pictures from a VAE's prior, or an RBM's or DBN's Gibbs chain", define, run)
