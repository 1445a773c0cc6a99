"""A model put in eval mode for a look, and given back in the mode it was in: probes and explanations read a model
that may be training, and must neither leave it in eval mode nor switch dropout and batch norm on mid-look."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block, its own mode restored afterwards (gradients as they were: add
    ``torch.no_grad()`` where none are wanted)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
