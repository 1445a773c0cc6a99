"""``lumen activations RUN --image FILE --layer NAME --out GRID.png [--npy MAPS.npy]``: a layer's activations for
an image, tiled into one picture (blue−white−red), and the raw activation."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, image_for, save_npy
from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder (from train or import)")
    parser.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    parser.add_argument("--layer", required=True, help="any layer (node id) of the model, e.g. conv1 or fc1")
    parser.add_argument("--after-activation", action="store_true", help="the maps after the layer's ReLU")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write: the maps tiled, blue−white−red")
    parser.add_argument("--npy", type=Path, help="also write the raw activation (C×H×W, or the layer's shape)")


def run(args: argparse.Namespace) -> None:
    from PIL import Image

    from lumen.engine.explain.activations import activation_after, activations, as_maps, check_layers, mosaic_picture
    from lumen.engine.probes.feature_maps import tile
    from lumen.engine.untrusted import atomic_writes, printable

    written = check_outputs(("--out", args.out), ("--npy", args.npy))
    model, x = image_for(args.run, args.image)
    check_layers(model, [args.layer])
    node = (activation_after(model, args.layer) if args.after_activation else None) or args.layer
    raw = activations(model, x, [node])[node]
    maps = as_maps(raw)
    mosaic, (rows, cols) = tile(maps)
    with atomic_writes(written) as temps:  # all or none
        Image.fromarray(mosaic_picture(mosaic)).save(temps[0], format="PNG")
        if args.npy is not None:
            save_npy(temps[1], raw)
    files = ", ".join(printable(str(p)) for p in written)
    what = f"{printable(args.layer)}" + (f" (after {printable(node)})" if node != args.layer else "")
    print(
        f"{what}: {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]} in a {rows}×{cols} grid, "
        f"range {float(raw.min()):.3g} to {float(raw.max()):.3g}: wrote {files}"
    )


COMMAND = Command("activations", "a layer's activations for an image, as a grid of maps", define, run)
