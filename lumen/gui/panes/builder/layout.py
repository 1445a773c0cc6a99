"""Layered auto-layout, top to bottom (a small Sugiyama): depth by longest path, long edges routed
through placeholder slots so they never cross a node, order within a layer by the parents' positions.

Qt-free: positions are node top-left corners; routes are the bend points of edges that span layers.
"""

from __future__ import annotations

from lumen.engine.errors import SpecError
from lumen.engine.spec.model_spec import ModelSpec

NODE_W, NODE_H = 212.0, 60.0
GAP_X, GAP_Y = 34.0, 56.0  # GAP_Y leaves room for the shape label drawn on each edge
SLOT_W = 26.0  # width kept free for a long edge passing through a layer

Point = tuple[float, float]


def _depths(spec: ModelSpec) -> dict[str, int]:
    try:
        order = spec.topological_order()
    except SpecError:  # a cycle cannot come from the editor, but a file may hold one: keep the file order
        order = [n.id for n in spec.nodes]
    depth: dict[str, int] = {}
    for node_id in order:
        depth[node_id] = max((depth.get(s, 0) + 1 for s in spec.inputs_of(node_id) if s in depth), default=0)
    return depth


def layered(spec: ModelSpec) -> tuple[dict[str, Point], dict[tuple[str, str], list[Point]]]:
    depth = _depths(spec)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in spec.nodes:
        layers[depth[node.id]].append(node.id)
    # Long edges become chains of placeholders ("slots"), one per layer they pass. An edge that does not point
    # down (a cycle or self-loop in a file, which validation refuses) places nothing and gets no route.
    parents: dict[str, list[str]] = {n.id: [] for n in spec.nodes}
    chains: dict[tuple[str, str], list[str]] = {}
    for src, dst in spec.edges:
        if depth[src] >= depth[dst]:
            continue
        previous = src
        chain = []
        for d in range(depth[src] + 1, depth[dst]):
            slot = f"\0{src}\0{dst}\0{d}"
            layers[d].append(slot)
            parents[slot] = [previous]
            chain.append(slot)
            previous = slot
        parents[dst].append(previous)
        chains[(src, dst)] = chain

    def width(item: str) -> float:
        return SLOT_W if item.startswith("\0") else NODE_W

    x: dict[str, float] = {}  # centre of each item
    for d, row in enumerate(layers):
        # Layer 0 holds the nodes without inputs from above; every later item has a parent just above it.
        wanted = {item: sum(x[p] for p in parents[item]) / len(parents[item]) if d else 0.0 for item in row}
        if d:
            row.sort(key=lambda item: wanted[item])  # barycentre order; a stable sort keeps ties in spec order
        # Each item wants to sit under its parents: push right to remove overlaps, then re-centre the row.
        placed: list[float] = []
        for i, item in enumerate(row):
            lowest = placed[-1] + (width(row[i - 1]) + width(item)) / 2 + GAP_X if placed else -1e18
            placed.append(max(wanted[item], lowest) if d else (lowest if placed else 0.0))
        shift = sum(wanted[item] - p for item, p in zip(row, placed)) / len(row) if d else -(placed[0] + placed[-1]) / 2
        for item, centre in zip(row, placed):
            x[item] = centre + shift

    y = {item: d * (NODE_H + GAP_Y) for d, row in enumerate(layers) for item in row}
    positions = {n.id: (x[n.id] - NODE_W / 2, y[n.id]) for n in spec.nodes}
    routes = {edge: [(x[s], y[s] + NODE_H / 2) for s in chain] for edge, chain in chains.items() if chain}
    return positions, routes
