"""The edited model: a spec, where each node is drawn, and what validation says about it.

Every change goes through ``set_snapshot`` (called by the undo commands), which re-validates the spec and
emits ``changed``. Views never edit the spec. Validation is what the engine will do before it builds: shapes
(``infer_shapes``, arithmetic only), then a build on the meta device (no weights allocated: it catches ids a
built model reserves, such as ``forward``) and the memory budget (``engine.graph.budget``), so a model the
engine would refuse is marked on its node here and never sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PySide6.QtCore import QObject, Signal

from lumen.engine.errors import SpecError
from lumen.engine.graph import budget
from lumen.engine.graph.model import GraphModel, infer_shapes, partial_shapes
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import Shape
from lumen.gui.panes.builder.layout import Point, layered

Route = dict[tuple[str, str], list[Point]]


@dataclass(frozen=True)
class Snapshot:
    """One undoable state of the document: specs are immutable, so a snapshot is cheap."""

    spec: ModelSpec
    positions: dict[str, Point] = field(default_factory=dict)
    routes: Route = field(default_factory=dict)  # bend points of long edges, from the last auto-layout


class SpecDocument(QObject):
    changed = Signal(bool)  # True when the spec changed, False when only positions did

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.snapshot = Snapshot(ModelSpec("untitled", (), ()))
        self.shapes: dict[str, Shape] = {}
        self.error: SpecError | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.snapshot.spec

    @property
    def valid(self) -> bool:
        return self.error is None and bool(self.spec.nodes)

    def laid_out(self, spec: ModelSpec) -> Snapshot:
        positions, routes = layered(spec)
        return Snapshot(spec, positions, routes)

    def set_snapshot(self, snapshot: Snapshot) -> None:
        spec_changed = snapshot.spec != self.snapshot.spec
        # A node without a position (e.g. from a file) gets one from a fresh layout.
        if any(n.id not in snapshot.positions for n in snapshot.spec.nodes):
            snapshot = self.laid_out(snapshot.spec)
        self.snapshot = snapshot
        if spec_changed or not self.shapes:
            self._validate()
        self.changed.emit(spec_changed)

    def _validate(self) -> None:
        try:
            self.shapes = infer_shapes(self.spec)
        except SpecError as exc:
            self.error = exc
            self.shapes = partial_shapes(self.spec)
            return
        try:  # every shape is known; what is left is whether the engine can build it at all
            with torch.device("meta"):
                budget.check_model(GraphModel(self.spec))
            self.error = None
        except SpecError as exc:
            self.error = exc
