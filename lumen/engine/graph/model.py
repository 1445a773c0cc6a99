"""From a spec to shapes, a layer summary and a runnable ``nn.Module``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lumen.engine.errors import SpecError
from lumen.engine.graph import budget
from lumen.engine.layers import LAYERS
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import InputShapeError, Shape, ShapeError, fmt


@dataclass(frozen=True)
class LayerRow:
    """One line of a model summary."""

    name: str
    type: str
    output_shape: Shape
    params: int


def _check(spec: ModelSpec) -> list[str]:
    """Structural checks; returns the evaluation order."""
    for node in spec.nodes:
        if node.type not in LAYERS:
            raise SpecError(f"unknown layer type {node.type!r} (known: {', '.join(sorted(LAYERS))})", node.id)
    spec.input_node  # noqa: B018 - raises unless there is exactly one
    order = spec.topological_order()
    output = spec.output_id
    for node in spec.nodes:
        _check_arity(spec, node.id)
    if output == spec.input_node.id:
        raise SpecError("the model has no layers after its input")
    return order


def _check_arity(spec: ModelSpec, node_id: str) -> None:
    node = spec.node(node_id)
    layer = LAYERS[node.type]
    arity, got = layer.arity, len(spec.inputs_of(node_id))
    if arity is None and got < layer.min_inputs:
        if layer.min_inputs == 1:
            raise SpecError("needs at least one incoming edge", node_id)
        raise SpecError(f"merges two or more inputs, has {got}", node_id)
    if arity is not None and got != arity:
        if node.type == "input":
            raise SpecError("the input node cannot have incoming edges", node_id)
        raise SpecError(f"needs {arity} incoming edge{'s' if arity > 1 else ''}, has {got}", node_id)


def infer_shapes(spec: ModelSpec) -> dict[str, Shape]:
    """Output shape (without batch) of every node, in evaluation order; SpecError names the bad node."""
    return _infer(spec, _check(spec), partial=False)


def partial_shapes(spec: ModelSpec) -> dict[str, Shape]:
    """The shapes of every node whose inputs are known and fit, even when the model as a whole is invalid
    (``infer_shapes`` stops at the first error; an editor still wants to show the rest)."""
    try:
        order = spec.topological_order()
    except SpecError:
        return {}
    return _infer(spec, [n for n in order if spec.node(n).type in LAYERS], partial=True)


def _infer(spec: ModelSpec, order: list[str], partial: bool) -> dict[str, Shape]:
    shapes: dict[str, Shape] = {}
    ids_from: str | None = None  # the input node, when it holds integer ids
    for node_id in order:
        node = spec.node(node_id)
        layer = LAYERS[node.type]
        sources = spec.inputs_of(node_id)
        try:
            if partial:
                if any(s not in shapes for s in sources):
                    continue  # downstream of a problem: unknown
                _check_arity(spec, node_id)
            try:
                params = layer.resolve(node.params)
                if node.type == "input" and params["dtype"] == "int64":
                    ids_from = node_id
                _check_ids(node.type, layer.takes_ids, sources, ids_from)
                shape = layer.infer(params, [shapes[i] for i in sources])
            except InputShapeError as exc:
                raise SpecError(f"{exc} (after {sources[0]})", node_id) from None
            except ShapeError as exc:
                raise SpecError(str(exc), node_id) from None
            if any(d <= 0 for d in shape):
                raise SpecError(f"output shape {fmt(shape)} has an empty dimension", node_id)
        except SpecError:
            if not partial:
                raise
            continue
        shapes[node_id] = shape
    return shapes


def _check_ids(layer_type: str, takes_ids: bool, sources: list[str], ids_from: str | None) -> None:
    """Integer ids (an int64 input) may flow only into layers that read ids, such as embedding."""
    reads_ids = [s for s in sources if s == ids_from]
    if takes_ids and len(reads_ids) != len(sources):
        raise ShapeError(
            f'{layer_type} reads integer ids: connect it to the input node and set that node\'s dtype to "int64"'
        )
    if reads_ids and not takes_ids:
        raise ShapeError(
            f"{layer_type} cannot read the integer ids of {ids_from} (dtype int64); put an embedding first"
        )


def input_dtype(spec: ModelSpec) -> torch.dtype:
    """The dtype of the model's input: float32, or int64 for token ids."""
    dtype = spec.input_node.params.get("dtype", "float32")
    return torch.int64 if dtype == "int64" else torch.float32


