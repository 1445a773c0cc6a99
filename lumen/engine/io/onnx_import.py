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
- an ONNX ``LSTM``/``GRU``/``RNN`` is Lumen's ``lstm``/``gru``/``rnn`` (torch's module inside), its weights put
  back from ONNX's gate order (i,o,f,c; z,r,h) into torch's (i,f,g,o; r,z,n); the glue torch's exporter writes
  around it is folded: the Transpose to steps first and back, the Squeeze (or Transpose+Reshape) of its
  directions, the zero initial state (a ConstantOfShape the size of the batch, sliced per layer), one op per layer
  of ``num_layers`` (stacked into one node), ``out[:, -1]`` (``returns: last``), ``out.chunk(2, -1)`` joined by a
  Concat or Add (``combine``), and ``x.unsqueeze(1).repeat(1, T, 1)`` (a ``repeat`` node); the final state Y_h
  read as the last layer's (torch's ``h_n[-1]``, ``h_n.squeeze(0)``, ``h_n.view(-1, H)``: the Concat of every
  layer's Y_h, then a Gather, Squeeze or Reshape) is ``returns: last`` too, and a bidirectional node's
  ``cat([h_n[-2], h_n[-1]], 1)`` (``h_n[-2] + h_n[-1]``) its ``returns: last`` with ``combine: concat`` (``sum``):
  forward's last step, backward's first. Not expressible, and refused by name: a given initial state, sequence
  lengths, the cell state Y_c read (torch's ``c_n``), Y_h read otherwise (whole, a lower layer's, one direction
  alone, beside the sequence), a reverse-only direction, GRU's ``linear_before_reset=0``, peepholes, clip;
- an op no Lumen layer expresses (or whose attributes one cannot: a Softmax over the batch, a Reshape that mixes
  samples) is kept as an opaque ``onnx_op`` node that runs the op with torch (``engine.modules.onnx_ops``), named
  in ``OpenedModel.opaque`` by op and count; an op Lumen can neither map nor run is refused, all of them named.

The result is an ``OpenedModel``: the spec, the weights (a state dict that loads with ``strict=True`` into the
built model), the opaque ops and a one-line summary.
"""

from __future__ import annotations

import json
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
from lumen.engine.io.export import BUFFERS_KEY
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
        trained = {  # an opaque op's constants that are parameters of the exported model
            f"{node.id}.constant{i}"
            for node in self.spec.nodes
            if node.type == "onnx_op"
            for i, constant in enumerate(node.params.get("constants") or [])
            if constant.get("trainable")
        }
        params = sum(int(t.numel()) for k, t in self.weights.items() if k in trained or not _is_buffer(k))
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


@dataclass(frozen=True)
class _TimeMajor:
    """A batch-first sequence transposed to steps first, as torch's exporter feeds an ONNX LSTM/GRU/RNN: the
    recurrent op reading it takes the sequence itself (no Lumen shape puts the batch second)."""

    source: str  # the ONNX value, batch × steps × features


@dataclass(frozen=True)
class _Steps:
    """An ONNX LSTM/GRU/RNN's output on its way back to batch first: ``layout`` "tdbh" (its Y: steps, directions,
    batch, hidden), "tbdh" (directions moved in), "tbf" (directions flattened, or the one squeezed out); the
    Transpose to batch first makes it the Lumen node's tensor, another recurrent op reading it a layer more."""

    node: str  # the Lumen recurrent node
    layout: str


@dataclass(frozen=True)
class _Direction:
    """One direction of a bidirectional recurrent node's (batch-first) output, sliced out as torch's
    ``out.chunk(2, -1)`` exports, and perhaps its last step (forward: the final one; backward: the first): a Concat
    or Add of the two makes the node's ``combine`` and ``returns``; any other reader gets the ONNX ops as opaque
    ones (``chain``)."""

    node: str
    sequence: str  # the ONNX value of the node's whole output, where the slices start
    backward: bool
    last: bool
    chain: tuple[Any, ...]  # the ONNX nodes (Slice, then a Gather) that made it


@dataclass(frozen=True)
class _Unsqueezed:
    """A vector given a steps axis of one (Unsqueeze at axis 1): a Tile along it is a ``repeat`` layer."""

    source: str
    node: Any  # the ONNX Unsqueeze, made an opaque op for any other reader


