"""``lumen summary MODEL [--input C,H,W]``: a preset's or spec file's layer table (output shape, parameters, MACs,
receptive field), and a warning when the model is too big to build here."""

from __future__ import annotations

import argparse
import sys

from lumen.cli.common import load_model_arg
from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a preset name (see 'presets') or a model spec JSON file")
    parser.add_argument("--input", metavar="C,H,W", help="another input shape (one sample), e.g. 1,32,32")


def run(args: argparse.Namespace) -> None:
    from lumen.engine.spec.shapes import fmt

    spec = load_model_arg(args.model)
    if args.input is not None:
        spec = with_input_shape(spec, parse_shape(args.input))
    from lumen.engine.graph.analysis import analyze

    reports = analyze(spec)
    params = [r.params for r in reports]
    table = [("name", "type", "output shape", "params", "MACs", "receptive field")]
    table += [
        (
            r.id,
            r.type,
            fmt(r.output_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
            "" if r.receptive_field is None else str(r.receptive_field),
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    from lumen.engine.untrusted import printable

    name, description = printable(spec.name), printable(spec.description)
    print(f"{name}: {description}" if description else name)
    for i, row in enumerate(table):
        print(
            "  ".join(
                cell.ljust(w) if k < 3 else cell.rjust(w) for k, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"total params: {sum(params)}")
    warning = _memory_warning(spec, [(r.id, r.params, r.activation_bytes) for r in reports])
    if warning:
        sys.stdout.flush()
        sys.stderr.write(f"lumen: warning: {printable(warning)}; it can be summarised but not built or trained here\n")


def _memory_warning(spec, nodes) -> str | None:
    """Why the model cannot be built here (too big for the memory limit), or None; ``nodes``: (id, params,
    bytes of one sample's output) per node."""
    from lumen.engine.errors import SpecError
    from lumen.engine.graph import budget

    try:
        budget.check(budget.estimate(nodes))
    except SpecError as exc:
        return str(exc)
    return None


def parse_shape(text: str) -> tuple[int, ...]:
    from lumen.engine.errors import LumenError
    from lumen.engine.spec.model_spec import MAX_SIZE
    from lumen.engine.untrusted import printable

    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 8 or not all(
        p.isascii() and p.isdigit() and len(p) <= 12 and 0 < int(p) <= MAX_SIZE for p in parts
    ):
        shown = printable(text if len(text) <= 40 else text[:36] + "…")
        raise LumenError(
            f"--input takes whole numbers above 0 separated by commas, like 1,28,28; got {shown!r} "
            f"(at most 8 numbers, each up to {MAX_SIZE:,})"
        )
    return tuple(int(p) for p in parts)


def with_input_shape(spec, shape: tuple[int, ...]):
    """The spec with its input node taking ``shape``; a shape the layers cannot take names the node."""
    import dataclasses

    from lumen.engine.errors import SpecError
    from lumen.engine.graph.model import infer_shapes
    from lumen.engine.spec.shapes import fmt

    old = spec.input_node
    new = dataclasses.replace(old, params={**old.params, "shape": list(shape)})
    spec = dataclasses.replace(spec, nodes=tuple(new if n is old else n for n in spec.nodes))
    try:
        infer_shapes(spec)
    except SpecError as exc:
        raise SpecError(f"{exc} (with input {fmt(shape)})") from None
    return spec


COMMAND = Command("summary", "print a model's layer table", define, run)
