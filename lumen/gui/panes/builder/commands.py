"""Undo commands. Each holds the document's snapshot before and after (specs are immutable snapshots), so
undo restores exactly the previous spec and positions, whatever the edit was."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QUndoCommand

from lumen.engine.spec.model_spec import ModelSpec, Node
from lumen.gui.panes.builder import edits
from lumen.gui.panes.builder.document import Snapshot, SpecDocument
from lumen.gui.panes.builder.layout import Point


class _Change(QUndoCommand):
    def __init__(self, doc: SpecDocument, text: str, after: Snapshot):
        super().__init__(text)
        self.doc, self.before, self.after = doc, doc.snapshot, after

    def redo(self) -> None:
        self.doc.set_snapshot(self.after)

    def undo(self) -> None:
        self.doc.set_snapshot(self.before)


def _without_routes(snapshot: Snapshot, node_ids: set[str]) -> dict:
    """Routes of edges not touching ``node_ids``: bends made for the old positions no longer fit."""
    return {
        e: r
        for e, r in snapshot.routes.items()
        if e[0] not in node_ids and e[1] not in node_ids and e in set(snapshot.spec.edges)
    }


class AddNode(_Change):
    def __init__(self, doc: SpecDocument, node: Node, at: Point, connect_from: str | None = None):
        spec = edits.add_nodes(doc.spec, [node])
        if connect_from:
            spec = edits.connect(spec, connect_from, node.id)
        positions = {**doc.snapshot.positions, node.id: at}
        super().__init__(doc, f"add {node.id}", Snapshot(spec, positions, doc.snapshot.routes))


class Delete(_Change):
    def __init__(self, doc: SpecDocument, node_ids: set[str], edges: set[tuple[str, str]]):
        spec = edits.remove(doc.spec, node_ids, edges)
        positions = {k: v for k, v in doc.snapshot.positions.items() if k not in node_ids}
        routes = {e: r for e, r in doc.snapshot.routes.items() if e in set(spec.edges)}
        what = ", ".join(sorted(node_ids)) or ", ".join(f"{s}→{d}" for s, d in sorted(edges))
        super().__init__(doc, f"delete {what}", Snapshot(spec, positions, routes))


class Move(_Change):
    def __init__(self, doc: SpecDocument, moved: dict[str, Point]):
        snapshot = doc.snapshot
        routes = _without_routes(snapshot, set(moved))
        super().__init__(
            doc, f"move {', '.join(sorted(moved))}", Snapshot(snapshot.spec, {**snapshot.positions, **moved}, routes)
        )


class Connect(_Change):
    def __init__(self, doc: SpecDocument, src: str, dst: str):
        spec = edits.connect(doc.spec, src, dst)
        super().__init__(doc, f"connect {src} → {dst}", Snapshot(spec, doc.snapshot.positions, doc.snapshot.routes))


class SetParam(_Change):
    def __init__(self, doc: SpecDocument, node_id: str, key: str, value: Any):
        spec = edits.set_param(doc.spec, node_id, key, value)
        super().__init__(doc, f"set {node_id}.{key}", Snapshot(spec, doc.snapshot.positions, doc.snapshot.routes))


class Rename(_Change):
    def __init__(self, doc: SpecDocument, old: str, new: str):
        spec = edits.rename(doc.spec, old, new)
        positions = {new if k == old else k: v for k, v in doc.snapshot.positions.items()}
        routes = {(new if s == old else s, new if d == old else d): r for (s, d), r in doc.snapshot.routes.items()}
        super().__init__(doc, f"rename {old} → {new}", Snapshot(spec, positions, routes))


class Paste(_Change):
    OFFSET = 40.0

    def __init__(self, doc: SpecDocument, frag: dict):
        spec, self.mapping = edits.paste(doc.spec, frag)
        positions = dict(doc.snapshot.positions)
        stored = frag.get("positions") or {}
        for old, new in self.mapping.items():
            x, y = stored.get(old, (0.0, 0.0))
            positions[new] = (float(x) + self.OFFSET, float(y) + self.OFFSET)
        super().__init__(doc, f"paste {len(self.mapping)} node(s)", Snapshot(spec, positions, doc.snapshot.routes))


class Relayout(_Change):
    def __init__(self, doc: SpecDocument, spec: ModelSpec | None = None):
        super().__init__(doc, "auto-layout", doc.laid_out(spec or doc.spec))