@dataclass(frozen=True)
class _Final:
    """Final hidden states (an ONNX LSTM/GRU/RNN's Y_h, torch's ``h_n``) of a recurrent node, stacked as torch's
    ``h_n`` is: one row per layer and direction, each (layer, backward, the ONNX Y of that layer's op); ``one`` once
    a Gather or Squeeze took a single row out (batch × hidden). The last layer's row of a unidirectional node is its
    ``returns: last``; the last layer's two rows joined forward first by a Concat (or an Add) are a bidirectional
    node's ``returns: last`` with ``combine: concat`` (``sum``); any other reader is refused by name."""

    node: str
    rows: tuple[tuple[int, bool, str], ...]
    one: bool = False


_Value = _Tensor | _Padded | _TimeMajor | _Steps | _Direction | _Unsqueezed | _Final


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
    return _Converter(model.graph, opset, name, model.metadata_props).convert(input_shape)


# ---- the converter ---------------------------------------------------------------------------------------------


class _Converter:
    def __init__(self, graph: Any, opset: int, name: str, metadata: Any = ()):
        from onnx import numpy_helper

        self.graph, self.opset, self.name = graph, opset, name
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        marked: list[str] = next((json.loads(p.value) for p in metadata if p.key == BUFFERS_KEY), [])
        self.parameters = {name for name in self.consts if _is_parameter_name(name)} - set(marked)
        self.values: dict[str, _Value] = {}
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
        self.producers: dict[str, Any] = {v: node for node in graph.node for v in node.output if v}
        # values the size of the batch that exporters build for a recurrent op's initial state (zeros of
        # [directions, batch, hidden]): their fill value; never folded (the batch is a stand-in number)
        self.batch_constants: dict[str, float] = {}

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
        weights = {k: v for k, v in self.weights.items() if _owner(k, keep) is not None}
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
        if op not in RECURRENT and any(v in self.batch_constants for v in node.input):
            self._batch_constant(node)
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
        if node.op_type == "ConstantOfShape" and args[0] is not None and (args[0] == BATCH).any():
            value = _attributes(node).get("value", [0.0])
            self.batch_constants[node.output[0]] = float(np.asarray(value).reshape(-1)[0])
            return
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

    def _batch_constant(self, node: Any) -> None:
        """An op on a constant the size of the batch: what only moves or picks values (torch's exporter slices
        a multi-layer LSTM's zero initial state per layer) keeps it one; anything else is refused."""
        source = next(v for v in node.input if v in self.batch_constants)
        others = [v for v in node.input if v and v != source]
        if node.op_type in _PICKS and all(v in self.consts for v in others):
            self.batch_constants[node.output[0]] = self.batch_constants[source]
            return
        raise LumenError(
            f"op {node.op_type} ({printable(node.name[:60])}) computes with a tensor the size of the batch, "
            "which Lumen models leave open"
        )

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
        if isinstance(found, _Unsqueezed):
            self._opaque(found.node)
            return self._tensor(value)
        if isinstance(found, _Direction):
            for step in found.chain:
                self._opaque(step)
            return self._tensor(value)
        if isinstance(found, _Final):
            raise _final_refusal(self, found)
        if isinstance(found, (_TimeMajor, _Steps)):
            producer = self.producers.get(value)
            what = f"{producer.op_type} ({printable(producer.name[:60])})" if producer is not None else "a value"
            raise LumenError(
                f"op {what} keeps a recurrent sequence steps-first, and a reader other than an LSTM, GRU or RNN "
                "(or the transpose back to batch first) reads it; Lumen shapes keep the batch first"
            )
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

    def _retune(self, node_id: str, **changes: Any) -> _Tensor:
        """Change parameters of a node made earlier that nothing reads yet (a recurrent node found to return its
        last step, or to sum its directions): its new shape."""
        index = next(i for i, n in enumerate(self.nodes) if n.id == node_id)
        node = self.nodes[index]
        params = {**node.params, **changes}
        layer = LAYERS[node.type]
        sources = [s for s, d in self.edges if d == node_id]
        shape = layer.infer(layer.resolve(params), [self.shapes[s] for s in sources])
        self.nodes[index] = Node(node_id, node.type, params)
        self.shapes[node_id] = shape
        return _Tensor(node_id, shape)

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
        trainable: set[int] = set()
        for value in node.input:
            if not value:
                slots.append("")
            elif value in self.consts:
                slots.append(f"c{len(constants)}")
                if value in self.parameters:
                    trainable.add(len(constants))
                constants.append(self.consts[value])
            else:
                slots.append("x")
                tensors.append(self._tensor(value))
        self._add_opaque_node(
            node.op_type, _attributes(node), tensors, slots, constants, node.output[0], node, trainable
        )

    def _add_opaque_node(
        self,
        op: str,
        attributes: dict[str, Any],
        tensors: list[_Tensor],
        slots: list[str],
        constants: list[np.ndarray],
        output: str,
        node: Any = None,
        trainable: set[int] | frozenset[int] = frozenset(),
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
            if i in trainable and array.dtype == np.float32:
                entry["trainable"] = True
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


def _is_parameter_name(name: str) -> bool:
    """Whether an initializer is a parameter of the exported model: exporters name those after the module's state
    dict (``norm.weight``, ``layer1.0.bn.bias``), and what they fold or make up otherwise with generated names
    (``onnx::Mul_12``, ``_val_3``, ``/norm/Constant_output_0``). A heuristic, and the only sign an ONNX file gives."""
    leaf = name.rpartition(".")[2]
    known_buffer = leaf in ("running_mean", "running_var", "num_batches_tracked")
    return not known_buffer and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+", name))


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


def _owner(key: str, ids: set[str]) -> str | None:
    """The node a state-dict key belongs to (``lstm1`` for ``lstm1.rnn.weight_ih_l0``), if among ``ids``."""
    pieces = key.split(".")
    return next((".".join(pieces[:i]) for i in range(len(pieces) - 1, 0, -1) if ".".join(pieces[:i]) in ids), None)


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
    found = c.values.get(node.input[0])
    if isinstance(found, _Steps):
        _steps_reshape(c, node, found)
        return
    if isinstance(found, _Final):
        # h_n.view(-1, H) (or (batch, -1)) of one layer, one direction: its only row
        target = [int(t) for t in c._const(node.input[1], "shape").reshape(-1)]
        hidden = int(next(n for n in c.nodes if n.id == found.node).params["hidden_size"])
        if found.one or len(found.rows) != 1 or target not in ([-1, hidden], [BATCH, hidden], [BATCH, -1]):
            raise _final_refusal(c, found)
        _final_row(c, node, found.node, found.rows[0])
        return
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
    if _combine(c, node, "concat"):
        return
    stacked = [f for f in (c.values.get(v) for v in node.input if v) if isinstance(f, _Final) and not f.one]
    if len(stacked) == len([v for v in node.input if v]) and len({f.node for f in stacked}) == 1:
        if _full_axis(int(_attributes(node)["axis"]), 3) == 0:  # torch's h_n: every layer's Y_h, stacked
            c.values[node.output[0]] = _Final(stacked[0].node, tuple(row for f in stacked for row in f.rows))
            return
    if _final_join(c, node, "concat"):
        return
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
    if _combine(c, node, "sum") or _final_join(c, node, "sum"):
        return
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
    found = c.values.get(node.input[0])
    if isinstance(found, _Final):
        c.values[node.output[0]] = found
        return
    c._alias(node, c._tensor(node.input[0]))


# ---- recurrent ops: torch's exporter writes nn.LSTM/GRU/RNN as one ONNX op per layer, steps first ----------------

RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
_PICKS = frozenset({"Slice", "Gather", "Squeeze", "Unsqueeze", "Identity", "Expand", "Reshape", "Transpose", "Concat"})
# ONNX's gate order → torch's: LSTM i,o,f,c → i,f,g(=c),o; GRU z,r,h → r,z,n; RNN has one gate
_TORCH_GATES = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2), "rnn": (0,)}
_ACTIVATIONS = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"]}


