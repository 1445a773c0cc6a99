"""``lumen open MODEL --out RUN``: a run folder from a model made outside Lumen — an ONNX file, or a user's own
PyTorch module (``my_net.py:Net --input 1,3,224,224 [--weights w.pt]``; the file is run as the user's code)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="an .onnx file, or FILE.py:ClassName (a module whose class takes no arguments)")
    parser.add_argument("--out", required=True, type=Path, help="run folder to write")
    parser.add_argument(
        "--input",
        metavar="N,C,H,W",
        help="the input's shape, batch first, as the model is called (e.g. 1,3,224,224): needed for a Python "
        "module, and for an ONNX graph that leaves sizes open",
    )
    parser.add_argument("--weights", type=Path, help="a Python module's state dict: .safetensors or .pt/.pth")
    parser.add_argument("--force", action="store_true", help="replace the run already in --out")


def run(args: argparse.Namespace) -> None:
    from lumen.cli.summary import parse_shape
    from lumen.engine.errors import LumenError
    from lumen.engine.io.open_model import open_model, save_opened
    from lumen.engine.io.runs import check_run_dir
    from lumen.engine.untrusted import printable

    shape = None
    if args.input is not None:
        full = parse_shape(args.input)
        if len(full) < 2:
            raise LumenError("--input names the batch first, then one sample's shape (e.g. 1,3,224,224)")
        shape = full[1:]
    check_run_dir(args.out, args.force)  # refused before the model is read
    opened = open_model(args.model, shape, args.weights)
    save_opened(opened, args.out, force=args.force)
    print(printable(f"saved {args.out}/ ({opened.line()})"))


COMMAND = Command("open", "make a run folder from an ONNX file or a PyTorch module (FILE.py:Class)", define, run)
