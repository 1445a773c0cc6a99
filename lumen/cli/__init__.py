"""Lumen's command line: one module per command, each a ``Command`` (its arguments and what it does), listed in
``COMMANDS`` in the order ``--help`` shows them. ``main.py`` parses (``cli.parser``) and calls ``run``.

Errors are one line on stderr (``lumen: …``) and a non-zero exit: 1 for a refused input, 2 for a bad command line
(``cli.parser``). No module here imports torch before its command runs (``lumen datasets`` never does)."""

from __future__ import annotations

import argparse

from lumen.cli import (
    activations,
    datasets,
    dream,
    explain,
    export,
    gates,
    import_,
    likelihood,
    neighbours,
    open_,
    presets,
    reconstruct,
    runs,
    sample,
    summary,
    train,
)
from lumen.cli.common import from_file, note, one_line
from lumen.cli.parser import Command

COMMANDS: tuple[Command, ...] = tuple(
    module.COMMAND
    for module in (presets, datasets, runs, summary, train, import_, open_, export, explain, activations, gates, dream)
    + (sample, reconstruct, neighbours, likelihood)
)


def run(args: argparse.Namespace) -> int:
    """The command ``args`` names, run; its exit status (a refused input: one line on stderr, 1)."""
    from lumen.engine.errors import LumenError

    command = next(command for command in COMMANDS if command.name == args.command)
    try:
        command.run(args)
    except LumenError as exc:
        note(f"lumen: {one_line(from_file(args, exc))}\n")
        return 1
    except MemoryError:
        note("lumen: out of memory\n")
        return 1
    except BrokenPipeError:
        raise  # the reader of stdout left: main.py's caller says nothing
    except OSError as exc:  # a file system error no check foresaw (the disk went away, ...): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        note(f"lumen: {one_line(where + (exc.strerror or str(exc)))}\n")
        return 1
    return 0
