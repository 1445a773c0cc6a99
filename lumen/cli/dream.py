"""``lumen dream RUN --layer NAME [--channel C] [--image FILE] --out IMG.png``: DeepDream, amplifying what a layer
(or one of its channels) sees, on a picture or on grey noise."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import check_outputs, image_for, write_png
from lumen.cli.parser import Command, whole


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder (from train or import)")
    parser.add_argument("--layer", required=True, help="the layer (node id) to excite")
    parser.add_argument("--channel", type=whole(0, 10**6), help="one channel of the layer (default: the whole layer)")
    parser.add_argument("--image", type=Path, help="the picture to dream on (default: grey noise)")
    parser.add_argument("--octaves", type=whole(1, 12), default=3)
    parser.add_argument("--steps", type=whole(1, 10_000), default=20, help="steps per octave (default: 20)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from lumen.engine.data.images import display_image
    from lumen.engine.explain.dream import DreamSettings, dream
    from lumen.engine.io.runs import open_run
    from lumen.engine.untrusted import printable

    check_outputs(("--out", args.out))
    if args.image is not None:
        model, x = image_for(args.run, args.image)
    else:
        model = open_run(args.run)
        shape = tuple(model.spec.input_shape)
        generator = torch.Generator().manual_seed(0)
        x = (0.5 + 0.1 * torch.randn(1, *shape, generator=generator)).clamp(0, 1)
    picture = dream(model, x, args.layer, args.channel, DreamSettings(octaves=args.octaves, steps=args.steps))
    image = display_image(picture)
    pixels = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    factor = max(1, -(-256 // min(pixels.shape[:2])))  # small inputs (28×28) enlarged to be seen
    write_png(args.out, pixels.repeat(factor, 0).repeat(factor, 1))
    target = f"channel {args.channel} of {printable(args.layer)}" if args.channel is not None else printable(args.layer)
    print(f"deepdream of {target}: {args.octaves} octaves × {args.steps} steps: wrote {printable(str(args.out))}")


COMMAND = Command("dream", "DeepDream: amplify what a layer (or one channel) sees", define, run)