def _refuse(node: Any, why: str) -> LumenError:
    return LumenError(f"op {node.op_type} ({printable(node.name[:60])}) {why}")


def _recurrent(c: _Converter, node: Any) -> None:
    """An ONNX LSTM/GRU/RNN as Lumen's lstm/gru/rnn node (its module keeps torch's nn.LSTM/GRU/RNN as ``rnn``),
    its weights put back in torch's gate order; a second op reading the first's output steps-first (torch's
    export of ``num_layers`` > 1) becomes the node's next layer. Its output waits (``_Steps``) for the transposes
    back to batch first."""
    cell = RECURRENT[node.op_type]
    a = _attributes(node)
    direction = a.get("direction", "forward")
    if direction not in ("forward", "bidirectional"):
        raise _refuse(node, f"runs {direction}; Lumen's recurrent layers run forward, or both ways")
    directions = 2 if direction == "bidirectional" else 1
    hidden = int(a["hidden_size"])
    if a.get("layout", 0) or "clip" in a or a.get("input_forget", 0):
        raise _refuse(node, "sets layout, clip or input_forget, which torch's recurrent layers do not have")
    if cell == "gru" and not a.get("linear_before_reset", 0):
        raise _refuse(node, "has linear_before_reset=0; torch's GRU (Lumen's) applies the reset gate after the product")
    activations = [str(f).lower() for f in a.get("activations", [])]
    params: dict[str, Any] = {"hidden_size": hidden, "bidirectional": directions == 2}
    if cell == "rnn":
        kind = activations[0] if activations else "tanh"
        if kind not in ("tanh", "relu") or any(f != kind for f in activations):
            raise _refuse(node, f"uses activations {activations}; Lumen's rnn is tanh or relu")
        params["nonlinearity"] = kind
    elif activations and activations != _ACTIVATIONS[cell] * directions:
        raise _refuse(node, f"uses activations {activations}; Lumen's {cell} has torch's")
    if len(node.input) > 4 and node.input[4]:
        raise _refuse(node, "reads sequence lengths; Lumen's recurrent layers run every step")
    for slot in (5, 6):
        if len(node.input) > slot and node.input[slot]:
            value = node.input[slot]
            zeros = c.batch_constants.get(value) == 0 or (value in c.consts and not c.consts[value].any())
            if not zeros:
                raise _refuse(node, "starts from a given state; Lumen's recurrent layers start from zeros")
    peepholes = c._optional_const(node, 7) if len(node.input) > 7 else None
    if peepholes is not None and peepholes.any():
        raise _refuse(node, "has peephole weights, which torch's LSTM does not")
    cell_state = node.output[2] if len(node.output) > 2 else ""
    if cell_state and (c.consumers.get(cell_state) or cell_state == c.graph.output[0].name):
        raise _refuse(
            node,
            "is read by its final cell state (Y_c, torch's c_n), which no Lumen layer gives; Lumen's lstm gives "
            "the hidden state (h_n[-1], or out[:, -1])",
        )
    w = c._const(node.input[1], "weight")
    r = c._const(node.input[2], "recurrence weight")
    b = c._optional_const(node, 3)
    gates = len(_TORCH_GATES[cell])
    if w.shape[:2] != (directions, gates * hidden) or r.shape != (directions, gates * hidden, hidden):
        raise _refuse(node, f"has weights of shapes {w.shape} and {r.shape}, not an ONNX {node.op_type}'s")
    if b is not None and b.shape != (directions, 2 * gates * hidden):
        raise _refuse(node, f"has biases of shape {b.shape}, not an ONNX {node.op_type}'s")
    found = c.values.get(node.input[0])
    if isinstance(found, _Steps):
        _stack(c, node, found, cell, params, w, r, b)
        return
    if not isinstance(found, _TimeMajor):
        raise _refuse(node, "reads a sequence that is not a batch-first tensor transposed to steps first")
    x = c._tensor(found.source)
    if len(x.shape) != 2 or x.shape[1] != w.shape[2]:
        raise _refuse(node, f"reads {fmt(x.shape)}, not steps × {w.shape[2]} features")
    weights = _torch_weights(cell, 0, w, r, b)
    node_id = c._node_id(None, f"{_recurrent_base(c, node)}.rnn")
    tensor = c._add(node_id, cell, params, [x], weights)
    c.values[node.output[0]] = _Steps(tensor.node, "tdbh")
    _final_states(c, node, tensor.node, 0, directions)


