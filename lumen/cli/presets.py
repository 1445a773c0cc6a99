"""``lumen presets``: one preset per line, name and description."""

from __future__ import annotations

import argparse

from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from lumen.engine.presets import PRESETS

    width = max(len(name) for name in PRESETS)
    for preset in PRESETS.values():
        print(f"{preset.name:<{width}}  {preset.summary}")


COMMAND = Command("presets", "list the model presets", define, run)
