"""Tensor shapes as Lumen speaks of them: one sample's shape (no batch), how it is written, and the errors a
shape rule raises."""

from __future__ import annotations

Shape = tuple[int, ...]  # one sample's shape, without the batch dimension


class ShapeError(ValueError):
    """Raised by a layer's shape rule; ``engine.graph.model`` adds the node's name."""


class InputShapeError(ShapeError):
    """The incoming tensor does not fit the layer; ``engine.graph.model`` adds which node it came from."""


def fmt(shape: tuple[float, ...]) -> str:
    """``1×28×28``."""
    return "×".join(str(d) for d in shape)
