"""What each layer does to the tensor, in numbers: shape, parameters, multiply-accumulates, activation memory,
the output-size formula with the numbers put in, the receptive field, and what a dense layer would cost.

Everything is arithmetic on shapes (the model is built on the meta device only to count parameters), so even
a full-size VGG-16 is analysed in a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lumen.engine.graph.model import GraphModel
from lumen.engine.layers import LAYERS
from lumen.engine.layers.geometry import Window, sliding_size
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import Shape


@dataclass(frozen=True)
class NodeReport:
    id: str
    type: str
    output_shape: Shape
    params: int
    macs: int  # multiply-accumulates per sample of the weighted sums (convolutions, linear layers); others 0
    activation_bytes: int  # one sample's output, float32 (int64 for an id input)
    formula: str  # how the output size follows from the input, numbers substituted; "" where there is none
    receptive_field: int | float | None  # input pixels one unit sees along an axis (the larger); None if not spatial
    receptive_jump: int | float | None  # input pixels between neighbouring units
    dense_equivalent_params: int | None  # for weighted windowed layers: a fully connected layer's parameters


# receptive field per spatial axis: (size, jump) in input pixels
_Field = tuple[tuple[float, ...], tuple[float, ...]]


def analyze(spec: ModelSpec) -> list[NodeReport]:
    """A report per node in evaluation order; raises SpecError (naming the node) for a bad spec."""
    with torch.device("meta"):
        model = GraphModel(spec)  # validates and infers shapes; weights are never allocated
    shapes = model.shapes
    fields: dict[str, _Field | None] = {}
    reports = []
    for node_id in model.order:
        node = spec.node(node_id)
        layer = LAYERS[node.type]
        params = layer.resolve(node.params)
        in_shapes = [shapes[s] for s in model.sources[node_id]]
        out = shapes[node_id]
        window = layer.window(params, in_shapes[0]) if layer.window and in_shapes else None
        n_params = sum(p.numel() for p in model.layers[node_id].parameters())
        macs = layer.macs(params, in_shapes, out) if layer.macs else 0
        itemsize = 8 if node.type == "input" and params.get("dtype") == "int64" else 4
        fields[node_id] = _field(node.type, params, out, in_shapes, window, [fields[s] for s in model.sources[node_id]])
        field = fields[node_id]
        dense = math.prod(in_shapes[0]) * math.prod(out) + math.prod(out) if window and n_params else None
        reports.append(
            NodeReport(
                node_id,
                node.type,
                out,
                n_params,
                macs,
                math.prod(out) * itemsize,
                formula(node.type, params, in_shapes, out, window),
                _number(max(field[0])) if field else None,
                _number(max(field[1])) if field else None,
                dense,
            )
        )
    return reports


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


# ---- receptive fields ---------------------------------------------------------------------------


def _field(
    layer_type: str,
    params: dict,
    out: Shape,
    in_shapes: list[Shape],
    window: Window | None,
    sources: list[_Field | None],
) -> _Field | None:
    if layer_type == "input":
        if len(out) < 2 or params.get("dtype") == "int64":
            return None
        return (1.0,) * (len(out) - 1), (1.0,) * (len(out) - 1)
    known = [s for s in sources if s is not None]
    if not known or len(known) != len(sources):
        return None
    if len(known) > 1:  # a merge: each unit sees what the widest branch sees
        if len({len(s[0]) for s in known}) != 1:
            return None
        return (tuple(map(max, *(s[0] for s in known))), tuple(map(max, *(s[1] for s in known))))
    size, jump = known[0]
    if window is not None:
        if len(window.kernel) != len(size):
            return None
        if window.transposed:  # an output unit reads ⌈F/S⌉ neighbouring input units per axis
            axes = zip(size, jump, window.kernel, window.stride)
            return (
                tuple(r + (math.ceil(k / s) - 1) * j for r, j, k, s in axes),
                tuple(j / s for j, s in zip(jump, window.stride)),
            )
        return (
            tuple(r + d * (k - 1) * j for r, j, k, d in zip(size, jump, window.kernel, window.dilation)),
            tuple(j * s for j, s in zip(jump, window.stride)),
        )
    if len(out) == len(in_shapes[0]) and out[1:] == in_shapes[0][1:]:  # shape-keeping layers do not move the field
        return size, jump
    return None


# ---- formulas -----------------------------------------------------------------------------------


def _n(x: float) -> str:
    return f"{x:g}"


def formula(layer_type: str, params: dict, in_shapes: list[Shape], out: Shape, window: Window | None) -> str:
    """The output size rule with the numbers substituted, e.g. ``W_out = (W − F + 2P)/S + 1 = … = 28``."""
    if layer_type == "flatten" and len(in_shapes[0]) > 1:
        return f"features = {'·'.join(map(str, in_shapes[0]))} = {out[0]}"
    if layer_type == "linear":
        n_in, n_out = in_shapes[0][-1], params["out_features"]
        if params["bias"]:
            return f"params = in·out + out = {n_in}·{n_out} + {n_out} = {n_in * n_out + n_out}"
        return f"params = in·out = {n_in}·{n_out} = {n_in * n_out}"
    if window is None or layer_type.startswith(("global_", "adaptive_")):
        return ""
    axes = ("L",) if len(window.kernel) == 1 else ("H", "W")
    per_axis = [
        (
            a,
            in_shapes[0][1 + i],
            window.kernel[i],
            window.stride[i],
            window.padding[i],
            window.dilation[i],
            window.output_padding[i] if window.output_padding else 0,
            out[1 + i],
        )
        for i, a in enumerate(axes)
    ]
    if len(per_axis) == 2 and per_axis[0][1:] == per_axis[1][1:]:
        per_axis = per_axis[1:]  # square: one line for W says it all
    pool = "pool" in layer_type
    return "; ".join(_axis_formula(layer_type, pool, window, *axis) for axis in per_axis)


def _axis_formula(
    layer_type: str, pool: bool, w: Window, axis: str, size: int, k: int, s: float, p: int, d: int, op: int, result: int
) -> str:
    if layer_type == "upsample":
        return f"{axis}_out = ⌊{axis}·s⌋ = ⌊{size}·{_n(s)}⌋ = {result}"
    if w.transposed:
        return f"{axis}_out = ({axis} − 1)·S − 2P + F + P_out = ({size} − 1)·{_n(s)} − {2 * p} + {k} + {op} = {result}"
    if w.same:
        return f'padding "same", stride 1: {axis}_out = {axis} = {size}'
    s = int(s)
    if d > 1:
        symbolic, numbers = f"{axis} − D(F − 1) − 1 + 2P", f"{size} − {d}·({k} − 1) − 1 + {2 * p}"
        span = size + 2 * p - d * (k - 1) - 1
    elif pool and p == 0:
        symbolic, numbers, span = f"{axis} − F", f"{size} − {k}", size - k
    else:
        symbolic, numbers, span = f"{axis} − F + 2P", f"{size} − {k} + {2 * p}", size + 2 * p - k
    left, right = ("⌈", "⌉") if w.ceil_mode else ("⌊", "⌋")
    if span % s == 0:
        left = right = ""
    text = f"{axis}_out = {left}({symbolic})/S{right} + 1 = {left}({numbers})/{s}{right} + 1"
    if w.ceil_mode and sliding_size(size, k, s, p, d, True) < -(-span // s) + 1:
        text += " − 1 (the last window would start in the padding)"
    return f"{text} = {result}"
