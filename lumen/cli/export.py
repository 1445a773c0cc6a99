"""``lumen export RUN --format F --out FILE``: a run's model as TorchScript, ONNX, Python or safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    from lumen.engine.io.export import FORMATS

    parser.add_argument("run", type=Path, help="a run folder (from train or import)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=Path, help="file to write")


def run(args: argparse.Namespace) -> None:
    from lumen.engine.io.export import export_run
    from lumen.engine.untrusted import printable

    export_run(args.run, args.format, args.out)
    print(f"wrote {printable(str(args.out))}")


COMMAND = Command("export", "write a run's model as TorchScript, ONNX, Python or safetensors", define, run)