def _stack(c: _Converter, node: Any, found: _Steps, cell: str, params: dict, w: Any, r: Any, b: Any) -> None:
    """This op reads the previous one's output steps-first: it is the Lumen node's next layer."""
    index = next(i for i, n in enumerate(c.nodes) if n.id == found.node)
    below = c.nodes[index]
    same = {k: v for k, v in below.params.items() if k in params}
    if found.layout != "tbf" or below.type != cell or same != params or w.shape[2] != c.shapes[below.id][1]:
        raise _refuse(node, f"reads the output of {found.node} (a {below.type}) but is not a layer more of it")
    layers = int(below.params.get("num_layers", 1))
    c.nodes[index] = Node(below.id, below.type, {**below.params, "num_layers": layers + 1})
    for key, array in _torch_weights(cell, layers, w, r, b).items():
        c.weights[f"{below.id}.{key}"] = torch.from_numpy(np.array(array, order="C"))
    c.values[node.output[0]] = _Steps(below.id, "tdbh")
    _final_states(c, node, below.id, layers, w.shape[0])


def _final_states(c: _Converter, node: Any, node_id: str, layer: int, directions: int) -> None:
    """The op's Y_h: this layer's rows of the node's final states, read (if at all) through ``_Final``."""
    if len(node.output) > 1 and node.output[1]:
        rows = tuple((layer, bool(d), node.output[0]) for d in range(directions))
        c.values[node.output[1]] = _Final(node_id, rows)


