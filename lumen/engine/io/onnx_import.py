"""ONNX models into Lumen: a spec whose nodes are Lumen layers wherever one expresses the op, and the weights.

``open_onnx(path)`` reads the file through ``engine.untrusted.read_onnx`` (size, regular file, external data
inside the model's folder, opset, node limit, ``onnx.checker``) and converts its graph node by node, in the order
ONNX keeps them (topological):

- the ops of ``MAPPED`` become Lumen layers (Conv → ``conv2d``, Gemm → ``linear``, ...), their weights the
  layer's state dict, named after the ONNX initializer (``layer1.0.conv1.weight`` stays ``layer1.0.conv1``);
- what exporters compute from shapes is folded into constants first: the batch size is a stand-in number while
  ``Shape → Gather → Unsqueeze → Concat → Reshape`` chains are evaluated (by ONNX's reference evaluator, for
  the ops of ``FOLDED`` only), so the Reshape gets a fixed per-sample shape; a zero ``Pad`` before a ``Conv``
  becomes the convolution's padding; ``MatMul`` + ``Add`` of a bias is one ``linear``; a global pool followed by a
  flatten is one ``global_avgpool``;
- an op no Lumen layer expresses (or whose attributes one cannot: a Softmax over the batch, a Reshape that mixes
  samples) is kept as an opaque ``onnx_op`` node that runs the op with torch (``engine.modules.onnx_ops``), named
  in ``OpenedModel.opaque`` by op and count; an op Lumen can neither map nor run is refused, all of them named.

The result is an ``OpenedModel``: the spec, the weights (a state dict that loads with ``strict=True`` into the
built model), the opaque ops and a one-line summary.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumen.engine.errors import DataError, LumenError, SpecError
from lumen.engine.layers import LAYERS
from lumen.engine.modules.onnx_ops import ONNX_OPS
from lumen.engine.spec.model_spec import MAX_NODES, ModelSpec, Node
from lumen.engine.spec.shapes import Shape, ShapeError, fmt
from lumen.engine.untrusted import printable, read_onnx, shown

BATCH = 1_000_003  # the batch size's stand-in while shapes are folded: a prime no real dimension is likely to be
MAX_FOLDED = 1 << 24  # elements a folded constant may have (ConstantOfShape, Expand, Range, Tile)
SMALL_CONSTANT = 64  # an opaque op's constant of at most this many values is written into the spec, too

# ONNX ops evaluated when all their inputs are constants (shape arithmetic); no other op is run while opening.
FOLDED = frozenset(
    """Identity Cast Gather Unsqueeze Squeeze Concat Slice Add Sub Mul Div Neg Abs Equal Less Greater Where Not
    Reshape Transpose Floor Ceil Sqrt Min Max ReduceProd ConstantOfShape Range Expand Tile Shape Size Constant
    Sign Pow Exp Log Cos Sin And Or Mod Flatten""".split()
)


@dataclass(frozen=True)
class OpenedModel:
    """A model opened from outside Lumen: its spec, its weights, the ops kept opaque (op → nodes)."""

    spec: ModelSpec
    weights: dict[str, torch.Tensor]
    opaque: dict[str, int] = field(default_factory=dict)
    source: str = ""  # the file it came from, for messages

    def opaque_line(self) -> str:
        """``2 ops opened as opaque modules, no Lumen layer for them: Erf ×2`` or empty."""
        if not self.opaque:
            return ""
        total = sum(self.opaque.values())
        ops = ", ".join(f"{op} ×{count}" for op, count in sorted(self.opaque.items()))
        return f"{total} op{'s' if total != 1 else ''} kept opaque (no Lumen layer for them): {ops}"

    def line(self) -> str:
        layers = len(self.spec.nodes) - 1
        params = sum(int(t.numel()) for k, t in self.weights.items() if not _is_buffer(k))
        text = f"{self.spec.name}: {layers} layers, {params:,} parameters, input {fmt(self.spec.input_shape)}"
        return text + (f"; {self.opaque_line()}" if self.opaque else "")


def _is_buffer(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return leaf in ("running_mean", "running_var", "num_batches_tracked") or leaf.startswith("constant")


class _NoLayer(Exception):
    """This node, with these attributes, is no Lumen layer: keep it as an opaque op (the reason says why)."""


@dataclass(frozen=True)
class _Tensor:
    """A value of the graph that depends on the input: the spec node that makes it and its per-sample shape."""

    node: str
    shape: Shape


@dataclass(frozen=True)
class _Padded:
    """A zero Pad of ``source`` not yet made a node: a Conv reading it takes the padding as its own."""

    source: str  # the ONNX value padded
    pads: tuple[int, ...]  # begin per spatial axis, then end per spatial axis


def open_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> OpenedModel:
    """The model in an ONNX file as a Lumen spec and weights; ``input_shape`` (one sample, no batch) for a
    graph whose input leaves sizes open. Refusals are one line naming the file and the op or field."""
    path = Path(path)
    model = read_onnx(path, MAX_NODES)
    name = re.sub(r"[^\w.+-]+", "_", path.stem)[:80] or "model"
    try:
        opened = onnx_to_spec(model, name, input_shape)
    except SpecError as exc:
        raise SpecError(f"{shown(path.name)}: {exc}") from None
    except LumenError as exc:
        raise type(exc)(f"{shown(path.name)}: {exc}") from None
    return OpenedModel(opened.spec, opened.weights, opened.opaque, str(path))


def onnx_to_spec(model: Any, name: str, input_shape: tuple[int, ...] | None = None) -> OpenedModel:
    """An ``onnx.ModelProto`` (already checked) as a spec and weights."""
    opset = next((e.version for e in model.opset_import if e.domain in ("", "ai.onnx")), 0)
    return _Converter(model.graph, opset, name).convert(input_shape)


# ---- the converter ---------------------------------------------------------------------------------------------


class _Converter:
    def __init__(self, graph: Any, opset: int, name: str):
        from onnx import numpy_helper

        self.graph, self.opset, self.name = graph, opset, name
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.values: dict[str, _Tensor | _Padded] = {}
        self.nodes: list[Node] = []
        self.shapes: dict[str, Shape] = {}
        self.edges: list[tuple[str, str]] = []
        self.weights: dict[str, torch.Tensor] = {}
        self.opaque: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.prefixes: set[str] = set()
        self.done: set[int] = set()  # ONNX nodes taken along by an earlier one (a MatMul's bias Add)
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for value in node.input:
                self.consumers.setdefault(value, []).append(node)
        self.padded_nodes: dict[str, _Tensor] = {}

    # ---- the whole graph ----
    def convert(self, input_shape: tuple[int, ...] | None) -> OpenedModel:
        self._refuse_unknown_ops()
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            names = ", ".join(printable(i.name[:40]) for i in inputs) or "none"
            raise DataError(f"the graph has {len(inputs)} inputs ({names}); a Lumen model takes one")
        if len(self.graph.output) != 1:
            raise DataError(f"the graph has {len(self.graph.output)} outputs; a Lumen model gives one")
        graph_input = inputs[0]
        shape, dtype = self._input_shape(graph_input, input_shape)
        self._add("input", "input", {"shape": list(shape), **({"dtype": dtype} if dtype != "float32" else {})}, [])
        self.values[graph_input.name] = _Tensor("input", shape)
        for index, node in enumerate(self.graph.node):
            if index in self.done:
                continue
            self._convert_node(node)
        out = self.graph.output[0].name
        if out not in self.values:
            raise DataError(f"the output {printable(out[:80])} does not depend on the input (a constant)")
        result = self._tensor(out)
        return self._finish(result.node)

    def _refuse_unknown_ops(self) -> None:
        known = set(MAPPED) | set(ONNX_OPS) | FOLDED
        unknown = Counter(n.op_type for n in self.graph.node if n.op_type not in known)
        if unknown:
            ops = ", ".join(f"{printable(op[:60])} ×{count}" for op, count in sorted(unknown.items()))
            raise LumenError(f"ops Lumen can neither express as layers nor run: {ops}")

    def _input_shape(self, value: Any, given: tuple[int, ...] | None) -> tuple[Shape, str]:
        tensor = value.type.tensor_type
        dtype = {1: "float32", 7: "int64"}.get(tensor.elem_type)
        if dtype is None:
            raise DataError(
                f"the input {printable(value.name[:80])} has element type {tensor.elem_type}; "
                "Lumen models take float32 (or int64 ids)"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if given is not None:
            if dims and len(given) != len(dims) - 1:
                raise DataError(
                    f"--input has {len(given)} dimensions; the graph's input has {len(dims) - 1} besides the batch"
                )
            return tuple(given), dtype
        if len(dims) < 2:
            raise DataError(f"the input {printable(value.name[:80])} has no dimension besides the batch")
        open_dims = [i for i, d in enumerate(dims[1:], 1) if not d]
        if open_dims:
            raise DataError(
                f"the input's dimension {open_dims[0]} has no fixed size; give one sample's shape "
                "(e.g. --input 3,224,224)"
            )
        return tuple(int(d) for d in dims[1:] if d), dtype

    def _finish(self, output: str) -> OpenedModel:
        keep = {output}
        sources: dict[str, list[str]] = {}
        for src, dst in self.edges:
            sources.setdefault(dst, []).append(src)
        stack = [output]
        while stack:
            for src in sources.get(stack.pop(), []):
                if src not in keep:
                    keep.add(src)
                    stack.append(src)
        nodes = [n for n in self.nodes if n.id in keep]
        if not any(n.id == "input" for n in nodes):
            raise DataError("the output does not depend on the input")
        edges = [(a, b) for a, b in self.edges if a in keep and b in keep]
        weights = {k: v for k, v in self.weights.items() if k.rsplit(".", 1)[0] in keep}
        opaque = Counter(n.params["op"] for n in nodes if n.type == "onnx_op")
        description = f"Opened from an ONNX file: {len(self.graph.node)} ONNX nodes, {len(nodes) - 1} Lumen layers"
        if opaque:
            description += f", {sum(opaque.values())} of them opaque ONNX ops"
        spec = ModelSpec(self.name, tuple(nodes), tuple(edges), description)
        spec = ModelSpec.from_dict(spec.to_dict())  # the checks every spec file passes (ids, numbers, text)
        return OpenedModel(spec, weights, dict(opaque))

    # ---- one node ----
    def _convert_node(self, node: Any) -> None:
        op = node.op_type
        if op == "Constant":
            self.consts[node.output[0]] = _constant_value(node)
            return
        live = [v for v in node.input if v and v not in self.consts]
        if op in ("Shape", "Size") and live:
            self._fold_shape(node)
            return
        if not live:
            self._fold(node)
            return
        mapper = MAPPED.get(op)
        try:
            if mapper is None:
                raise _NoLayer(f"no Lumen layer is an ONNX {op}")
            mapper(self, node)
        except _NoLayer:
            self._opaque(node)

    def _fold(self, node: Any) -> None:
        if node.op_type not in FOLDED:
            raise LumenError(f"op {node.op_type} ({printable(node.name[:60])}) computes a constant Lumen does not fold")
        from onnx.reference import ReferenceEvaluator

        args = [self.consts[v] if v else None for v in node.input]
        _check_fold_size(node, args)
        try:
            results = ReferenceEvaluator(node).run(None, {v: a for v, a in zip(node.input, args) if v})
        except Exception as exc:
            raise LumenError(
                f"op {node.op_type} ({printable(node.name[:60])}) cannot be folded: "
                f"{printable(str(exc).splitlines()[0][:160]) if str(exc) else type(exc).__name__}"
            ) from None
        for value, result in zip(node.output, results):
            array = np.asarray(result)
            if array.size > MAX_FOLDED:
                raise LumenError(f"op {node.op_type} makes a constant of {array.size:,} values; at most {MAX_FOLDED:,}")
            self.consts[value] = array

    def _fold_shape(self, node: Any) -> None:
        source = self._tensor(node.input[0])
        full = np.array([BATCH, *source.shape], dtype=np.int64)
        if node.op_type == "Size":
            self.consts[node.output[0]] = np.array(full.prod(), dtype=np.int64)
            return
        a = _attributes(node)
        start, end = int(a.get("start", 0)), a.get("end")
        self.consts[node.output[0]] = full[start : None if end is None else int(end)]

    # ---- values ----
    def _tensor(self, value: str) -> _Tensor:
        """The tensor a value holds, a pending zero Pad made a node first (for any reader but a Conv)."""
        found = self.values.get(value)
        if found is None:
            raise _NoLayer(f"{value} is not a tensor")
        if isinstance(found, _Padded):
            if value not in self.padded_nodes:
                source = self._tensor(found.source)
                n = len(found.pads) // 2
                pads = [0, 0, *found.pads[:n], 0, 0, *found.pads[n:]]
                tensor = self._add_opaque_node(
                    "Pad", {"mode": "constant"}, [source], ["x", "c0"], [np.array(pads, dtype=np.int64)], value
                )
                self.padded_nodes[value] = tensor
            return self.padded_nodes[value]
        return found

    def _const(self, value: str, what: str) -> np.ndarray:
        if value not in self.consts:
            raise _NoLayer(f"its {what} is computed, not a constant")
        return self.consts[value]

    def _optional_const(self, node: Any, slot: int) -> np.ndarray | None:
        if len(node.input) > slot and node.input[slot]:
            return self._const(node.input[slot], f"input {slot}")
        return None

    # ---- making spec nodes ----
    def _node_id(self, node: Any, weight: str | None = None) -> str:
        base = ""
        if weight and "." in weight and not weight.startswith("onnx::"):
            base = weight.rsplit(".", 1)[0]
        if not base and node is not None and node.name:
            parts = [p for p in node.name.split("/") if p]
            base = parts[-2] if len(parts) >= 2 else parts[0]
        if not base and node is not None:
            base = node.op_type.lower()
        base = re.sub(r"[^A-Za-z0-9_.]+", "_", base).strip("._") or "node"
        base = re.sub(r"\.{2,}", ".", base)
        parts = [p if p else "_" for p in base.split(".")]
        if not re.match(r"[A-Za-z_]", parts[0]):
            parts[0] = "n_" + parts[0]
        base = ".".join(parts)[:150]
        candidate, k = base, 1
        while self._taken(candidate):
            k += 1
            candidate = f"{base}_{k}"
        self.ids.add(candidate)
        pieces = candidate.split(".")
        self.prefixes.update(".".join(pieces[:i]) for i in range(1, len(pieces)))
        return candidate

    def _taken(self, candidate: str) -> bool:
        if candidate in self.ids or candidate in self.prefixes or candidate == "input":
            return True
        pieces = candidate.split(".")
        if pieces[0] in _RESERVED or hasattr(torch.nn.Module, pieces[0]):
            return True
        return any(".".join(pieces[:i]) in self.ids for i in range(1, len(pieces)))

    def _add(
        self,
        node_id: str,
        layer_type: str,
        params: dict[str, Any],
        inputs: list[_Tensor],
        weights: dict[str, np.ndarray] | None = None,
    ) -> _Tensor:
        layer = LAYERS[layer_type]
        try:
            shape = layer.infer(layer.resolve(params), [t.shape for t in inputs])
        except ShapeError as exc:
            raise _NoLayer(str(exc)) from None
        if layer_type != "input":
            self.ids.add(node_id)
        self.nodes.append(Node(node_id, layer_type, params))
        self.edges += [(t.node, node_id) for t in inputs]
        self.shapes[node_id] = shape
        for key, array in (weights or {}).items():
            if not (array.flags.c_contiguous and array.flags.writeable):
                array = np.array(array, order="C")  # a copy; a 0-d array stays 0-d
            self.weights[f"{node_id}.{key}"] = torch.from_numpy(array)
        return _Tensor(node_id, shape)

    def _layer(
        self,
        node: Any,
        layer_type: str,
        params: dict[str, Any],
        inputs: list[_Tensor],
        weights: dict[str, np.ndarray] | None = None,
        weight_name: str | None = None,
        output: str | None = None,
    ) -> _Tensor:
        """A Lumen layer for ``node``; its shape rule decides (a refusal keeps the node opaque)."""
        layer = LAYERS[layer_type]
        try:
            layer.infer(layer.resolve(params), [t.shape for t in inputs])
        except ShapeError as exc:
            raise _NoLayer(str(exc)) from None
        tensor = self._add(self._node_id(node, weight_name), layer_type, params, inputs, weights)
        self.values[output or node.output[0]] = tensor
        return tensor

    def _drop_last(self, node_id: str) -> None:
        """Take back the node just made (a reshape the pool after it makes unneeded), freeing its id."""
        assert self.nodes[-1].id == node_id
        self.nodes.pop()
        self.edges = [e for e in self.edges if node_id not in e]
        self.weights = {k: v for k, v in self.weights.items() if not k.startswith(node_id + ".")}
        self.ids.discard(node_id)
        self.values = {k: v for k, v in self.values.items() if not (isinstance(v, _Tensor) and v.node == node_id)}

    def _alias(self, node: Any, tensor: _Tensor) -> None:
        self.values[node.output[0]] = tensor

    def _opaque(self, node: Any) -> None:
        if node.op_type not in ONNX_OPS:
            raise LumenError(
                f"op {node.op_type} ({printable(node.name[:60])}) cannot be expressed as a Lumen layer "
                "and Lumen cannot run it"
            )
        used = [v for v in node.output[1:] if v and self.consumers.get(v)]
        if used or any(v == self.graph.output[0].name for v in node.output[1:] if v):
            raise LumenError(f"op {node.op_type} ({printable(node.name[:60])}): Lumen reads only an op's first output")
        slots: list[str] = []
        tensors: list[_Tensor] = []
        constants: list[np.ndarray] = []
        for value in node.input:
            if not value:
                slots.append("")
            elif value in self.consts:
                slots.append(f"c{len(constants)}")
                constants.append(self.consts[value])
            else:
                slots.append("x")
                tensors.append(self._tensor(value))
        self._add_opaque_node(node.op_type, _attributes(node), tensors, slots, constants, node.output[0], node)

    def _add_opaque_node(
        self,
        op: str,
        attributes: dict[str, Any],
        tensors: list[_Tensor],
        slots: list[str],
        constants: list[np.ndarray],
        output: str,
        node: Any = None,
    ) -> _Tensor:
        described = []
        weights: dict[str, np.ndarray] = {}
        for i, array in enumerate(constants):
            array = _lumen_dtype(array)
            if array.dtype == np.int64 and (array == BATCH).any():
                if op != "Reshape":
                    raise LumenError(f"op {op} depends on the batch size, which Lumen models leave open")
                array = np.where(array == BATCH, 0, array)  # Reshape's 0 keeps the dimension: the batch
            entry: dict[str, Any] = {"shape": list(array.shape), "dtype": str(array.dtype)}
            if array.size <= SMALL_CONSTANT:
                entry["values"] = array.reshape(-1).tolist()
            described.append(entry)
            weights[f"constant{i}"] = array
        params = {"op": op, "attributes": attributes, "inputs": slots, "constants": described}
        layer = LAYERS["onnx_op"]
        try:
            layer.infer(layer.resolve(params), [t.shape for t in tensors])
        except ShapeError as exc:
            raise LumenError(f"op {op}: {exc}") from None
        node_id = self._node_id(node) if node is not None else self._fresh(op)
        tensor = self._add(node_id, "onnx_op", params, tensors, weights)
        self.values[output] = tensor
        return tensor

    def _fresh(self, op: str) -> str:
        class _Named:
            name = ""
            op_type = op

        return self._node_id(_Named())


_RESERVED = {"spec", "shapes", "order", "sources", "output_id", "layers", "input"}


# ---- helpers ----------------------------------------------------------------------------------------------------


def _attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as plain JSON values (a tensor attribute as a list, when small)."""
    from onnx import AttributeProto, numpy_helper

    out: dict[str, Any] = {}
    for attribute in node.attribute:
        kind = attribute.type
        if kind == AttributeProto.INT:
            out[attribute.name] = int(attribute.i)
        elif kind == AttributeProto.FLOAT:
            out[attribute.name] = float(np.float32(attribute.f))
        elif kind == AttributeProto.STRING:
            out[attribute.name] = attribute.s.decode("utf-8", "replace")
        elif kind == AttributeProto.INTS:
            out[attribute.name] = [int(v) for v in attribute.ints]
        elif kind == AttributeProto.FLOATS:
            out[attribute.name] = [float(np.float32(v)) for v in attribute.floats]
        elif kind == AttributeProto.STRINGS:
            out[attribute.name] = [s.decode("utf-8", "replace") for s in attribute.strings]
        elif kind == AttributeProto.TENSOR:
            array = numpy_helper.to_array(attribute.t)
            if array.size > SMALL_CONSTANT:
                raise LumenError(
                    f"op {node.op_type}: its attribute {attribute.name} is a tensor of {array.size:,} values"
                )
            out[attribute.name] = _lumen_dtype(array).tolist()
        else:
            raise LumenError(
                f"op {node.op_type}: its attribute {printable(attribute.name[:60])} is of a kind Lumen does not read"
            )
    return out


