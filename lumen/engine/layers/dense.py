"""Fully connected layers and embeddings."""

from __future__ import annotations

import math

from torch import nn

from lumen.engine.layers.base import LayerType, Params
from lumen.engine.spec.shapes import InputShapeError, Shape, fmt


def _linear_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    # A vector, or a sequence (steps × features: applied at every step, as torch's Linear does).
    if len(in_shapes[0]) not in (1, 2):
        raise InputShapeError(f"linear expects a flat input but gets {fmt(in_shapes[0])}; put a flatten node before it")
    return (*in_shapes[0][:-1], params["out_features"])


def _linear_macs(params: Params, in_shapes: list[Shape], out: Shape) -> int:
    return math.prod(out) * in_shapes[0][-1]


LAYER_TYPES = [
    LayerType(
        name="linear",
        family="dense",
        description="Fully connected layer (applied at every step of a sequence)",
        defaults={"out_features": None, "bias": True},
        domains={"out_features": "posint", "bias": "bool"},
        infer=_linear_infer,
        module=nn.Linear,
        kwargs=lambda params, in_shapes: {
            "in_features": in_shapes[0][-1],
            "out_features": params["out_features"],
            "bias": params["bias"],
        },
        macs=_linear_macs,
    ),
    LayerType(
        name="embedding",
        family="dense",
        description="Looks up a learned vector for each integer id: T → T×D",
        defaults={"num_embeddings": None, "embedding_dim": None},
        domains={"num_embeddings": "posint", "embedding_dim": "posint"},
        infer=lambda params, in_shapes: (*in_shapes[0], params["embedding_dim"]),
        module=nn.Embedding,
        kwargs=lambda params, in_shapes: {
            "num_embeddings": params["num_embeddings"],
            "embedding_dim": params["embedding_dim"],
        },
        takes_ids=True,
        docs={"num_embeddings": "vocabulary size: ids run from 0 to num_embeddings − 1"},
    ),
]
