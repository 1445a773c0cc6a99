"""``lumen reconstruct RUN --image PIC --out PIC.png [--mask MASK.png]``: an autoencoder's reconstruction of a
picture beside the picture; with a mask (white = unknown; the model's input size) the picture, the part the model
is given (unknown pixels grey) and the unknown pixels inpainted by iterated reconstruction."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, image_for
from lumen.cli.parser import Command, whole


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder of an autoencoder (from train or import)")
    parser.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    parser.add_argument(
        "--mask",
        type=Path,
        help="a picture of the model's input size (28×28 for digits): white pixels are unknown and inpainted; "
        "it applies to the picture as prepared for the model (the output's first picture)",
    )
    parser.add_argument("--iterations", type=whole(0, 10_000), default=20, help="inpainting rounds (default 20)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write: the input beside its reconstruction")


def read_mask(path: Path, size: tuple[int, int]):
    """The unknown pixels of a mask picture (True where it is light), which must be ``size`` (H, W)."""
    import torch

    from lumen.engine.data.images import to_gray
    from lumen.engine.errors import DataError
    from lumen.engine.io.image_files import read_image
    from lumen.engine.untrusted import printable

    gray = to_gray(read_image(path))
    if gray.shape != size:
        raise DataError(
            f"the mask {printable(path.name)} is {gray.shape[1]}×{gray.shape[0]} pixels; it must be "
            f"{size[1]}×{size[0]}, the model's input"
        )
    return torch.from_numpy(gray > 0.5)


def run(args: argparse.Namespace) -> None:
    import torch
    from PIL import Image

    from lumen.engine.explain.generative import grid, inpaint, split_autoencoder
    from lumen.engine.untrusted import atomic_writes, printable

    written = check_outputs(("--out", args.out))
    model, x = image_for(args.run, args.image)
    ae = split_autoencoder(model)  # refuses a model that is not an autoencoder before the mask is read
    shape = tuple(x.shape[1:])
    if args.mask is None:
        out = ae.reconstruct(x)
        shown = torch.cat([x, out])
        what = f"reconstruction error {float(((out - x) ** 2).mean()):.4g} (mean squared)"
    else:
        unknown = read_mask(args.mask, shape[1:])
        if bool(unknown.all()):
            note = "every pixel is unknown"
        elif not bool(unknown.any()):
            note = "no pixel is unknown"
        else:
            note = f"{int(unknown.sum())} of {unknown.numel()} pixels unknown"
        out = inpaint(model, x, unknown, args.iterations)
        given = torch.where(unknown, torch.full_like(x, 0.5), x)
        shown = torch.cat([x, given, out])
        error = float(((out - x)[:, :, unknown] ** 2).mean()) if bool(unknown.any()) else 0.0
        what = f"inpainted in {args.iterations} rounds ({note}; mean squared difference there {error:.4g})"
    scale = max(1, 112 // max(shape[1:]))
    with atomic_writes(written) as temps:
        Image.fromarray(grid(shown, columns=len(shown), scale=scale)).save(temps[0], format="PNG")
    print(
        f"{printable(model.spec.name)}, code {ae.code_node} ({ae.size} numbers): {what}: "
        f"wrote {printable(str(args.out))}"
    )


COMMAND = Command("reconstruct", "an autoencoder's reconstruction of a picture, or its inpainting", define, run)
