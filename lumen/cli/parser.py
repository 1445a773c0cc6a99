"""The command line's parser: one subcommand per module of ``cli`` (``cli.COMMANDS``), argument types that refuse
in one line, and argparse errors as one ``lumen:`` line with exit 2.

A command's arguments are defined when that command is parsed, not before: its choice lists come from the
registries they choose from (attribution methods, export formats, objectives: modules that import torch), and
``presets`` or ``datasets`` must not wait for torch to list a few names."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_SEED = 2**63 - 1  # torch's generators take 64 bits
MAX_BATCH = 2**31 - 1


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and one-line help, ``define(parser)`` adding its arguments, ``run(args)`` doing it;
    ``refuse(args)``: what is missing from a command line argparse accepted (a usage error, exit 2), or None."""

    name: str
    help: str
    define: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    refuse: Callable[[argparse.Namespace], str | None] | None = None


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + error
        self.exit(2, f"lumen: {message} (see 'python main.py --help')\n")


class _CommandParser(Parser):
    """A subcommand's parser, whose arguments its command defines the first time it parses."""

    define: Callable[[argparse.ArgumentParser], None] | None = None

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        define, self.define = self.define, None
        if define is not None:
            define(self)
        return super().parse_known_args(args, namespace)


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], refused in one line otherwise."""

    def parse(text: str) -> int:
        digits = text.strip()
        if (
            not (digits.lstrip("-").isascii() and digits.lstrip("-").isdigit() and len(digits) <= 20)
            or not low <= int(digits) <= high
        ):
            shown = text if len(text) <= 24 else text[:20] + "…"
            raise argparse.ArgumentTypeError(f"takes a whole number from {low:,} to {high:,}, got {shown!r}")
        return int(digits)

    return parse


def build(commands: Sequence[Command]) -> Parser:
    parser = Parser(
        prog="lumen",
        description="Build, train and look inside neural networks. Without a command, the window opens; with a run "
        "folder or a spec .json as the only argument (python main.py RUN_DIR), it opens on that run or spec.",
    )
    parser.add_argument(
        "--self-test",
        nargs="?",
        const="lenet5",
        metavar="PRESET",
        help="open the main window offscreen with PRESET (default lenet5), train a few steps, show and export every "
        "view that applies, exit 0 if every one drew and nothing raised",
    )
    subparsers = parser.add_subparsers(dest="command", parser_class=_CommandParser)
    for command in commands:
        subparsers.add_parser(command.name, help=command.help).define = command.define
    return parser


def parse(commands: Sequence[Command], argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, parsed; a usage error exits 2 with one line."""
    parser = build(commands)
    args = parser.parse_args(argv)
    for command in commands:
        if command.name == args.command and command.refuse is not None:
            refusal = command.refuse(args)
            if refusal is not None:
                parser.error(refusal)
    return args
