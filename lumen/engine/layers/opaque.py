"""Opaque layers: an operator of an opened ONNX model that no Lumen layer expresses, run as it is.

Such a node keeps the ONNX operator's name and attributes (``engine.modules.onnx_ops.OnnxOp`` runs it with torch),
so the model still builds, trains, exports and is inspected like any other; its shape rule runs the operator on
the meta device (nothing is computed), and its formulas and receptive field are unknown.
"""

from __future__ import annotations

import torch

from lumen.engine.layers.base import LayerType, Params
from lumen.engine.modules.onnx_ops import ONNX_OPS, OnnxOp
from lumen.engine.spec.shapes import Shape, ShapeError, fmt


def _kwargs(params: Params, in_shapes: list[Shape]) -> Params:
    return {
        "op": params["op"],
        "attributes": dict(params["attributes"]),
        "inputs": list(params["inputs"] or ["x"] * len(in_shapes)),
        "constants": list(params["constants"]),
    }


def _check(params: Params, in_shapes: list[Shape]) -> None:
    if params["op"] not in ONNX_OPS:
        raise ShapeError(f"the ONNX op {params['op']} is not one Lumen can run (known: {', '.join(sorted(ONNX_OPS))})")
    slots = list(params["inputs"] or ["x"] * len(in_shapes))
    if slots.count("x") != len(in_shapes):
        raise ShapeError(f"{params['op']} reads {slots.count('x')} tensors, but {len(in_shapes)} edges come in")


def _infer(params: Params, in_shapes: list[Shape]) -> Shape:
    """Run the op on empty tensors of the meta device (a batch of 2): its output shape, without computing."""
    _check(params, in_shapes)
    try:
        with torch.device("meta"):
            module = OnnxOp(**_kwargs(params, in_shapes))
            out = module(*(torch.empty((2, *shape)) for shape in in_shapes))
    except Exception as exc:  # an op's own refusal, in torch's words
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ShapeError(
            f"the ONNX op {params['op']} does not run on {', '.join(fmt(s) for s in in_shapes)}: {first}"
        ) from None
    if out.dim() == 0 or out.shape[0] != 2:
        raise ShapeError(f"the ONNX op {params['op']} mixes samples of the batch (output {tuple(out.shape)})")
    return tuple(int(d) for d in out.shape[1:])


LAYER_TYPES = [
    LayerType(
        name="onnx_op",
        family="opaque",
        description="An operator of an opened ONNX model that no Lumen layer expresses, run as it is",
        defaults={"op": None, "attributes": {}, "inputs": [], "constants": []},
        domains={"op": "any", "attributes": "any", "inputs": "any", "constants": "any"},
        infer=_infer,
        module=OnnxOp,
        kwargs=_kwargs,
        arity=None,
        min_inputs=1,
        docs={
            "op": "the ONNX operator's name",
            "inputs": 'where each input comes from: "x" an incoming edge, "c0", "c1", … a constant',
            "constants": "the operator's constant inputs (its exported model's parameters train, the rest do not)",
        },
    ),
]