def _torch_weights(cell: str, layer: int, w: Any, r: Any, b: Any) -> dict[str, np.ndarray]:
    """ONNX's W [dirs, gates·H, in], R [dirs, gates·H, H], B [dirs, 2·gates·H] as torch's weight_ih_l<k>,
    weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> (``_reverse`` for the backward direction), gates reordered."""
    order = _TORCH_GATES[cell]

    def reorder(array: np.ndarray) -> np.ndarray:
        blocks = np.split(array, len(order), axis=0)
        return np.ascontiguousarray(np.concatenate([blocks[i] for i in order], axis=0), dtype=np.float32)

    out: dict[str, np.ndarray] = {}
    rows = w.shape[1]
    bias = b if b is not None else np.zeros((w.shape[0], 2 * rows), dtype=np.float32)
    for d in range(w.shape[0]):
        suffix = f"_l{layer}" + ("_reverse" if d else "")
        out[f"rnn.weight_ih{suffix}"] = reorder(w[d])
        out[f"rnn.weight_hh{suffix}"] = reorder(r[d])
        out[f"rnn.bias_ih{suffix}"] = reorder(bias[d, :rows])
        out[f"rnn.bias_hh{suffix}"] = reorder(bias[d, rows:])
    return out


def _recurrent_base(c: _Converter, node: Any) -> str:
    """The node's name: its weight's module (``lstm1.rnn.weight_ih_l0`` → ``lstm1``, a plain ``self.lstm`` →
    ``lstm``), else the ONNX node's scope (``/encoder/rnn/LSTM`` → ``encoder``)."""
    seen, stack = set(), [node.input[1]]
    while stack:
        value = stack.pop()
        if value in seen:
            continue
        seen.add(value)
        match = re.match(r"(.+?)(\.rnn)?\.weight_ih_l\d+(_reverse)?$", value)
        if match and not value.startswith("onnx::"):
            return match.group(1)
        producer = c.producers.get(value)
        if producer is not None:
            stack += [v for v in producer.input if v]
    parts = [p for p in node.name.split("/") if p]
    if len(parts) >= 3 and parts[-2] == "rnn":
        return parts[-3]
    return parts[-2] if len(parts) >= 2 else node.op_type.lower()


def _transpose(c: _Converter, node: Any) -> None:
    perm = [int(p) for p in _attributes(node).get("perm", [])]
    found = c.values.get(node.input[0])
    if isinstance(found, _Steps):
        if found.layout == "tdbh" and perm == [0, 2, 1, 3]:
            c.values[node.output[0]] = _Steps(found.node, "tbdh")
            return
        if found.layout == "tbf" and perm == [1, 0, 2]:
            c._alias(node, _Tensor(found.node, c.shapes[found.node]))
            return
    elif perm == [1, 0, 2] and len(c._tensor(node.input[0]).shape) == 2:
        c.values[node.output[0]] = _TimeMajor(node.input[0])
        return
    raise _NoLayer("no Lumen layer transposes")


