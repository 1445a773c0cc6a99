"""Edits of a ModelSpec as pure functions: each takes a spec and returns a new one, or raises EditError.

Qt-free, so the undo commands stay thin and the rules (no cycles, no more inputs than a layer takes,
unique ids) are tested without a window. A spec that results may still be *invalid* as a model (a kernel
larger than its input): that is for ``infer_shapes`` to say; these functions refuse only edits that make
no sense as a graph.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from lumen.engine.errors import SpecError
from lumen.engine.layers import LAYERS
from lumen.engine.spec.model_spec import ModelSpec, Node

FRAGMENT_FORMAT = "lumen.fragment"
# Starting values for the required parameters (default None) of layer types, so a node dropped from the
# palette is usable at once; a test checks every required parameter has one and every key is required somewhere.
STARTERS: dict[str, Any] = {
    "out_channels": 16,
    "kernel_size": 3,
    "out_features": 10,
    "shape": [1, 28, 28],
    "hidden_size": 32,
    "num_embeddings": 1000,
    "embedding_dim": 32,
    "steps": 4,
    "code_size": 32,
    "latent_size": 8,
    "op": "Identity",  # an opaque ONNX op from the palette: the identity until its op is named
}


class EditError(ValueError):
    """An edit that would not make a graph (a cycle, too many inputs, a repeated id); the message says why."""


def unique_id(taken: set[str] | ModelSpec, base: str) -> str:
    """``base`` followed by the smallest ``_n`` not yet taken (conv2d_1, conv2d_2, ...)."""
    ids = {n.id for n in taken.nodes} if isinstance(taken, ModelSpec) else taken
    stem = re.sub(r"_\d+$", "", base) or "node"
    n = 1
    while f"{stem}_{n}" in ids:
        n += 1
    return f"{stem}_{n}"


def new_node(spec: ModelSpec, layer_type: str) -> Node:
    layer = LAYERS[layer_type]
    params = {k: copy.deepcopy(STARTERS[k]) for k, v in layer.defaults.items() if v is None and k in STARTERS}
    return Node(unique_id(spec, layer_type), layer_type, params)


def add_nodes(spec: ModelSpec, nodes: list[Node], edges: list[tuple[str, str]] = ()) -> ModelSpec:
    taken = {n.id for n in spec.nodes}
    for node in nodes:
        if node.id in taken:
            raise EditError(f"there is already a node called {node.id}")
        taken.add(node.id)
    return ModelSpec(spec.name, spec.nodes + tuple(nodes), spec.edges + tuple(edges), spec.description, spec.preprocess)


def remove(spec: ModelSpec, node_ids: set[str], edges: set[tuple[str, str]] = frozenset()) -> ModelSpec:
    """Without the nodes (and every edge touching them) and without the given edges."""
    nodes = tuple(n for n in spec.nodes if n.id not in node_ids)
    kept = tuple(e for e in spec.edges if e not in edges and e[0] not in node_ids and e[1] not in node_ids)
    return ModelSpec(spec.name, nodes, kept, spec.description, spec.preprocess)


def _reaches(spec: ModelSpec, start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(d for s, d in spec.edges if s == current)
    return False


def connect(spec: ModelSpec, src: str, dst: str) -> ModelSpec:
    if src == dst:
        raise EditError(f"{src} cannot feed itself")
    if (src, dst) in spec.edges:
        raise EditError(f"{src} already feeds {dst}")
    arity = LAYERS[spec.node(dst).type].arity if spec.node(dst).type in LAYERS else 1
    inputs = spec.inputs_of(dst)
    if arity == 0:
        raise EditError(f"{dst} is the model's input; nothing can feed it")
    if _reaches(spec, dst, src):
        raise EditError(f"{src} → {dst} would make a cycle ({dst} already leads to {src})")
    if arity is not None and len(inputs) >= arity:
        raise EditError(
            f"{dst} takes {arity} input{'s' if arity > 1 else ''} and already has "
            f"{', '.join(inputs)}; remove that edge first, or feed a merge node (add, concat)"
        )
    return ModelSpec(spec.name, spec.nodes, spec.edges + ((src, dst),), spec.description, spec.preprocess)


def _replace_node(spec: ModelSpec, node_id: str, node: Node) -> ModelSpec:
    nodes = tuple(node if n.id == node_id else n for n in spec.nodes)
    return ModelSpec(spec.name, nodes, spec.edges, spec.description, spec.preprocess)


def set_param(spec: ModelSpec, node_id: str, key: str, value: Any) -> ModelSpec:
    node = spec.node(node_id)
    params = dict(node.params)
    params[key] = value
    return _replace_node(spec, node_id, Node(node.id, node.type, params))


def rename(spec: ModelSpec, old: str, new: str) -> ModelSpec:
    """The node ``old`` called ``new``, edges following; ids are checked as a loaded file's would be."""
    if old == new:
        return spec
    if any(n.id == new for n in spec.nodes):
        raise EditError(f"there is already a node called {new}")
    spec.node(old)  # KeyError for an unknown node
    renamed = ModelSpec(
        spec.name,
        tuple(Node(new, n.type, n.params) if n.id == old else n for n in spec.nodes),
        tuple((new if s == old else s, new if d == old else d) for s, d in spec.edges),
        spec.description,
        spec.preprocess,
    )
    try:
        ModelSpec.from_dict(renamed.to_dict())  # the same id rules as a file: letters, digits, dotted paths
    except SpecError as exc:
        raise EditError(exc.reason if exc.node == new else str(exc)) from None
    return renamed


# ---- copy and paste: a fragment is some nodes, the edges among them, and where they were drawn -------
def fragment(spec: ModelSpec, node_ids: set[str], positions: dict[str, tuple[float, float]]) -> dict:
    nodes = [n for n in spec.nodes if n.id in node_ids and n.type != "input"]  # a model has one input
    ids = {n.id for n in nodes}
    return {
        "format": FRAGMENT_FORMAT,
        "nodes": [{"id": n.id, "type": n.type, "params": copy.deepcopy(n.params)} for n in nodes],
        "edges": [[s, d] for s, d in spec.edges if s in ids and d in ids],
        "positions": {i: list(positions[i]) for i in ids if i in positions},
    }


def paste(spec: ModelSpec, frag: Any) -> tuple[ModelSpec, dict[str, str]]:
    """The spec with the fragment's nodes added under fresh ids; also {fragment id: new id}."""
    if not isinstance(frag, dict) or frag.get("format") != FRAGMENT_FORMAT:
        raise EditError("the clipboard holds no Lumen nodes")
    try:  # reuse the spec reader's checks on the fragment's nodes and edges
        checked = ModelSpec.from_dict(
            {"format": "lumen.model", "version": 1, "nodes": frag.get("nodes"), "edges": frag.get("edges")}
        )
    except SpecError as exc:
        raise EditError(f"the clipboard's nodes are not usable: {exc}") from None
    unknown = sorted({n.type for n in checked.nodes} - set(LAYERS))
    if unknown:
        raise EditError(f"the clipboard holds unknown layer types: {', '.join(unknown)}")
    taken = {n.id for n in spec.nodes}
    mapping = {}
    for node in checked.nodes:
        mapping[node.id] = unique_id(taken, node.id)
        taken.add(mapping[node.id])
    nodes = [Node(mapping[n.id], n.type, copy.deepcopy(n.params)) for n in checked.nodes]
    edges = [(mapping[s], mapping[d]) for s, d in checked.edges]
    return add_nodes(spec, nodes, edges), mapping
