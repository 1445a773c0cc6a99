"""Boltzmann parts: the ``rbm`` node, and the check of a chain of them (a DBN or DBM).

An ``rbm`` node maps visible units to p(h = 1 | v); a DBN or DBM is a chain of rbm nodes, each reading the
previous one's hidden probabilities. The chain's ``stack`` parameter says how it is trained as a whole
("dbn": greedy layer by layer, directed top-down; "dbm": jointly, undirected); ``boltzmann_stack`` checks a
spec's chain is consistent.
"""

from __future__ import annotations

from lumen.engine.errors import SpecError
from lumen.engine.layers.base import LayerType, Params, choice
from lumen.engine.layers.geometry import flat_vector
from lumen.engine.modules.boltzmann import RBM
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import Shape


def _rbm_infer(params: Params, in_shapes: list[Shape]) -> Shape:
    flat_vector(in_shapes[0], "rbm", "a flat vector of visible units")
    return (params["hidden_size"],)


def boltzmann_stack(spec: ModelSpec) -> tuple[str, list[str]]:
    """The stack ("dbn" or "dbm") and rbm node ids, bottom to top, of a spec's Boltzmann chain.

    Checks what a single node cannot: the rbm nodes form one chain (each reads the one below), agree on
    ``stack``, and only the bottom one has Gaussian visible units (the others see hidden probabilities).
    """
    ids = [n for n in spec.topological_order() if spec.node(n).type == "rbm"]
    if not ids:
        raise SpecError("the model has no rbm node")
    params = {n: {"visible": "bernoulli", "stack": "dbn", **spec.node(n).params} for n in ids}
    stack = params[ids[0]]["stack"]
    for below, node in zip(ids, ids[1:]):
        if spec.inputs_of(node) != [below]:
            raise SpecError(f"rbm nodes must form one chain; this one does not read from {below}", node)
        if params[node]["stack"] != stack:
            raise SpecError(f"stack is {params[node]['stack']!r} but the chain below is {stack!r}", node)
        if params[node]["visible"] != "bernoulli":
            raise SpecError(
                f"only the bottom rbm may have {params[node]['visible']} visible units; "
                f"this one's visible units are {below}'s hidden probabilities",
                node,
            )
    return stack, ids


LAYER_TYPES = [
    LayerType(
        name="rbm",
        family="boltzmann",
        description="Restricted Boltzmann machine: Bernoulli or Gaussian visible units, Bernoulli hidden; "
        "outputs p(h=1|v). Chain rbm nodes for a DBN or DBM (param stack)",
        defaults={"hidden_size": None, "visible": "bernoulli", "stack": "dbn"},
        domains={"hidden_size": "posint", "visible": choice("bernoulli", "gaussian"), "stack": choice("dbn", "dbm")},
        infer=_rbm_infer,
        module=RBM,
        kwargs=lambda params, in_shapes: {"visible_size": in_shapes[0][0], **params},
        docs={
            "hidden_size": "hidden (Bernoulli) units",
            "visible": "bernoulli (values in [0, 1]) or gaussian (standardised real values)",
            "stack": "for a chain of rbm nodes: dbn (greedy, directed) or dbm (joint, undirected)",
        },
        macs=lambda params, in_shapes, out: in_shapes[0][0] * out[0],
    ),
]
