"""``lumen import MODEL WEIGHTS --out RUN``: a run folder from a state dict (.pth/.pt read weights-only, or
.safetensors) for a preset or spec file."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.common import load_model_arg
from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    from lumen.engine.io.runs import CLASS_LISTS

    parser.add_argument("model", help="the preset name or model spec JSON file the weights belong to")
    parser.add_argument("weights", type=Path, help="a state dict: .pth/.pt (read weights-only) or .safetensors")
    parser.add_argument("--out", required=True, type=Path, help="run folder to write")
    parser.add_argument("--force", action="store_true", help="replace the run already in --out")
    parser.add_argument(
        "--classes",
        choices=[*CLASS_LISTS, "none"],
        help="name the outputs with a bundled list (default: imagenet for the full-size presets, else none)",
    )


def run(args: argparse.Namespace) -> None:
    from lumen.engine.io.runs import import_run
    from lumen.engine.spec.preprocess import IMAGENET
    from lumen.engine.untrusted import printable

    spec = load_model_arg(args.model)
    classes = args.classes
    if classes is None and spec.preprocess == IMAGENET:  # a full-size preset: torchvision's ImageNet weights
        classes = "imagenet"
    import_run(spec, args.weights, args.out, force=args.force, classes=None if classes == "none" else classes)
    named = f", {classes} class names" if classes not in (None, "none") else ""
    print(printable(f"saved {args.out}/ ({spec.name}, weights from {args.weights.name}{named})"))


COMMAND = Command("import", "make a run folder from a .pth/.pt state dict or .safetensors", define, run)
