"""What kind of model is loaded (``ModelInfo``), worked out from its spec, its data and its objective."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lumen.engine.data.datasets import Dataset
from lumen.engine.data.user_sequences import character_vocabulary
from lumen.engine.errors import DataError, SpecError
from lumen.engine.events import ModelInfo
from lumen.engine.graph.model import infer_shapes, input_dtype
from lumen.engine.layers import LAYERS
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.objectives import objective_class


def family_of(spec: ModelSpec, objective: str | None) -> str:
    """``boltzmann``, ``autoencoder``, ``recurrent``, ``cnn`` or ``dense``: what its objective trains, else the
    family of its defining layers (a recurrent layer makes a model recurrent even when a conv reads its input)."""
    families = {LAYERS[n.type].family for n in spec.nodes if n.type in LAYERS}
    if objective in ("rbm", "dbn", "dbm") or "boltzmann" in families:
        return "boltzmann"
    if objective == "autoencoder" or any(n.type in ("bottleneck", "variational_bottleneck") for n in spec.nodes):
        return "autoencoder"
    if "recurrent" in families:
        return "recurrent"
    return "cnn" if "conv" in families else "dense"


def model_info(spec: ModelSpec, data: Dataset, objective: str | None, order: Sequence[str] = ()) -> ModelInfo:
    """``order``: the nodes in the order the model runs them (``GraphModel.order``); the spec's order otherwise."""
    types = {n.id: n.type for n in spec.nodes}
    order = [n for n in (order or types) if n != spec.input_node.id]
    try:
        shapes = infer_shapes(spec)
    except SpecError:  # a model that runs has shapes; without them, views just offer no positions
        shapes = {}
    return ModelInfo(
        name=spec.name,
        family=family_of(spec, objective),
        input_shape=tuple(spec.input_shape),
        layer_types=frozenset(n.type for n in spec.nodes),
        data=data.name,
        task=data.task,
        objective=objective,
        loss_name=objective_class(objective).describe_loss(spec) if objective else "",
        classes=tuple(data.classes),
        layers=tuple((n, types[n]) for n in order),
        layer_shapes=tuple(tuple(shapes[n]) for n in order) if all(n in shapes for n in order) else (),
        characters=_characters(spec, data),
    )


def _characters(spec: ModelSpec, data: Dataset) -> tuple[str, ...]:
    """The characters a model takes one-hot, one per step (empty for any other input)."""
    if len(spec.input_shape) != 2 or input_dtype(spec) != torch.float32 or len(data.val_x) == 0:
        return ()
    try:
        return character_vocabulary(data, spec.input_shape[-1])
    except DataError:
        return ()
