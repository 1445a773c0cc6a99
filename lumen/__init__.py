"""Lumen: build, train and look inside neural networks, offline.

The package holds the engine (``lumen.engine``: plain Python and PyTorch, no Qt), the window (``lumen.gui``) and
the command line (``lumen.cli``). Importing ``lumen`` loads none of them: ``watch`` imports what it needs when
called."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lumen.watching.client import Watch


def watch(
    model: nn.Module,
    probe_input: Any = None,
    classes: Any = None,
    window: bool = True,
    out: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Watch:
    """Watch a training loop Lumen does not run; returns at once (a notebook goes on).

    ``model``: any ``torch.nn.Module``. ``probe_input``: a batch of inputs (or ``(inputs, targets)``) the live views
    look at: feature maps, attribution, gates, ... whichever apply to the model. ``classes``: the output's class
    names. ``window``: open a Lumen window in a process of its own (closing it never stops the script; the script
    ending leaves it open). ``out``: a run folder written when the watch closes; without a window, or with ``out``,
    the run is also recorded in the run store (the window's runs list). Options: ``name`` (the model's name),
    ``record`` (True/False: the run store, whatever the default).

    Call ``w.step(loss=..., accuracy=...)`` after each batch (any names), and ``w.close()`` at the end, or use
    ``with lumen.watch(...) as w:``.
    """
    from lumen.watching.client import watch as start

    return start(model, probe_input, classes, window, out, **options)


__all__ = ["watch"]
