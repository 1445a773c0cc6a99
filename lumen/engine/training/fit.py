"""Fit a model to a dataset: resize the input node and the last layer when the data's sizes differ.

What may change: the input's shape (channels, image size, features per step, sequence length — the same number
of dimensions), the last sized layer before the output (``linear``'s out_features, ``conv2d``'s out_channels,
``reshape``'s shape, walking back through layers that keep the shape, such as activations and dropout), and a
``repeat`` node's steps (the length a decoder produces). Every change is one line of ``FitReport.changes``. A
model that still does not fit gets the objective's own message, naming the node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import prod
from typing import Any

from lumen.engine.data.datasets import Dataset
from lumen.engine.errors import SpecError
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import fmt
from lumen.engine.training.objectives import objective_class


@dataclass(frozen=True)
class FitReport:
    spec: ModelSpec
    objective: str
    changes: tuple[str, ...]

    def line(self) -> str:
        return f"fitted to the data: {'; '.join(self.changes)}" if self.changes else ""


def _with_params(spec: ModelSpec, node_id: str, **params: Any) -> ModelSpec:
    node = spec.node(node_id)
    new = dataclasses.replace(node, params={**node.params, **params})
    return dataclasses.replace(spec, nodes=tuple(new if n is node else n for n in spec.nodes))


def _shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    from lumen.engine.graph.model import infer_shapes

    return infer_shapes(spec)


def _partial(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    from lumen.engine.graph.model import partial_shapes

    return partial_shapes(spec)


def fit_to_data(spec: ModelSpec, data: Dataset, objective: str) -> FitReport:
    """``spec`` resized to train on ``data`` with ``objective``; SpecError (naming the node) if it cannot be."""
    changes: list[str] = []
    cls = objective_class(objective)
    need = cls.output_shape(spec, data)
    # The output first, with the input as it is (a reshape back to the input's shape must change before the
    # input does), then the input, then the output again for what depends on the input (a sequence's length).
    spec = _fit_output(spec, need, changes)
    has, takes = tuple(data.input_shape), tuple(spec.input_shape)
    input_id = spec.input_node.id
    if has != takes:
        if len(has) != len(takes):
            raise SpecError(
                f"the model takes {fmt(takes)} inputs, but {data.name} has {fmt(has)} samples "
                f"({len(has)} dimensions, not {len(takes)}); it cannot be resized to fit",
                input_id,
            )
        spec = _with_params(spec, input_id, shape=list(has))
        try:
            _shapes(spec)
        except SpecError as exc:
            raise SpecError(f"{exc.reason} (with the input resized to {data.name}'s {fmt(has)})", exc.node) from None
        changes.append(f"input {fmt(takes)} → {fmt(has)}")
        spec = _fit_output(spec, need, changes)
    if spec.preprocess is not None:
        # Trained on Lumen's data, the model sees that data's values ([0, 1], no mean/std): a dropped picture is
        # prepared the same way, not as the spec's original weights wanted (ImageNet's, for the full-size ones).
        changes.append(f"picture preparation: {data.name}'s, not {spec.preprocess.describe()}")
        spec = dataclasses.replace(spec, preprocess=None)
    cls.check(spec, data, _shapes(spec))
    return FitReport(spec, objective, tuple(changes))


def _fit_output(spec: ModelSpec, need: tuple[int, ...] | None, changes: list[str]) -> ModelSpec:
    try:
        out = tuple(_shapes(spec)[spec.output_id])
    except SpecError:
        return spec  # the input's change is refused with its own message
    if need is None or out == need:
        return spec
    # A sequence of the wrong length: the repeat node decides how many steps a decoder makes.
    if len(need) == len(out) == 2 and out[0] != need[0]:
        repeats = [n for n in spec.topological_order() if spec.node(n).type == "repeat"]
        if repeats:
            spec = _with_params(spec, repeats[-1], steps=need[0])
            changes.append(f"{repeats[-1]} steps {out[0]} → {need[0]}")
    node = spec.output_id
    while True:
        n = spec.node(node)
        sources = spec.inputs_of(node)
        known = _partial(spec)
        if node not in known:
            return spec
        current = tuple(known[node])
        if n.type == "reshape":
            spec = _with_params(spec, node, shape=list(need))
            changes.append(f"{node} shape {fmt(current)} → {fmt(need)}")
            need, node = (prod(need),), sources[0]
            if tuple(known.get(node, ())) == need:
                return spec
            continue
        if n.type == "linear":
            width = need[-1]
            if current[-1] != width:
                spec = _with_params(spec, node, out_features=width)
                changes.append(f"{node} out_features {current[-1]} → {width}")
            return spec
        if n.type in ("conv2d", "conv1x1"):
            spec = _with_params(spec, node, out_channels=need[0])
            changes.append(f"{node} out_channels {current[0]} → {need[0]}")
            return spec
        shape_kept = len(sources) == 1 and tuple(known.get(sources[0], ())) == current
        if not shape_kept or spec.node(sources[0]).type == "input":
            return spec  # nothing to resize: the objective's check says what is wrong
        node = sources[0]


# ---- a run's data: the preset's default, or the one chosen -----------------------------------------------------


@dataclass(frozen=True)
class DataChoice:
    """Which data a model trains on when none is chosen, and how: from its preset, else from its input."""

    dataset: str
    options: dict[str, Any]
    objective: str | None


def default_data(spec: ModelSpec) -> DataChoice:
    """The preset's dataset and objective when ``spec`` is (or was edited from) a preset — matched by the
    spec's name — else a guess from the input: 1-channel images → mnist, 3-channel → shapes, sequences → sine."""
    from lumen.engine.presets import PRESETS

    for preset in PRESETS.values():
        if preset.make().name == spec.name:
            return DataChoice(preset.dataset, dict(preset.data_options), preset.objective)
    shape = tuple(spec.input_shape)
    if len(shape) == 3:
        return DataChoice("mnist" if shape[0] == 1 else "shapes", {}, None)
    if len(shape) == 2:
        return DataChoice("sine", {}, None)
    return DataChoice("mnist", {}, None)


def load_run_data(spec: ModelSpec, dataset: str | None) -> tuple[Dataset, str | None]:
    """The dataset a run of ``spec`` uses (``dataset``: a name or path; None: the default) and the objective the
    preset prefers (None: let the data decide)."""
    from lumen.engine.data.datasets import load_dataset

    choice = default_data(spec)
    if dataset is None or dataset == choice.dataset:
        return load_dataset(choice.dataset, **choice.options), choice.objective
    return load_dataset(dataset), choice.objective


def plan_run(spec: ModelSpec, data: Dataset, objective: str | None = None, preferred: str | None = None) -> FitReport:
    """``spec`` fitted to ``data`` for ``objective`` (None: the preset's ``preferred`` one when the data suits
    it, else what the model's layers or the data's task call for)."""
    from lumen.engine.training.objectives import choose_objective

    name = objective or choose_objective(preferred, data, spec)
    return fit_to_data(spec, data, name)
