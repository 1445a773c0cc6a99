"""The model spec: a versioned, JSON-serialisable graph of layer nodes.

A spec is data, not code: the GUI edits it, the CLI reads it from files, and ``engine.graph.model`` turns it into
an ``nn.Module``. Loading a spec never executes anything from the file.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lumen.engine.errors import DataError, SpecError
from lumen.engine.spec.preprocess import Preprocess
from lumen.engine.untrusted import control_characters, parse_json, printable, read_json, shown, write_text_atomic

FORMAT = "lumen.model"
VERSION = 2  # 2 added "preprocess"; a spec without it is still written as 1, which every version reads
VERSIONS = (1, 2)
# Limits on what a spec may hold (a spec is untrusted input: a file, a paste, the builder's fields).
MAX_NODES = 5_000  # the largest preset has a few hundred; every spec step is linear, 5,000 loads in well under 1 s
MAX_EDGES = 4 * MAX_NODES
MAX_SIZE = 2**31 - 1  # any integer in a node's params (channels, sizes, ...): products of a few stay in int64
MAX_NAME = 200  # characters in a spec's name or a node id
MAX_TEXT = 20_000  # characters in the description or any string parameter
# A node id is also the module's path in the built model (and so its state-dict key prefix): dotted paths
# such as "layer1.0.conv1" let full-size presets use torchvision's exact names.
_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")  # used with fullmatch: "$" allows a final "\n"

# Parameters renamed since files of this version were first written, {layer type: {old name: new name}}; a file
# that uses an old name loads with the new one.
RENAMED_PARAMS = {"noise": {"kind": "noise"}}


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
    preprocess: Preprocess | None = None  # how a picture becomes the input; None: Lumen's default preparation

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def sequential(
        cls, name: str, input_shape: tuple[int, ...], layers: list[tuple[str, str, dict]], description: str = ""
    ) -> ModelSpec:
        """A chain: input -> layers[0] -> layers[1] -> ...; each layer is (id, type, params)."""
        nodes = [Node("input", "input", {"shape": list(input_shape)})]
        nodes += [Node(node_id, layer_type, dict(params)) for node_id, layer_type, params in layers]
        edges = tuple((a.id, b.id) for a, b in zip(nodes, nodes[1:]))
        return cls(name, tuple(nodes), edges, description)

    # ---- queries -------------------------------------------------------------------------------
    # The indexes are built once per spec (it is frozen), so every query is O(1) and a whole pass is linear.
    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    @cached_property
    def _inputs(self) -> dict[str, list[str]]:
        inputs: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for src, dst in self.edges:
            inputs.setdefault(dst, []).append(src)
        return inputs

    @cached_property
    def _outputs(self) -> dict[str, list[str]]:
        outputs: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for src, dst in self.edges:
            outputs.setdefault(src, []).append(dst)
        return outputs

    def node(self, node_id: str) -> Node:
        try:
            return self._by_id[node_id]
        except KeyError:
            raise KeyError(node_id) from None

    def inputs_of(self, node_id: str) -> list[str]:
        return list(self._inputs.get(node_id, ()))

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
        pending = {n.id: len(self._inputs[n.id]) for n in self.nodes}
        ready = deque(n.id for n in self.nodes if pending[n.id] == 0)
        order = []
        while ready:
            current = ready.popleft()
            order.append(current)
            for dst in self._outputs.get(current, ()):
                if dst in pending:
                    pending[dst] -= 1
                    if pending[dst] == 0:
                        ready.append(dst)
        if len(order) != len(self.nodes):
            done = set(order)
            stuck = next(n.id for n in self.nodes if n.id not in done)
            raise SpecError("is part of a cycle; a model's graph must not loop back", stuck)
        return order

    @property
    def output_id(self) -> str:
        sources = {src for src, _ in self.edges}
        sinks = [n.id for n in self.nodes if n.id not in sources]
        if len(sinks) != 1:
            raise SpecError(
                f"a model needs exactly one output (a node nothing reads from); found {len(sinks)}: {', '.join(sinks)}"
            )
        return sinks[0]

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT,
            "version": VERSION if self.preprocess is not None else 1,
            "name": self.name,
            "description": self.description,
            "nodes": [{"id": n.id, "type": n.type, "params": copy.deepcopy(n.params)} for n in self.nodes],
            "edges": [list(edge) for edge in self.edges],
        }
        if self.preprocess is not None:
            data["preprocess"] = self.preprocess.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the spec as JSON, atomically: the file is the whole spec or is left as it was."""
        write_text_atomic(path, self.to_json())

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SpecError(f'not a Lumen model spec (expected "format": "{FORMAT}")')
        version = data.get("version")
        if isinstance(version, bool) or version not in VERSIONS:
            raise SpecError(f"spec version {version!r} is not supported (this Lumen reads 1 to {VERSION})")
        if version == 1 and "preprocess" in data:
            raise SpecError('"preprocess" needs a version 2 spec')
        preprocess = Preprocess.from_dict(data["preprocess"]) if data.get("preprocess") is not None else None
        raw_nodes, raw_edges = data.get("nodes"), data.get("edges")
        if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
            raise SpecError('a spec needs a list of "nodes" and a list of "edges"')
        if len(raw_nodes) > MAX_NODES:
            raise SpecError(f"the spec has {len(raw_nodes):,} nodes; Lumen reads at most {MAX_NODES:,}")
        if len(raw_edges) > MAX_EDGES:
            raise SpecError(f"the spec has {len(raw_edges):,} edges; Lumen reads at most {MAX_EDGES:,}")
        name = data.get("name", "untitled")
        description = data.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str):
            raise SpecError('"name" and "description" must be strings')
        _check_text("the name", name, MAX_NAME)
        _check_text("the description", description, MAX_TEXT, allow="\n\t")
        nodes = []
        for i, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("type"), str):
                raise SpecError(f'node #{i + 1} needs a string "id" and a string "type"')
            if len(raw["id"]) > MAX_NAME or not _ID.fullmatch(raw["id"]):
                raise SpecError(
                    "ids may hold only letters, digits, underscores and dots between parts, "
                    f"and not start with a digit (at most {MAX_NAME} characters)",
                    printable(raw["id"][:80]),
                )
            _check_text("the type", raw["type"], MAX_NAME, node=raw["id"])
            params = raw.get("params", {})
            if not isinstance(params, dict):
                raise SpecError('"params" must be an object', raw["id"])
            _check_params(params, raw["id"])
            nodes.append(Node(raw["id"], raw["type"], _renamed_params(raw["type"], params)))
        counts = Counter(n.id for n in nodes)
        duplicates = sorted(i for i, count in counts.items() if count > 1)
        if duplicates:
            raise SpecError(f"node ids must be unique; repeated: {', '.join(duplicates)}")
        for node_id in counts:  # linear: look up each proper prefix ("a", "a.b" of "a.b.c"), not every other id
            parts = node_id.split(".")
            parent = next((p for p in (".".join(parts[:k]) for k in range(1, len(parts))) if p in counts), None)
            if parent:
                raise SpecError(
                    f"the id lies inside another node's path ({parent}); a layer cannot contain a layer", node_id
                )
        edges = []
        for raw in raw_edges:
            if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(e, str) for e in raw)):
                raise SpecError(f"an edge must be a pair of node ids, got {printable(repr(raw)[:200])}")
            for end in raw:
                if end not in counts:
                    raise SpecError(
                        f"edge {printable(raw[0][:80])} -> {printable(raw[1][:80])} names a node that "
                        f"does not exist: {printable(end[:80])}"
                    )
            edges.append((raw[0], raw[1]))
        return cls(name, tuple(nodes), tuple(edges), description, preprocess)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """A spec from JSON text, parsed with the limits of ``engine.untrusted`` (depth, numbers)."""
        try:
            data = parse_json(text)
        except DataError as exc:
            raise SpecError(str(exc)) from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """A spec from a file: a regular file of limited size (see ``engine.untrusted.read_json``)."""
        path = Path(path)
        try:
            data = read_json(path, "model spec")
        except DataError as exc:
            raise SpecError(str(exc)) from None
        try:
            return cls.from_dict(data)
        except SpecError as exc:
            raise SpecError(f"{shown(path.name)}: {exc}") from None


