"""``lumen runs``: the run store, one run per line (id, model, data, status, best metric, steps)."""

from __future__ import annotations

import argparse

from lumen.cli.parser import Command


def define(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> None:
    from lumen.engine.io.store import RunStore
    from lumen.engine.untrusted import printable

    with RunStore() as store:
        rows = store.runs()
    if not rows:
        print("no runs yet (train one: lumen train MODEL --out RUN)")
        return
    table = [("id", "model", "data", "status", "best", "steps")]
    table += [(r.id, r.model, r.data, r.status, r.best(), f"{r.step}/{r.total_steps}") for r in rows]
    widths = [max(len(printable(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(printable(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


COMMAND = Command("runs", "list the runs in the run store (id, model, data, status, best metric)", define, run)
