"""One ONNX operator run with torch: what an opened ONNX model keeps of the ops no Lumen layer expresses.

``OnnxOp(op, attributes, inputs, constants)`` runs the ONNX operator ``op`` (``ONNX_OPS`` lists those it knows)
with its attributes as ONNX names them. ``inputs`` says, slot by slot, where each of the operator's inputs comes
from: ``"x"`` for the next tensor passed to ``forward``, ``"c0"``, ``"c1"``, ... for a constant, ``""`` for an
optional input left out. Each constant is ``constant<i>``, saved with the weights: its ``shape`` and ``dtype``, and
its ``values`` when it is small enough to be written out (else zeros until the weights are loaded). A constant
marked ``trainable`` (a parameter of the model the file was exported from, such as a LayerNorm's scale) is a
parameter and trains; the rest (shape numbers, folded scalars) are buffers. Tensors carry the batch as their first
dimension, as in the ONNX graph.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_DTYPES = {"float32": torch.float32, "int64": torch.int64, "bool": torch.bool}

_UNARY: dict[str, Callable[..., torch.Tensor]] = {
    "Abs": torch.abs,
    "Neg": torch.neg,
    "Exp": torch.exp,
    "Log": torch.log,
    "Sqrt": torch.sqrt,
    "Reciprocal": torch.reciprocal,
    "Erf": torch.erf,
    "Floor": torch.floor,
    "Ceil": torch.ceil,
    "Round": torch.round,
    "Sin": torch.sin,
    "Cos": torch.cos,
    "Tan": torch.tan,
    "Sign": torch.sign,
    "Softplus": F.softplus,
    "Softsign": F.softsign,
    "Mish": F.mish,
    "HardSwish": F.hardswish,
    "Relu": torch.relu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Identity": lambda x: x,
    "Not": torch.logical_not,
}
_BINARY: dict[str, Callable[..., torch.Tensor]] = {
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "Pow": torch.pow,
    "Max": torch.maximum,
    "Min": torch.minimum,
    "Equal": torch.eq,
    "Less": torch.lt,
    "Greater": torch.gt,
    "And": torch.logical_and,
    "Or": torch.logical_or,
    "MatMul": torch.matmul,
}
_REDUCE: dict[str, Callable[..., torch.Tensor]] = {
    "ReduceMean": torch.mean,
    "ReduceSum": torch.sum,
    "ReduceMax": torch.amax,
    "ReduceMin": torch.amin,
}
_OTHER = (
    "Elu",
    "Selu",
    "Celu",
    "LeakyRelu",
    "HardSigmoid",
    "Gelu",
    "Clip",
    "Softmax",
    "LogSoftmax",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Flatten",
    "Concat",
    "Sum",
    "Mean",
    "Where",
    "Cast",
    "Pad",
    "Slice",
    "Gather",
    "Gemm",
    "ReduceL2",
    "Resize",
    "Upsample",
    "InstanceNormalization",
    "LayerNormalization",
    "AveragePool",
    "MaxPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
)
ONNX_OPS = frozenset(_UNARY) | frozenset(_BINARY) | frozenset(_REDUCE) | frozenset(_OTHER)


class OnnxOp(nn.Module):
    """One ONNX operator; ``forward`` takes the tensors the ``"x"`` slots of ``inputs`` stand for, in order."""

    def __init__(
        self,
        op: str,
        attributes: dict[str, Any] | None = None,
        inputs: list[str] | tuple[str, ...] = ("x",),
        constants: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    ):
        super().__init__()
        if op not in ONNX_OPS:
            raise ValueError(f"ONNX op {op} has no torch implementation in Lumen")
        self.op, self.attributes, self.inputs = op, dict(attributes or {}), tuple(inputs)
        for i, constant in enumerate(constants):
            dtype = _DTYPES[constant.get("dtype", "float32")]
            values = constant.get("values")
            if values is not None:
                tensor = torch.tensor(values, dtype=dtype).reshape(constant["shape"])
            else:
                tensor = torch.zeros(constant["shape"], dtype=dtype)
            if constant.get("trainable") and tensor.is_floating_point():
                self.register_parameter(f"constant{i}", nn.Parameter(tensor))
            else:
                self.register_buffer(f"constant{i}", tensor)

    def extra_repr(self) -> str:
        return f"op={self.op}"

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        given = iter(xs)
        args: list[torch.Tensor | None] = []
        for slot in self.inputs:
            if slot == "x":
                args.append(next(given))
            elif slot.startswith("c"):
                args.append(getattr(self, "constant" + slot[1:]))
            else:
                args.append(None)
        return _run(self.op, self.attributes, args)


def _ints(value: Any) -> list[int]:
    return [int(v) for v in value]


def _axes(a: dict[str, Any], args: list[torch.Tensor | None], slot: int) -> list[int] | None:
    """Axes given as an attribute (older opsets) or as an input (newer ones)."""
    if "axes" in a:
        return _ints(a["axes"])
    if len(args) > slot and args[slot] is not None:
        return _ints(args[slot].tolist())  # type: ignore[union-attr]
    return None


def _run(op: str, a: dict[str, Any], args: list[torch.Tensor | None]) -> torch.Tensor:
    x = args[0]
    assert x is not None
    if op in _UNARY:
        return _UNARY[op](x)
    if op in _BINARY:
        other = args[1]
        assert other is not None
        if op == "Div" and not x.is_floating_point() and not other.is_floating_point():
            return torch.div(x, other, rounding_mode="trunc")
        return _BINARY[op](x, other)
    if op in _REDUCE:
        axes = _axes(a, args, 1)
        keep = bool(a.get("keepdims", 1))
        if axes is None or not axes:
            if a.get("noop_with_empty_axes", 0) and axes is not None:
                return x
            axes = list(range(x.dim()))
        return _REDUCE[op](x, dim=axes, keepdim=keep)
    if op == "ReduceL2":
        axes = _axes(a, args, 1) or list(range(x.dim()))
        return torch.linalg.vector_norm(x, 2, dim=axes, keepdim=bool(a.get("keepdims", 1)))
    if op == "Elu":
        return F.elu(x, float(a.get("alpha", 1.0)))
    if op == "Celu":
        return F.celu(x, float(a.get("alpha", 1.0)))
    if op == "Selu":
        alpha, gamma = (
            float(a.get("alpha", 1.67326319217681884765625)),
            float(a.get("gamma", 1.05070102214813232421875)),
        )
        return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))
    if op == "LeakyRelu":
        return F.leaky_relu(x, float(a.get("alpha", 0.01)))
    if op == "HardSigmoid":
        return torch.clamp(float(a.get("alpha", 0.2)) * x + float(a.get("beta", 0.5)), 0, 1)
    if op == "Gelu":
        return F.gelu(x, approximate=str(a.get("approximate", "none")))
    if op == "Clip":
        low = args[1] if len(args) > 1 and args[1] is not None else a.get("min")
        high = args[2] if len(args) > 2 and args[2] is not None else a.get("max")
        if isinstance(low, torch.Tensor):
            low = low.item()
        if isinstance(high, torch.Tensor):
            high = high.item()
        return torch.clamp(x, low, high)
    if op in ("Softmax", "LogSoftmax"):
        axis = int(a.get("axis", -1))
        fn = torch.softmax if op == "Softmax" else torch.log_softmax
        return fn(x, axis)
    if op == "Transpose":
        return x.permute(*(_ints(a["perm"]) if "perm" in a else reversed(range(x.dim()))))
    if op == "Squeeze":
        axes = _axes(a, args, 1)
        return x.squeeze() if axes is None else x.squeeze(tuple(axes))
    if op == "Unsqueeze":
        out = x
        axes = _axes(a, args, 1) or []
        rank = x.dim() + len(axes)
        for axis in sorted(ax % rank for ax in axes):
            out = out.unsqueeze(axis)
        return out
    if op == "Reshape":
        shape = args[1]
        assert shape is not None
        target = [
            x.shape[i] if (s == 0 and not a.get("allowzero", 0)) else s for i, s in enumerate(_ints(shape.tolist()))
        ]
        return x.reshape(target)
    if op == "Flatten":
        axis = int(a.get("axis", 1)) % max(x.dim(), 1)
        return x.reshape(math.prod(x.shape[:axis]), -1)
    if op == "Concat":
        return torch.cat([t for t in args if t is not None], int(a["axis"]))
    if op in ("Sum", "Mean"):
        tensors = [t for t in args if t is not None]
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
        return total / len(tensors) if op == "Mean" else total
    if op == "Where":
        assert args[1] is not None and args[2] is not None
        return torch.where(x.bool(), args[1], args[2])
    if op == "Cast":
        return x.to({1: torch.float32, 7: torch.int64, 9: torch.bool, 6: torch.int32}.get(int(a["to"]), torch.float32))
    if op == "Pad":
        pads = _ints(args[1].tolist()) if len(args) > 1 and args[1] is not None else _ints(a["pads"])
        value = float(args[2].item()) if len(args) > 2 and args[2] is not None else float(a.get("value", 0.0))
        n = len(pads) // 2
        torch_pads: list[int] = []
        for axis in reversed(range(n)):  # torch lists the last axis first: (begin, end) per axis
            torch_pads += [pads[axis], pads[axis + n]]
        mode = str(a.get("mode", "constant"))
        mode = {"edge": "replicate"}.get(mode, mode)
        return F.pad(x, torch_pads, mode=mode, value=value) if mode == "constant" else F.pad(x, torch_pads, mode=mode)
    if op == "Slice":
        starts, ends = _ints(args[1].tolist()), _ints(args[2].tolist())  # type: ignore[union-attr]
        axes = _ints(args[3].tolist()) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
        steps = _ints(args[4].tolist()) if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index: list[slice] = [slice(None)] * x.dim()
        for start, end, axis, step in zip(starts, ends, axes, steps):
            size = x.shape[axis]
            start, end = max(-size, min(start, size)), max(-size - 1, min(end, size))
            index[axis % x.dim()] = slice(start, end, step)
        return x[tuple(index)]
    if op == "Gather":
        indices = args[1]
        assert indices is not None
        axis = int(a.get("axis", 0)) % x.dim()
        flat = torch.index_select(x, axis, indices.reshape(-1).long() % x.shape[axis])
        return flat.reshape(*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :])
    if op == "Gemm":
        b = args[1]
        assert b is not None
        left = x.t() if a.get("transA", 0) else x
        right = b.t() if a.get("transB", 0) else b
        out = float(a.get("alpha", 1.0)) * (left @ right)
        if len(args) > 2 and args[2] is not None:
            out = out + float(a.get("beta", 1.0)) * args[2]
        return out
    if op in ("Resize", "Upsample"):
        scales = next((t for t in args[1:] if t is not None and t.is_floating_point() and t.numel() > 0), None)
        sizes = next((t for t in args[1:] if t is not None and not t.is_floating_point() and t.numel() > 0), None)
        mode = str(a.get("mode", "nearest"))
        mode = {"linear": "bilinear" if x.dim() == 4 else "linear", "cubic": "bicubic"}.get(mode, mode)
        corners = a.get("coordinate_transformation_mode") == "align_corners" if mode != "nearest" else None
        if sizes is not None:
            return F.interpolate(x, size=_ints(sizes.tolist())[2:], mode=mode, align_corners=corners)
        assert scales is not None
        return F.interpolate(x, scale_factor=[float(s) for s in scales.tolist()[2:]], mode=mode, align_corners=corners)
    if op == "InstanceNormalization":
        return F.instance_norm(x, weight=args[1], bias=args[2], eps=float(a.get("epsilon", 1e-5)))
    if op == "LayerNormalization":
        axis = int(a.get("axis", -1)) % x.dim()
        return F.layer_norm(
            x, x.shape[axis:], args[1], args[2] if len(args) > 2 else None, float(a.get("epsilon", 1e-5))
        )
    if op in ("AveragePool", "MaxPool"):
        n = x.dim() - 2
        kernel = _ints(a["kernel_shape"])
        pads = _ints(a.get("pads", [0] * 2 * n))
        if pads[:n] != pads[n:]:
            x = F.pad(
                x,
                [p for axis in reversed(range(n)) for p in (pads[axis], pads[axis + n])],
                value=-math.inf if op == "MaxPool" else 0.0,
            )
            pads = [0] * 2 * n
        stride, ceil = _ints(a.get("strides", [1] * n)), bool(a.get("ceil_mode", 0))
        if op == "MaxPool":
            max_pool: Callable[..., torch.Tensor] = F.max_pool1d if n == 1 else F.max_pool2d
            return max_pool(x, kernel, stride, pads[:n], _ints(a.get("dilations", [1] * n)), ceil)
        avg_pool: Callable[..., torch.Tensor] = F.avg_pool1d if n == 1 else F.avg_pool2d
        return avg_pool(x, kernel, stride, pads[:n], ceil, bool(a.get("count_include_pad", 0)))
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        dims = tuple(range(2, x.dim()))
        return x.mean(dims, keepdim=True) if op == "GlobalAveragePool" else x.amax(dims, keepdim=True)
    raise NotImplementedError(op)