def _renamed_params(layer_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the names RENAMED_PARAMS lists for ``layer_type`` made current (unless both are there)."""
    renames = RENAMED_PARAMS.get(layer_type, {})
    return {
        renames[key] if key in renames and renames[key] not in params else key: value for key, value in params.items()
    }


def _check_text(what: str, text: str, limit: int, allow: str = "", node: str | None = None) -> None:
    """Refuse control characters (ANSI escapes, carriage returns, NULs, ...) and overlong text."""
    if len(text) > limit:
        raise SpecError(f"{what} has {len(text):,} characters; at most {limit:,} are allowed", node)
    bad = control_characters(text, allow)
    if bad:
        raise SpecError(f"{what} holds a control character ({printable(bad[0])}); only printable text is allowed", node)


def _check_params(params: dict, node_id: str) -> None:
    """Every number within the spec's limits, every string printable; nesting is already bounded by the JSON
    reader (or by the builder, whose values are typed in)."""
    stack: list[Any] = [params]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(f"parameter names must be strings, got {printable(repr(key)[:40])}", node_id)
                _check_text(f"the parameter name {printable(key[:40])!r}", key, MAX_NAME, node=node_id)
                stack.append(item)
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_NODES:
                raise SpecError(f"a parameter holds a list of {len(value):,} items; at most {MAX_NODES:,}", node_id)
            stack.extend(value)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_SIZE:
                raise SpecError(f"the number {value} is too large; sizes and counts go up to {MAX_SIZE:,}", node_id)
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise SpecError(f"the number {value} is not finite", node_id)
        elif isinstance(value, str):
            _check_text("a text parameter", value, MAX_TEXT, node=node_id)
        else:
            raise SpecError(f"a parameter holds a {type(value).__name__}, which a spec cannot", node_id)