def _squeeze(c: _Converter, node: Any) -> None:
    found = c.values.get(node.input[0])
    axes = _axes(c, node)
    if isinstance(found, _Final):
        if found.one or len(found.rows) != 1 or axes not in ([0], [-3]):
            raise _final_refusal(c, found)
        _final_row(c, node, found.node, found.rows[0])  # h_n.squeeze(0) of one layer, one direction
        return
    if isinstance(found, _Steps) and found.layout == "tdbh" and axes in ([1], [-3]):
        if not next(n for n in c.nodes if n.id == found.node).params.get("bidirectional"):
            c.values[node.output[0]] = _Steps(found.node, "tbf")
            return
    raise _NoLayer("not a recurrent op's one direction")


def _axes(c: _Converter, node: Any) -> list[int] | None:
    if len(node.input) > 1 and node.input[1]:
        return [int(v) for v in c._const(node.input[1], "axes").reshape(-1)]
    axes = _attributes(node).get("axes")
    return [int(v) for v in axes] if axes is not None else None


def _steps_reshape(c: _Converter, node: Any, found: _Steps) -> None:
    """A bidirectional output [T, B, 2, H] flattened to [T, B, 2H], as torch's exporter writes it."""
    target = [int(t) for t in c._const(node.input[1], "shape").reshape(-1)]
    steps, width = c.shapes[found.node]
    ok = (
        found.layout == "tbdh"
        and len(target) == 3
        and target[0] in (0, steps)
        and target[1] in (0, BATCH, -1)
        and target[2] in (-1, width)
        and target.count(-1) <= 1
    )
    if not ok:
        raise _refuse(node, "reshapes a recurrent op's output other than as torch's exporter does")
    c.values[node.output[0]] = _Steps(found.node, "tbf")


def _recurrent_output(c: _Converter, value: str) -> Node | None:
    """The Lumen recurrent node whose whole (batch-first) output ``value`` is, when nothing reads it yet."""
    found = c.values.get(value)
    if not isinstance(found, _Tensor) or value == c.graph.output[0].name:
        return None
    node = next((n for n in c.nodes if n.id == found.node), None)
    if node is None or node.type not in RECURRENT.values() or node.params.get("returns", "sequence") != "sequence":
        return None
    if node.params.get("combine", "concat") != "concat" or any(src == node.id for src, _ in c.edges):
        return None
    return node


def _readers(c: _Converter, value: str) -> list[Any]:
    """The nodes that read a value, its Shape and Size aside (they were folded already)."""
    return [n for n in c.consumers.get(value, []) if n.op_type not in ("Shape", "Size")]


def _gather(c: _Converter, node: Any) -> None:
    found = c.values.get(node.input[0])
    if isinstance(found, _Final):
        _final_gather(c, node, found)
        return
    index = c._optional_const(node, 1)
    if int(_attributes(node).get("axis", 0)) != 1 or index is None or index.ndim != 0:
        raise _NoLayer("not one step of a sequence")
    if isinstance(found, _Direction) and not found.last:
        steps = c.shapes[found.node][0]
        if int(index) % steps == (0 if found.backward else steps - 1):
            chain = (*found.chain, node)
            c.values[node.output[0]] = _Direction(found.node, found.sequence, found.backward, True, chain)
            return
        raise _NoLayer("not a direction's final step")
    recurrent = _recurrent_output(c, node.input[0])
    only = [n.output[0] for n in _readers(c, node.input[0])] == [node.output[0]]
    if recurrent is None or recurrent.params.get("bidirectional") or not only:
        raise _NoLayer("not the last step of a recurrent layer")
    steps = c.shapes[recurrent.id][0]
    if int(index) % steps != steps - 1:
        raise _NoLayer("not the last step")
    c._alias(node, c._retune(recurrent.id, returns="last"))


def _slice(c: _Converter, node: Any) -> None:
    recurrent = _recurrent_output(c, node.input[0])
    if recurrent is None or not recurrent.params.get("bidirectional"):
        raise _NoLayer("not one direction of a bidirectional recurrent layer")
    starts, ends = (c._const(v, "bounds").reshape(-1) for v in node.input[1:3])
    axes = c._optional_const(node, 3)
    steps = c._optional_const(node, 4)
    hidden = int(recurrent.params["hidden_size"])
    if len(starts) != 1 or (axes is not None and int(axes.reshape(-1)[0]) not in (2, -1)):
        raise _NoLayer("not a slice of the features")
    if steps is not None and int(steps.reshape(-1)[0]) != 1:
        raise _NoLayer("a strided slice")
    bounds = (int(starts[0]), min(int(ends[0]), 2 * hidden))
    if bounds not in ((0, hidden), (hidden, 2 * hidden)):
        raise _NoLayer("not one direction's features")
    backward = bounds[0] == hidden
    c.values[node.output[0]] = _Direction(recurrent.id, node.input[0], backward, False, (node,))


