"""The model spec: a versioned, JSON-serialisable graph of layer nodes.

A spec is data, not code: the GUI edits it, the CLI reads it from files, and ``engine.graph.model`` turns it into
an ``nn.Module``. Loading a spec never executes anything from the file.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import SpecError

FORMAT = "lumen.model"
VERSION = 1
# A node id is also the module's path in the built model (and so its state-dict key prefix): dotted paths
# such as "layer1.0.conv1" let full-size presets use torchvision's exact names.
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    description: str = ""

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def sequential(cls, name: str, input_shape: tuple[int, ...], layers: list[tuple[str, str, dict]],
                   description: str = "") -> ModelSpec:
        """A chain: input -> layers[0] -> layers[1] -> ...; each layer is (id, type, params)."""
        nodes = [Node("input", "input", {"shape": list(input_shape)})]
        nodes += [Node(node_id, kind, dict(params)) for node_id, kind, params in layers]
        edges = tuple((a.id, b.id) for a, b in zip(nodes, nodes[1:]))
        return cls(name, tuple(nodes), edges, description)

    # ---- queries -------------------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def inputs_of(self, node_id: str) -> list[str]:
        return [src for src, dst in self.edges if dst == node_id]

    @property
    def input_node(self) -> Node:
        inputs = [n for n in self.nodes if n.type == "input"]
        if len(inputs) != 1:
            raise SpecError(f"a model needs exactly one input node, this one has {len(inputs)}")
        return inputs[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.input_node.params["shape"])

    def topological_order(self) -> list[str]:
        """Node ids so that every node comes after its inputs; raises SpecError on cycles."""
        pending = {n.id: len(self.inputs_of(n.id)) for n in self.nodes}
        ready = [n.id for n in self.nodes if pending[n.id] == 0]
        order = []
        while ready:
            current = ready.pop(0)
            order.append(current)
            for src, dst in self.edges:
                if src == current:
                    pending[dst] -= 1
                    if pending[dst] == 0:
                        ready.append(dst)
        if len(order) != len(self.nodes):
            stuck = next(n.id for n in self.nodes if n.id not in order)
            raise SpecError("is part of a cycle; a model's graph must not loop back", stuck)
        return order

    @property
    def output_id(self) -> str:
        sources = {src for src, _ in self.edges}
        sinks = [n.id for n in self.nodes if n.id not in sources]
        if len(sinks) != 1:
            raise SpecError(f"a model needs exactly one output (a node nothing reads from); "
                            f"found {len(sinks)}: {', '.join(sinks)}")
        return sinks[0]

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "nodes": [{"id": n.id, "type": n.type, "params": copy.deepcopy(n.params)} for n in self.nodes],
            "edges": [list(edge) for edge in self.edges],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SpecError(f"not a Lumen model spec (expected \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise SpecError(f"spec version {data.get('version')!r} is not supported (this Lumen reads {VERSION})")
        raw_nodes, raw_edges = data.get("nodes"), data.get("edges")
        if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
            raise SpecError("a spec needs a list of \"nodes\" and a list of \"edges\"")
        nodes = []
        for i, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("type"), str):
                raise SpecError(f"node #{i + 1} needs a string \"id\" and a string \"type\"")
            if not _ID.match(raw["id"]):
                raise SpecError("ids may hold only letters, digits, underscores and dots between parts, "
                                "and not start with a digit", raw["id"])
            params = raw.get("params", {})
            if not isinstance(params, dict):
                raise SpecError("\"params\" must be an object", raw["id"])
            nodes.append(Node(raw["id"], raw["type"], params))
        ids = [n.id for n in nodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise SpecError(f"node ids must be unique; repeated: {', '.join(duplicates)}")
        for node_id in ids:
            parent = next((other for other in ids if node_id.startswith(other + ".")), None)
            if parent:
                raise SpecError(f"the id lies inside another node's path ({parent}); a layer cannot contain a layer",
                                node_id)
        edges = []
        for raw in raw_edges:
            if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(e, str) for e in raw)):
                raise SpecError(f"an edge must be a pair of node ids, got {raw!r}")
            for end in raw:
                if end not in ids:
                    raise SpecError(f"edge {raw[0]} -> {raw[1]} names a node that does not exist: {end}")
            edges.append((raw[0], raw[1]))
        name = data.get("name", "untitled")
        description = data.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str):
            raise SpecError("\"name\" and \"description\" must be strings")
        return cls(name, tuple(nodes), tuple(edges), description)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SpecError(f"{path.name} is not a text file, so not a model spec") from None
        except OSError as exc:
            raise SpecError(f"cannot read {path}: {exc.strerror}") from None
        try:
            return cls.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{path.name}: {exc}") from None