def example_input(spec: ModelSpec, batch: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random input batch of the right shape and dtype: uniform [0, 1) floats, or ids every embedding
    reading the input accepts."""
    shape = (batch, *spec.input_shape)
    if input_dtype(spec) == torch.float32:
        return torch.rand(shape, generator=generator)
    vocab = [n.params.get("num_embeddings") for n in spec.nodes if spec.input_node.id in spec.inputs_of(n.id)]
    high = min((v for v in vocab if isinstance(v, int) and v > 0), default=2)
    return torch.randint(0, high, shape, generator=generator)


class GraphModel(nn.Module):
    """Runs a spec's nodes in topological order.

    Each node's module is registered at the node id's path ("conv1", or "layer1.0.conv1" inside plain
    containers), so state-dict keys are "<node id>.<parameter>", as torchvision's are for its models.
    """

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.shapes = infer_shapes(spec)
        self.order = list(self.shapes)
        self.sources = {node_id: spec.inputs_of(node_id) for node_id in self.order}
        self.output_id = spec.output_id
        self.layers: dict[str, nn.Module] = {}  # node id -> module; plain dict, the tree below registers them
        for node in spec.nodes:  # registered in the spec's order, so state-dict keys follow it (torchvision's)
            node_id = node.id
            layer = LAYERS[node.type]
            try:
                module = layer.build(layer.resolve(node.params), [self.shapes[s] for s in self.sources[node_id]])
            except SpecError:
                raise
            except (RuntimeError, OverflowError, ValueError, MemoryError) as exc:  # sizes torch cannot allocate
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise SpecError(f"cannot be built ({type(exc).__name__}: {first})", node_id) from None
            self._register_at_path(node_id, module)
            self.layers[node_id] = module

    def _register_at_path(self, path: str, module: nn.Module) -> None:
        *parents, leaf = path.split(".")
        top = path.split(".")[0]
        if top not in self._modules and hasattr(self, top):
            raise SpecError(f"{top!r} is a reserved name in a built model; rename the node", path)
        owner: nn.Module = self
        for part in parents:
            child = owner._modules.get(part)
            if child is None:
                child = nn.Module()  # a plain container, as nn.Sequential's children are
                owner.add_module(part, child)
            owner = child
        owner.add_module(leaf, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_recording(x, ())[0]

    def forward_recording(
        self, x: torch.Tensor, record: tuple[str, ...] | list[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The output, plus the outputs of the nodes named in ``record`` (for feature maps)."""
        values: dict[str, torch.Tensor] = {}
        for node_id in self.order:
            sources = self.sources[node_id]
            inputs = [values[s] for s in sources] if sources else [x]
            values[node_id] = self.layers[node_id](*inputs)
        return values[self.output_id], {n: values[n] for n in record}

    def nodes_of_type(self, *types: str) -> list[str]:
        return [n for n in self.order if self.spec.node(n).type in types]


def build_model(spec: ModelSpec, batch: int = budget.SAMPLE_BATCH) -> GraphModel:
    """The model with fresh weights, once a build on the meta device has shown that its weights and ``batch``
    samples' activations fit in ``engine.graph.budget``'s memory limit (SpecError naming the heaviest node if
    not): nothing is allocated for a model too big to exist."""
    with torch.device("meta"):
        budget.check_model(GraphModel(spec), batch)
    return GraphModel(spec)


def summarize(spec: ModelSpec) -> list[LayerRow]:
    """Per-node output shape and parameter count, without allocating the weights (meta device)."""
    with torch.device("meta"):
        model = GraphModel(spec)
    return [
        LayerRow(
            node_id,
            spec.node(node_id).type,
            model.shapes[node_id],
            sum(p.numel() for p in model.layers[node_id].parameters()),
        )
        for node_id in model.order
    ]