def _both_directions(c: _Converter, node: Any) -> tuple[_Direction, _Direction] | None:
    """A Concat or Add of a bidirectional node's forward and backward outputs, each read by nothing else."""
    found = [c.values.get(v) for v in node.input if v]
    if len(found) != 2 or not all(isinstance(f, _Direction) for f in found):
        return None
    forward, backward = found
    assert isinstance(forward, _Direction) and isinstance(backward, _Direction)
    if node.op_type == "Add" and forward.backward:
        forward, backward = backward, forward
    if forward.backward or not backward.backward or forward.node != backward.node or forward.last != backward.last:
        return None
    if forward.sequence != backward.sequence:
        return None
    slices = {forward.chain[0].output[0], backward.chain[0].output[0]}
    if sorted(n.output[0] for n in _readers(c, forward.sequence)) != sorted(slices):
        return None
    for direction in (forward, backward):
        outputs = [step.output[0] for step in direction.chain]
        readers = [*direction.chain[1:], node]
        if any([n.output[0] for n in _readers(c, v)] != [r.output[0]] for v, r in zip(outputs, readers)):
            return None
    return forward, backward


def _combine(c: _Converter, node: Any, combine: str) -> bool:
    """The node's directions joined: the recurrent node's ``combine`` and ``returns`` (True when it was)."""
    pair = _both_directions(c, node)
    if pair is None:
        return False
    forward, _ = pair
    if combine == "concat":
        rank = 2 if forward.last else 3
        if _full_axis(int(_attributes(node)["axis"]), rank) != rank - 1:
            return False
    c._alias(node, c._retune(forward.node, combine=combine, returns="last" if forward.last else "sequence"))
    return True


def _unsqueeze(c: _Converter, node: Any) -> None:
    x = c._tensor(node.input[0])
    if len(x.shape) != 1 or _axes(c, node) not in ([1], [-2]):
        raise _NoLayer("not a vector made one step")
    c.values[node.output[0]] = _Unsqueezed(node.input[0], node)


def _expand(c: _Converter, node: Any) -> None:
    shape = c._const(node.input[1], "shape").reshape(-1)
    found = c.values.get(node.input[0])
    rank = 3 if isinstance(found, _Unsqueezed) else len(c._tensor(node.input[0]).shape) + 1
    if len(shape) > rank or (shape != 1).any():
        raise _NoLayer("broadcasts")
    if found is not None:
        c.values[node.output[0]] = found  # expanding to ones changes nothing


def _tile(c: _Converter, node: Any) -> None:
    found = c.values.get(node.input[0])
    repeats = [int(v) for v in c._const(node.input[1], "repeats").reshape(-1)]
    if not isinstance(found, _Unsqueezed) or len(repeats) != 3 or repeats[0] != 1 or repeats[2] != 1:
        raise _NoLayer("not a vector repeated at every step")
    c._layer(node, "repeat", {"steps": repeats[1]}, [c._tensor(found.source)])


# ---- a recurrent node's final state (h_n) read rather than its sequence ------------------------------------------


def _final_gather(c: _Converter, node: Any, found: _Final) -> None:
    """``h_n[i]``: one layer's (and direction's) final state."""
    index = c._optional_const(node, 1)
    axis = int(_attributes(node).get("axis", 0))
    if found.one or axis not in (0, -3) or index is None or index.ndim != 0:
        raise _final_refusal(c, found)
    i = int(index)
    if not -len(found.rows) <= i < len(found.rows):
        raise _refuse(node, f"takes row {i} of a final state of {len(found.rows)} rows")
    _final_row(c, node, found.node, found.rows[i])


