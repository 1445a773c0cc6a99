"""``lumen explain RUN --image FILE --method NAME --out OUT.png [--npy OUT.npy]``: an attribution map of one image
(the input beside the overlay), the raw map and the model's input as .npy, and the model's top classes."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, save_npy
from lumen.cli.parser import Command, whole


def define(parser: argparse.ArgumentParser) -> None:
    from lumen.engine.explain.attribution import BASELINES, METHODS

    parser.add_argument("run", type=Path, help="a run folder (from train or import)")
    parser.add_argument("--image", required=True, type=Path, help="PNG, JPEG, BMP, GIF, TIFF or WebP")
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--target", type=whole(0, 10**6), help="the class explained (default: the predicted one)")
    parser.add_argument("--steps", type=whole(1, 4096), help="integrated gradients: path steps (default 50)")
    parser.add_argument("--baseline", choices=BASELINES, help="integrated gradients (default black)")
    parser.add_argument("--samples", type=whole(1, 512), help="smoothgrad: noisy copies (default 16)")
    parser.add_argument("--window", type=whole(1, 4096), help="occlusion: patch side in pixels")
    parser.add_argument("--stride", type=whole(1, 4096), help="occlusion: patch step in pixels")
    parser.add_argument("--layer", help="gradcam: the conv layer (default: the last one)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write: the input beside the overlay")
    parser.add_argument(
        "--npy", type=Path, help="also write the map at input resolution; the input tensor goes to NAME.input.npy"
    )


def run(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from lumen.engine.data.images import image_input
    from lumen.engine.errors import DataError
    from lumen.engine.explain.attribution import attribute, black_picture_input
    from lumen.engine.explain.overlay import overlay
    from lumen.engine.io.image_files import read_image
    from lumen.engine.io.runs import open_run, read_run_info, run_classes
    from lumen.engine.untrusted import atomic_writes, printable

    input_path = None if args.npy is None else args.npy.with_name(args.npy.name.removesuffix(".npy") + ".input.npy")
    written = check_outputs(("--out", args.out), ("--npy", args.npy), ("--npy's input file", input_path))
    info = read_run_info(args.run)
    model = open_run(args.run)
    shape = tuple(model.spec.input_shape)
    if len(shape) != 3:
        raise DataError(f"{printable(model.spec.name)} takes {shape} inputs, not images")
    pixels = read_image(args.image)
    digits = info.get("dataset") == "mnist" and shape[0] == 1

    def prepare(p: np.ndarray):
        return image_input(p, shape, digits=digits, preprocess=model.spec.preprocess)

    x = prepare(pixels)
    given = {
        "steps": args.steps,
        "baseline": args.baseline,
        "samples": args.samples,
        "window": args.window,
        "stride": args.stride,
        "layer": args.layer,
    }
    options = {name: value for name, value in given.items() if value is not None}
    if args.method in ("integrated-gradients", "occlusion"):
        options["black"] = black_picture_input(prepare, pixels)
    result = attribute(model, x, args.method, args.target, **options)
    picture = overlay(result.input, result.heat())
    with atomic_writes(written) as temps:  # all or none
        Image.fromarray(picture).save(temps[0], format="PNG")
        for temp, array in zip(temps[1:], (result.map, result.input)):
            save_npy(temp, array)
    delta = f", convergence delta {result.delta:.3g}" if result.delta is not None else ""
    layer = f", layer {result.layer}" if result.layer else ""
    files = ", ".join(printable(str(p)) for p in written)
    names = run_classes(info)
    named = f" ({printable(names[result.target])})" if result.target < len(names) else ""
    print(f"{args.method} for class {result.target}{named}{layer}{delta}: wrote {files}")
    if names:
        import torch

        from lumen.engine.explain.activations import top_k

        with torch.no_grad():
            best = top_k(model(x), names, 3)
        if best:
            print("top: " + ", ".join(f"{printable(name)} {p:.1%}" for name, p in best))


COMMAND = Command("explain", "an attribution map: which pixels of an image made the class", define, run)