def _constant_value(node: Any) -> np.ndarray:
    from onnx import numpy_helper

    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
        if attribute.name == "value_float":
            return np.array(attribute.f, dtype=np.float32)
        if attribute.name == "value_floats":
            return np.array(list(attribute.floats), dtype=np.float32)
        if attribute.name == "value_int":
            return np.array(attribute.i, dtype=np.int64)
        if attribute.name == "value_ints":
            return np.array(list(attribute.ints), dtype=np.int64)
    raise LumenError(f"op Constant ({printable(node.name[:60])}) holds a value of a kind Lumen does not read")


def _lumen_dtype(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    raise LumenError(f"a constant of type {array.dtype} is not one Lumen reads")


def _check_fold_size(node: Any, args: list[np.ndarray | None]) -> None:
    """Refuse, before evaluating, a fold whose result would be huge (a hostile ConstantOfShape or Expand)."""
    op = node.op_type
    size: float = 0
    if op == "ConstantOfShape" and args[0] is not None:
        size = float(np.prod(args[0].astype(np.float64)))
    elif op == "Expand" and args[1] is not None and args[0] is not None:
        size = float(np.prod(np.maximum(args[1].astype(np.float64), 1))) * max(args[0].size, 1)
    elif op == "Tile" and args[1] is not None and args[0] is not None:
        size = float(np.prod(args[1].astype(np.float64))) * args[0].size
    elif op == "Range" and all(a is not None for a in args[:3]):
        start, limit, delta = (float(a) for a in args[:3])  # type: ignore[arg-type]
        size = abs((limit - start) / delta) if delta else math.inf
    elif op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Where", "And", "Or", "Min", "Max", "Less", "Greater"):
        try:
            size = float(np.prod(np.broadcast_shapes(*(a.shape for a in args if a is not None)), dtype=np.float64))
        except ValueError:
            raise LumenError(f"op {op} ({printable(node.name[:60])}): its inputs' shapes do not broadcast") from None
    if size > MAX_FOLDED or size != size:
        raise LumenError(
            f"op {op} ({printable(node.name[:60])}) would make a constant of {size:,.0f} values; at most {MAX_FOLDED:,}"
        )


def _same_or_list(values: list[int]) -> int | list[int]:
    return values[0] if len(set(values)) == 1 else list(values)


def _full_axis(axis: int, rank: int) -> int:
    """An axis of the full tensor (batch first) made non-negative."""
    if not -rank <= axis < rank:
        raise _NoLayer(f"axis {axis} is outside a tensor of rank {rank}")
    return axis % rank


# ---- the mapped ops ---------------------------------------------------------------------------------------------


def _conv(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    found = c.values.get(node.input[0])
    pending = found.pads if isinstance(found, _Padded) else None
    x = c._tensor(found.source) if isinstance(found, _Padded) else c._tensor(node.input[0])
    w = c._const(node.input[1], "weight")
    b = c._optional_const(node, 2)
    n = w.ndim - 2
    if n not in (1, 2) or len(x.shape) != n + 1:
        raise _NoLayer("Lumen has 1-D and 2-D convolutions")
    if node.op_type == "ConvTranspose":
        _conv_transpose(c, node, x, w, b, a, pending)
        return
    kernel = [int(k) for k in a.get("kernel_shape", w.shape[2:])]
    strides = [int(s) for s in a.get("strides", [1] * n)]
    dilations = [int(d) for d in a.get("dilations", [1] * n)]
    pads = _pads(a, n, x.shape[1:], kernel, strides, dilations)
    if pending is not None:
        pads = [p + q for p, q in zip(pads, pending)]
    if pads[:n] != pads[n:]:
        raise LumenError(
            f"op {node.op_type} ({printable(node.name[:60])}) pads its sides unequally ({pads}); "
            "Lumen's convolutions pad both sides alike"
        )
    params = {
        "out_channels": int(w.shape[0]),
        "kernel_size": _same_or_list(kernel) if n == 2 else kernel[0],
        "stride": _same_or_list(strides) if n == 2 else strides[0],
        "padding": _same_or_list(pads[:n]) if n == 2 else pads[0],
        "dilation": _same_or_list(dilations) if n == 2 else dilations[0],
        "groups": int(a.get("group", 1)),
        "bias": b is not None,
    }
    weights = {"weight": w, **({"bias": b} if b is not None else {})}
    c._layer(node, f"conv{n}d", params, [x], weights, node.input[1])


def _conv_transpose(
    c: _Converter, node: Any, x: _Tensor, w: np.ndarray, b: np.ndarray | None, a: dict, pending: Any
) -> None:
    if pending is not None or w.ndim != 4 or a.get("group", 1) != 1 or set(a.get("dilations", [1])) != {1}:
        raise LumenError(
            f"op ConvTranspose ({printable(node.name[:60])}): Lumen's transposed convolution is 2-D, "
            "ungrouped, undilated"
        )
    if "output_shape" in a or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise LumenError(f"op ConvTranspose ({printable(node.name[:60])}) sets output_shape or auto_pad")
    pads = [int(p) for p in a.get("pads", [0] * 4)]
    if pads[:2] != pads[2:]:
        raise LumenError(f"op ConvTranspose ({printable(node.name[:60])}) pads its sides unequally ({pads})")
    params = {
        "out_channels": int(w.shape[1]),
        "kernel_size": _same_or_list([int(k) for k in a.get("kernel_shape", w.shape[2:])]),
        "stride": _same_or_list([int(s) for s in a.get("strides", [1, 1])]),
        "padding": _same_or_list(pads[:2]),
        "output_padding": _same_or_list([int(p) for p in a.get("output_padding", [0, 0])]),
        "bias": b is not None,
    }
    weights = {"weight": w, **({"bias": b} if b is not None else {})}
    c._layer(node, "conv_transpose2d", params, [x], weights, node.input[1])


def _pads(a: dict, n: int, size: Shape, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", "") or auto == "VALID":
        return [int(p) for p in a.get("pads", [0] * 2 * n)] if auto != "VALID" else [0] * 2 * n
    begin, end = [], []
    for s, k, st, d in zip(size, kernel, strides, dilations):
        total = max((math.ceil(s / st) - 1) * st + (k - 1) * d + 1 - s, 0)
        low = total // 2 if auto == "SAME_UPPER" else total - total // 2
        begin.append(low)
        end.append(total - low)
    return begin + end


def _pad(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    x = c._tensor(node.input[0])
    pads = [int(p) for p in (c._const(node.input[1], "pads") if len(node.input) > 1 else a.get("pads", []))]
    value = c._optional_const(node, 2)
    fill = float(value.reshape(-1)[0]) if value is not None and value.size else float(a.get("value", 0.0))
    axes = c._optional_const(node, 3)
    rank = len(x.shape) + 1
    if a.get("mode", "constant") != "constant" or fill != 0 or axes is not None or len(pads) != 2 * rank:
        raise _NoLayer("not a zero padding of every axis")
    if any(pads[i] or pads[i + rank] for i in (0, 1)) or any(p < 0 for p in pads):
        raise _NoLayer("pads the batch or channels, or crops")
    spatial = tuple(pads[2:rank] + pads[rank + 2 :])
    c.values[node.output[0]] = _Padded(node.input[0], spatial)


def _gemm(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    x = c._tensor(node.input[0])
    w = c._const(node.input[1], "weight")
    bias = c._optional_const(node, 2)
    if a.get("transA", 0) or w.ndim != 2 or len(x.shape) != 1:
        raise _NoLayer("not a vector times a weight matrix")
    weight = w if a.get("transB", 0) else np.ascontiguousarray(w.T)
    if a.get("alpha", 1.0) != 1.0:
        weight = weight * np.float32(a["alpha"])
    out_features = weight.shape[0]
    weights = {"weight": weight.astype(np.float32, copy=False)}
    if bias is not None:
        if bias.size not in (1, out_features):
            raise _NoLayer("its bias is not one value per output")
        weights["bias"] = (np.broadcast_to(bias.reshape(-1), (out_features,)) * np.float32(a.get("beta", 1.0))).astype(
            np.float32
        )
    c._layer(node, "linear", {"out_features": int(out_features), "bias": bias is not None}, [x], weights, node.input[1])


def _matmul(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    w = c._const(node.input[1], "weight")
    if w.ndim != 2 or len(x.shape) not in (1, 2) or x.shape[-1] != w.shape[0]:
        raise _NoLayer("not a vector (or steps of vectors) times a weight matrix")
    weights = {"weight": np.ascontiguousarray(w.T)}
    out_features = int(w.shape[1])
    output = node.output[0]
    readers = c.consumers.get(output, [])
    bias_node = readers[0] if len(readers) == 1 and readers[0].op_type == "Add" else None
    if bias_node is not None and output != c.graph.output[0].name:
        other = next((v for v in bias_node.input if v != output), None)
        bias = c.consts.get(other) if other is not None else None
        if bias is not None and bias.size == out_features and bias.shape[-1] == out_features:
            weights["bias"] = bias.reshape(-1)
            c.done.add(list(c.graph.node).index(bias_node))
            output = bias_node.output[0]
    params = {"out_features": out_features, "bias": "bias" in weights}
    c._layer(node, "linear", params, [x], weights, node.input[1], output=output)


def _elementwise(layer_type: str, **fixed: Any) -> Callable[[_Converter, Any], None]:
    def mapper(c: _Converter, node: Any) -> None:
        c._layer(node, layer_type, dict(fixed), [c._tensor(node.input[0])])

    return mapper


def _leaky_relu(c: _Converter, node: Any) -> None:
    alpha = round(float(_attributes(node).get("alpha", 0.01)), 7)
    c._layer(node, "leaky_relu", {"negative_slope": alpha}, [c._tensor(node.input[0])])


def _clip(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    low = c._optional_const(node, 1)
    high = c._optional_const(node, 2)
    lo = float(low) if low is not None else a.get("min")
    hi = float(high) if high is not None else a.get("max")
    if lo == 0 and hi == 6:
        c._layer(node, "relu6", {}, [c._tensor(node.input[0])])
    elif lo == 0 and (hi is None or math.isinf(hi) or hi > 3e38):
        c._layer(node, "relu", {}, [c._tensor(node.input[0])])
    else:
        raise _NoLayer("a clip other than ReLU or ReLU6")


def _gelu(c: _Converter, node: Any) -> None:
    if _attributes(node).get("approximate", "none") != "none":
        raise _NoLayer("Lumen's gelu is the exact one")
    c._layer(node, "gelu", {}, [c._tensor(node.input[0])])


def _softmax(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    rank = len(x.shape) + 1
    axis = _full_axis(int(_attributes(node).get("axis", -1 if c.opset >= 13 else 1)), rank)
    if axis == 0 or (c.opset < 13 and axis != rank - 1):
        raise _NoLayer("a softmax over the batch (or, before opset 13, over several axes)")
    c._layer(node, "softmax", {"dim": axis - 1}, [x])


def _pool(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    x = c._tensor(node.input[0])
    n = len(x.shape) - 1
    if n not in (1, 2):
        raise _NoLayer("Lumen pools 1-D and 2-D inputs")
    if len([v for v in node.output if v and c.consumers.get(v)]) > 1 or a.get("storage_order", 0):
        raise _NoLayer("reads the pool's indices")
    if set(a.get("dilations", [1])) != {1}:
        raise _NoLayer("a dilated pool")
    kernel = [int(k) for k in a["kernel_shape"]]
    strides = [int(s) for s in a.get("strides", [1] * n)]
    pads = _pads(a, n, x.shape[1:], kernel, strides, [1] * n)
    if pads[:n] != pads[n:]:
        raise _NoLayer("pads its sides unequally")
    average = node.op_type == "AveragePool"
    if average and any(pads) and not a.get("count_include_pad", 0):
        raise _NoLayer("averages without the padding, where Lumen's average pool counts it")
    kind = ("avgpool" if average else "maxpool") + f"{n}d"
    params = {
        "kernel_size": _same_or_list(kernel) if n == 2 else kernel[0],
        "stride": _same_or_list(strides) if n == 2 else strides[0],
        "padding": _same_or_list(pads[:n]) if n == 2 else pads[0],
        "ceil_mode": bool(a.get("ceil_mode", 0)),
    }
    c._layer(node, kind, params, [x])


def _flattens(c: _Converter, value: str, channels: int) -> Any:
    """The one reader of ``value`` when it is a flatten to one vector per sample (so a global pool's 1×1 needs
    no node of its own), else None."""
    readers = c.consumers.get(value, [])
    if len(readers) != 1 or value == c.graph.output[0].name:
        return None
    reader = readers[0]
    if reader.op_type == "Flatten" and _attributes(reader).get("axis", 1) == 1:
        return reader
    if reader.op_type == "Reshape" and reader.input[1] in c.consts:
        target = [int(t) for t in c.consts[reader.input[1]].reshape(-1)]
        if len(target) == 2 and target[0] in (BATCH, 0, -1) and target[1] in (channels, -1) and target != [-1, -1]:
            return reader
    return None


def _global_pool(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    average = node.op_type == "GlobalAveragePool"
    flatten = _flattens(c, node.output[0], x.shape[0])
    if flatten is not None:
        c._layer(node, "global_avgpool" if average else "global_maxpool", {}, [x], output=flatten.output[0])
        c.done.add(list(c.graph.node).index(flatten))
        return
    if len(x.shape) != 3:
        raise _NoLayer("Lumen keeps a 1×1 map of 2-D inputs only")
    c._layer(node, "adaptive_avgpool2d" if average else "adaptive_maxpool2d", {"output_size": 1}, [x])


def _reduce(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    x = c._tensor(node.input[0])
    rank = len(x.shape) + 1
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in c._const(node.input[1], "axes").reshape(-1)]
    if not axes or rank < 3:
        raise _NoLayer("not a pool over every position")
    if sorted(_full_axis(int(ax), rank) for ax in axes) != list(range(2, rank)):
        raise _NoLayer("not a pool over every position")
    average = node.op_type == "ReduceMean"
    source = x
    producer = c.nodes[-1] if c.nodes and c.nodes[-1].id == x.node else None
    if producer is not None and producer.type == "reshape" and rank == 3:
        # x.flatten(2).mean(-1), as Lumen's own global pool exports: the reshape is only its way there
        sources = [s for s, d in c.edges if d == producer.id]
        before = c.shapes.get(sources[0]) if sources else None
        if before is not None and before[0] == x.shape[0] and math.prod(before[1:]) == x.shape[1]:
            readers = [n for n in c.graph.node if any(c.values.get(v) == x for v in n.input)]
            if len(readers) == 1:
                source = _Tensor(sources[0], before)
                c._drop_last(producer.id)  # its id goes to the pool, so the names survive a round trip
    if a.get("keepdims", 1):
        if len(source.shape) != 3:
            raise _NoLayer("Lumen keeps a 1×1 map of 2-D inputs only")
        c._layer(node, "adaptive_avgpool2d" if average else "adaptive_maxpool2d", {"output_size": 1}, [source])
    else:
        c._layer(node, "global_avgpool" if average else "global_maxpool", {}, [source])


def _batchnorm(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    x = c._tensor(node.input[0])
    if a.get("training_mode", 0) or any(v and c.consumers.get(v) for v in node.output[1:]):
        raise _NoLayer("batch statistics in training mode")
    scale, bias, mean, var = (c._const(v, "statistics") for v in node.input[1:5])
    kind = "batchnorm2d" if len(x.shape) == 3 else "batchnorm1d"
    params = {"eps": round(float(a.get("epsilon", 1e-5)), 9), "momentum": round(1 - float(a.get("momentum", 0.9)), 6)}
    weights = {
        "weight": scale,
        "bias": bias,
        "running_mean": mean,
        "running_var": var,
        "num_batches_tracked": np.array(0, dtype=np.int64),
    }
    c._layer(node, kind, params, [x], weights, node.input[1])


def _lrn(c: _Converter, node: Any) -> None:
    a = _attributes(node)
    size = int(a["size"])
    if size % 2 == 0:
        raise LumenError(
            f"op LRN ({printable(node.name[:60])}) sums an even number of channels ({size}); Lumen's "
            "LRN (torch's) centres its window differently there"
        )
    params = {
        "size": size,
        "alpha": float(a.get("alpha", 1e-4)),
        "beta": float(a.get("beta", 0.75)),
        "k": float(a.get("bias", 1.0)),
    }
    c._layer(node, "lrn", params, [c._tensor(node.input[0])])


def _flatten(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    if int(_attributes(node).get("axis", 1)) != 1:
        raise _NoLayer("flattens with the batch")
    if len(x.shape) == 1:
        c._alias(node, x)
        return
    c._layer(node, "flatten", {}, [x])


def _reshape(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    target = [int(t) for t in c._const(node.input[1], "shape").reshape(-1)]
    allow_zero = bool(_attributes(node).get("allowzero", 0))
    full = [BATCH, *x.shape]
    if not target:
        raise _NoLayer("reshapes to a scalar")
    resolved = [full[i] if t == 0 and not allow_zero and i < len(full) else t for i, t in enumerate(target)]
    numel = math.prod(x.shape)
    if resolved[0] == -1 and -1 not in resolved[1:] and math.prod(resolved[1:]) == numel:
        resolved[0] = BATCH
    if resolved[0] != BATCH or any(t == BATCH for t in resolved[1:]):
        raise _NoLayer("mixes samples of the batch")
    per_sample = resolved[1:]
    if per_sample.count(-1) == 1:
        known = math.prod(t for t in per_sample if t != -1)
        if known <= 0 or numel % known:
            raise _NoLayer("its shape does not divide the input")
        per_sample[per_sample.index(-1)] = numel // known
    if any(t <= 0 for t in per_sample) or math.prod(per_sample) != numel:
        raise _NoLayer("its shape does not hold the input")
    if tuple(per_sample) == x.shape:
        c._alias(node, x)
    elif len(per_sample) == 1:
        c._layer(node, "flatten", {}, [x])
    else:
        c._layer(node, "reshape", {"shape": per_sample}, [x])


def _concat(c: _Converter, node: Any) -> None:
    if any(v in c.consts for v in node.input if v):
        raise _NoLayer("concatenates a constant")
    tensors = [c._tensor(v) for v in node.input if v]
    axis = _full_axis(int(_attributes(node)["axis"]), len(tensors[0].shape) + 1)
    if axis == 0:
        raise _NoLayer("concatenates along the batch")
    if len(tensors) == 1:
        c._alias(node, tensors[0])
        return
    c._layer(node, "concat", {"dim": axis - 1}, tensors)


def _add(c: _Converter, node: Any) -> None:
    if any(v in c.consts for v in node.input if v):
        raise _NoLayer("adds a constant")
    tensors = [c._tensor(v) for v in node.input if v]
    if len(tensors) == 1:
        c._alias(node, tensors[0])
        return
    if any(t.shape != tensors[0].shape for t in tensors):
        raise _NoLayer("adds tensors of different shapes (broadcasting)")
    c._layer(node, "add", {}, tensors)


def _dropout(c: _Converter, node: Any) -> None:
    if any(v and c.consumers.get(v) for v in node.output[1:]):
        raise _NoLayer("reads the dropout mask")
    ratio = c._optional_const(node, 1)
    p = float(ratio) if ratio is not None else float(_attributes(node).get("ratio", 0.5))
    c._layer(node, "dropout", {"p": round(p, 6)}, [c._tensor(node.input[0])])


def _identity(c: _Converter, node: Any) -> None:
    c._alias(node, c._tensor(node.input[0]))


# ONNX op → how it becomes a Lumen layer (the README's table lists these); any other op is kept opaque when
# ``engine.modules.onnx_ops`` runs it, and refused otherwise.
MAPPED: dict[str, Callable[[_Converter, Any], None]] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "Pad": _pad,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Relu": _elementwise("relu"),
    "Sigmoid": _elementwise("sigmoid"),
    "Tanh": _elementwise("tanh"),
    "LeakyRelu": _leaky_relu,
    "Clip": _clip,
    "Gelu": _gelu,
    "Softmax": _softmax,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "ReduceMean": _reduce,
    "ReduceMax": _reduce,
    "BatchNormalization": _batchnorm,
    "LRN": _lrn,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Concat": _concat,
    "Add": _add,
    "Sum": _add,
    "Dropout": _dropout,
    "Identity": _identity,
}