def _final_row(c: _Converter, node: Any, node_id: str, row: tuple[int, bool, str]) -> None:
    """One row of h_n: a unidirectional node's last layer's is its last step (``returns: last``); any other waits
    for a reader that joins the last layer's two directions (or is refused)."""
    taken = _Final(node_id, (row,), one=True)
    recurrent = next(n for n in c.nodes if n.id == node_id)
    if recurrent.params.get("bidirectional") or not _last_layer(c, recurrent, row):
        c.values[node.output[0]] = taken
        return
    c._alias(node, _final_tensor(c, taken, None))


def _last_layer(c: _Converter, recurrent: Node, row: tuple[int, bool, str]) -> bool:
    """Whether a row is the final state of the node's last layer, whose sequence (Y) nothing reads."""
    layer, _, sequence = row
    unread = not _readers(c, sequence) and sequence != c.graph.output[0].name
    return unread and layer == int(recurrent.params.get("num_layers", 1)) - 1


def _final_tensor(c: _Converter, found: _Final, combine: str | None) -> _Tensor:
    """The recurrent node made to return its last step (and join its directions by ``combine``): its tensor."""
    recurrent = next(n for n in c.nodes if n.id == found.node)
    changes = {"returns": "last", **({"combine": combine} if combine else {})}
    defaults = {"returns": "sequence", "combine": "concat"}
    if all(recurrent.params.get(k, defaults[k]) == v for k, v in changes.items()):
        return _Tensor(found.node, c.shapes[found.node])  # read the same way twice
    if recurrent.params.get("returns", "sequence") != "sequence":
        raise _final_refusal(c, found)
    return c._retune(found.node, **changes)


def _final_join(c: _Converter, node: Any, combine: str) -> bool:
    """A Concat (along the features) or Add of the last layer's forward and backward final states (torch's
    ``cat([h_n[-2], h_n[-1]], 1)``): Lumen's ``returns: last`` (forward's last step, backward's first) with
    ``combine`` (True when it was)."""
    found = [c.values.get(v) for v in node.input if v]
    if not any(isinstance(f, _Final) for f in found):
        return False
    pair = [f for f in found if isinstance(f, _Final) and f.one]
    if len(pair) != 2 or len(found) != 2 or pair[0].node != pair[1].node:
        raise _final_refusal(c, next(f for f in found if isinstance(f, _Final)))
    (forward,), (backward,) = pair[0].rows, pair[1].rows
    if combine == "sum" and forward[1]:
        forward, backward = backward, forward
    recurrent = next(n for n in c.nodes if n.id == pair[0].node)
    ok = forward[1] is False and backward[1] is True and forward[2] == backward[2]
    if combine == "concat":
        ok = ok and _full_axis(int(_attributes(node)["axis"]), 2) == 1
    if not ok or not _last_layer(c, recurrent, forward):
        raise _refuse(
            node,
            f"joins final states of {recurrent.id} other than as cat([h_n[-2], h_n[-1]], 1) or h_n[-2] + h_n[-1] "
            "(its last layer's forward, then backward, final state), which Lumen's returns: last gives",
        )
    c._alias(node, _final_tensor(c, pair[0], combine))
    return True


def _final_refusal(c: _Converter, found: _Final) -> LumenError:
    """Why a read of a recurrent node's final state is none that a Lumen layer gives, in one line."""
    recurrent = next(n for n in c.nodes if n.id == found.node)
    layers = int(recurrent.params.get("num_layers", 1))
    gives = (
        "cat([h_n[-2], h_n[-1]], 1) or h_n[-2] + h_n[-1] (its last layer's two directions)"
        if recurrent.params.get("bidirectional")
        else "h_n[-1] (its last layer's), or out[:, -1]"
    )
    if not found.one:
        what = "whole (layers × batch × hidden)"
    else:
        ((layer, backward, sequence),) = found.rows
        if layer < layers - 1:
            what = f"for layer {layer + 1} of {layers}, not the last"
        elif _readers(c, sequence) or sequence == c.graph.output[0].name:
            what = "alongside its sequence (a Lumen node gives one of them)"
        else:
            what = f"for its {'backward' if backward else 'forward'} direction alone"
    return LumenError(
        f"{recurrent.id} (a {recurrent.type}): its final state h_n (Y_h) is read {what}; Lumen's {recurrent.type} "
        f"gives {gives}"
    )


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
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Gather": _gather,
    "Slice": _slice,
    "Unsqueeze": _unsqueeze,
    "Expand": _expand,
    "Tile": _tile,
}
