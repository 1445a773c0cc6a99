"""``lumen neighbours RUN --image PIC --k 8 --out GRID.png``: the k training pictures whose codes are nearest the
picture's in an autoencoder's latent space (Euclidean), the picture first, in one row."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, image_for
from lumen.cli.parser import Command, whole


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder of an autoencoder (from train or import)")
    parser.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    parser.add_argument("--k", type=whole(0, 10**9), default=8, help="how many neighbours (default 8)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write: the picture, then its neighbours")


def run(args: argparse.Namespace) -> None:
    import torch
    from PIL import Image

    from lumen.engine.errors import DataError
    from lumen.engine.explain.generative import grid, neighbours, split_autoencoder
    from lumen.engine.io.runs import read_run_info
    from lumen.engine.training.fit import load_run_data
    from lumen.engine.untrusted import atomic_writes, printable

    written = check_outputs(("--out", args.out))
    model, x = image_for(args.run, args.image)
    split_autoencoder(model)  # refuses a model that is not an autoencoder before the data is loaded
    data, _ = load_run_data(model.spec, read_run_info(args.run).get("dataset"))
    pool = data.train_x
    if tuple(pool.shape[1:]) != tuple(x.shape[1:]):
        raise DataError(
            f"the run's training pictures are {tuple(pool.shape[1:])}, not the model's {tuple(x.shape[1:])}"
        )
    if not 1 <= args.k <= len(pool):
        raise DataError(f"--k takes 1 to {len(pool):,} (the training pictures of {data.name}), not {args.k:,}")
    indices, distances = neighbours(model, x, pool, args.k)
    shown = torch.cat([x, pool[indices]])
    scale = max(1, 56 // max(x.shape[2:]))
    with atomic_writes(written) as temps:
        Image.fromarray(grid(shown, columns=len(shown), scale=scale)).save(temps[0], format="PNG")
    near = ", ".join(f"#{int(i)} ({float(d):.3g})" for i, d in zip(indices[:5], distances[:5]))
    more = ", …" if args.k > 5 else ""
    print(
        f"{args.k} nearest of {len(pool):,} training pictures of {printable(str(data.name))} in the latent space: "
        f"{near}{more}: wrote {printable(str(args.out))}"
    )


COMMAND = Command("neighbours", "the training pictures nearest a picture in an autoencoder's latent space", define, run)
