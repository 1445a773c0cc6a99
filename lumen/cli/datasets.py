"""``lumen datasets``: the built-in datasets, one per line (imports neither torch nor numpy)."""

from __future__ import annotations

import argparse

from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from lumen.engine.data.datasets import DATASETS  # imports neither torch nor numpy

    width = max(len(name) for name in DATASETS)
    for entry in DATASETS.values():
        print(f"{entry.name:<{width}}  {entry.summary}")


COMMAND = Command("datasets", "list the built-in datasets", define, run)
