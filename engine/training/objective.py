"""Whether a model's output fits what training asks of it, checked before the first batch.

The objective (``engine.training.objectives``) decides: a classifier must give one score per class (per step for
tagging), a forecaster the target's shape, an autoencoder its input's shape, a Boltzmann machine a consistent
chain of rbm nodes. A model that does something else would otherwise fail inside the loss with a message from
deep in PyTorch, or train on nonsense; here it is refused with what it outputs and what the data needs, naming
the node. Both the CLI and the engine's worker call this (``Training`` does too, through ``make_objective``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.spec.model_spec import ModelSpec

if TYPE_CHECKING:
    from engine.data.datasets import Dataset


def check_objective(
    spec: ModelSpec, data: Dataset, shapes: dict[str, tuple[int, ...]] | None = None, objective: str | None = None
) -> str:
    """Raise SpecError (naming the node at fault) unless ``spec`` can be trained on ``data`` (an
    ``engine.data.datasets.Dataset``) with ``objective`` (None: the one ``choose_objective`` picks); returns the
    objective's name. ``shapes``: the inferred output shapes, if already known."""
    from engine.training.objectives import choose_objective, objective_class

    if shapes is None:
        from engine.graph.model import infer_shapes

        shapes = infer_shapes(spec)
    name = choose_objective(objective, data, spec)
    objective_class(name).check(spec, data, shapes)
    return name
