"""Model builder pane: a canvas of layer nodes with live shapes and errors, a palette to add layers from,
a property editor, undo/redo, copy/paste, presets and spec files, and the per-layer summary table.

The pane holds the edited spec (``doc``). It announces ``model_chosen`` when a preset or file is loaded
and ``spec_edited`` (debounced) after an edit that leaves the model valid; invalid specs are never sent.
Spec files are read off the GUI thread (``gui.spec_io``). Loading over unsaved edits (the undo stack is not
clean) asks first; saving the spec marks the stack clean.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lumen.engine.errors import LumenError, SpecError
from lumen.engine.graph.analysis import analyze
from lumen.engine.presets import PRESETS, get_preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import fmt
from lumen.engine.untrusted import shown
from lumen.gui.panes.builder import commands, edits
from lumen.gui.panes.builder.canvas import BuilderScene, BuilderView
from lumen.gui.panes.builder.document import SpecDocument
from lumen.gui.panes.builder.layout import GAP_Y, NODE_H
from lumen.gui.panes.builder.palette import Palette
from lumen.gui.panes.builder.properties import PropertyEditor
from lumen.gui.panes.builder.summary import SummaryTable
from lumen.gui.spec_io import SpecReader

FRAGMENT_MIME = "application/x-lumen-fragment"
SPEC_FILTER = "Lumen model spec (*.json);;All files (*)"
EDIT_DEBOUNCE_MS = 300


class BuilderPane(QWidget):
    model_chosen = Signal(object)  # ModelSpec: a preset or a file was loaded
    spec_edited = Signal(object)  # ModelSpec: the user's edits left a valid model (debounced)
    spec_opened = Signal(str)  # the path of a spec file read and shown (the window's Recent menu)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc = SpecDocument(self)
        self.undo_stack = QUndoStack(self)
        self.scene = BuilderScene(self.doc, self)
        self.view = BuilderView(self.scene)
        self.palette = Palette()
        self.properties = PropertyEditor()
        self.table = SummaryTable()
        self.total = QLabel()
        self.description = QLabel(wordWrap=True)
        self.problem = QLabel(wordWrap=True)  # the validation message, or why an edit was refused
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.presets = QComboBox(placeholderText="custom model")
        for preset in PRESETS.values():
            self.presets.addItem(preset.summary.split(":")[0], preset.name)
            self.presets.setItemData(self.presets.count() - 1, preset.summary, Qt.ItemDataRole.ToolTipRole)
        self.presets.activated.connect(lambda i: self.load_preset(self.presets.itemData(i)))
        self._edit_timer = QTimer(self, singleShot=True, interval=EDIT_DEBOUNCE_MS)
        self._edit_timer.timeout.connect(self._announce_edit)
        self._summary_spec: ModelSpec | None = None
        self.reader = SpecReader(self)
        self.reader.loaded.connect(self._spec_read)
        self.reader.failed.connect(self._spec_unreadable)

        self._make_actions()
        self._lay_out()
        self.doc.changed.connect(self._doc_changed)
        self.scene.selectionChanged.connect(self._show_selected)
        self.scene.nodes_moved.connect(lambda moved: self.push(commands.Move, moved))
        self.scene.connect_requested.connect(lambda src, dst: self.push(commands.Connect, src, dst))
        self.scene.layer_dropped.connect(self.add_layer)
        self.palette.add_requested.connect(self.add_layer)
        self.properties.param_edited.connect(lambda node, key, value: self.push(commands.SetParam, node, key, value))
        self.properties.rename_requested.connect(self._rename)
        self.properties.problem.connect(self._refuse)

    # ---- construction ---------------------------------------------------------------------------------
    def _make_actions(self) -> None:
        def action(text: str, slot, keys: list, tip: str = "") -> QAction:
            act = QAction(text, self, toolTip=tip or text)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)  # only while the builder has focus
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.undo_action = self.undo_stack.createUndoAction(self, "Undo")
        self.redo_action = self.undo_stack.createRedoAction(self, "Redo")
        for act, keys in (
            (self.undo_action, QKeySequence.StandardKey.Undo),
            (self.redo_action, QKeySequence.StandardKey.Redo),
        ):
            act.setShortcuts(keys)
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(act)
        self.copy_action = action(
            "Copy",
            self.copy_selection,
            QKeySequence.keyBindings(QKeySequence.StandardKey.Copy),
            "Copy the selected nodes and the edges among them",
        )
        self.paste_action = action("Paste", self.paste, QKeySequence.keyBindings(QKeySequence.StandardKey.Paste))
        self.delete_action = action(
            "Delete",
            self.delete_selection,
            [Qt.Key.Key_Delete, Qt.Key.Key_Backspace],
            "Delete the selected nodes and edges",
        )
        self.layout_action = action(
            "Auto-layout",
            lambda: self.push(commands.Relayout),
            ["Ctrl+L"],
            "Lay the graph out in layers, top to bottom",
        )
        self.fit_action = action("Fit", lambda: self.view.show_all(min_zoom=0.15), ["Ctrl+0"], "Show the whole model")
        self.open_action = action("Open spec…", self.open_spec_dialog, [], "Open a model spec (.json)")
        self.save_action = action("Save spec…", self.save_spec_dialog, [], "Save the model spec as .json")

    def _lay_out(self) -> None:
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Preset:"))
        bar.addWidget(self.presets, 1)
        for act in (
            self.open_action,
            self.save_action,
            self.undo_action,
            self.redo_action,
            self.layout_action,
            self.fit_action,
        ):
            button = QToolButton()
            button.setDefaultAction(act)
            button.setAutoRaise(True)
            bar.addWidget(button)

        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.properties)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.palette)
        left.addWidget(scroll)
        left.setSizes([300, 300])
        summary = QWidget()
        summary_layout = QVBoxLayout(summary)
        summary_layout.setContentsMargins(0, 0, 0, 0)
        summary_layout.addWidget(self.table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.view, "Canvas")
        self.tabs.addTab(summary, "Summary")
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.setStretchFactor(1, 1)
        main.setSizes([250, 700])

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.description)
        layout.addWidget(main, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.total)
        self.setMinimumWidth(350)

    # ---- loading and saving --------------------------------------------------------------------------------
    def load_preset(self, name: str) -> None:
        if self.show_spec(get_preset(name)):
            self.presets.setCurrentIndex(self.presets.findData(name))

    def show_spec(self, spec: ModelSpec, opened: bool = False) -> bool:
        """Start editing ``spec`` and announce it; a bad spec shows its message and changes nothing, and unsaved
        edits are replaced only if the user agrees (``confirm_discard``). ``opened``: the spec of a run the engine
        has opened with its weights: the user was asked already, and nothing is announced (a chosen model would be
        loaded again with fresh weights)."""
        candidate = SpecDocument()  # validated aside, so a bad spec leaves the edited one untouched
        candidate.set_snapshot(candidate.laid_out(spec))
        if candidate.error is not None:
            self._refuse(str(candidate.error))
            self._show_current_preset()
            return False
        if not opened and not self.undo_stack.isClean() and not self.confirm_discard(spec.name):
            self._refuse(f"{shown(spec.name)} was not opened; your edits are kept")
            self._show_current_preset()
            return False
        self.undo_stack.clear()
        self.doc.set_snapshot(candidate.snapshot)
        self._edit_timer.stop()  # a loaded model is announced as chosen, not as edited
        self._show_current_preset()
        self.view.show_all()
        if not opened:
            self.model_chosen.emit(spec)
        return True

    def _show_current_preset(self) -> None:
        """The preset box names the edited model's preset (or none: a custom model)."""
        self.presets.setCurrentIndex(self.presets.findText(self.doc.spec.name, Qt.MatchFlag.MatchStartsWith))

    def confirm_discard(self, incoming: str, why: str = "") -> bool:
        """Ask before unsaved edits are replaced by ``incoming`` (or lost for the reason ``why`` gives, e.g. quitting):
        save them first, discard them, or cancel."""
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            f"The model {shown(self.doc.spec.name)} has changes that are not saved. "
            + (why or f"Opening {shown(incoming)} replaces it and its undo history."),
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save_spec_dialog()
        return answer == QMessageBox.StandardButton.Discard

    def open_spec(self, path: str) -> None:
        """Read the spec at ``path`` on the reader's thread; it is shown (``show_spec``) or refused when read."""
        self.problem.setStyleSheet("")
        self.problem.setText(f"Opening {shown(Path(path).name)}…")
        self.reader.load(path)

    def _spec_read(self, spec: ModelSpec, path: str, serial: int) -> None:
        if serial == self.reader.serial and self.show_spec(spec):  # an older request, overtaken, is dropped
            self.spec_opened.emit(path)

    def _spec_unreadable(self, message: str, serial: int) -> None:
        if serial == self.reader.serial:
            self._refuse(message)

    def save_spec(self, path: str | Path) -> None:
        """Write the spec to ``path`` (atomically); the edits are then saved: the undo stack is clean."""
        self.doc.spec.save(path)
        self.undo_stack.setClean()

    def open_spec_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model spec", "", SPEC_FILTER)
        if path:
            self.open_spec(path)

    def save_spec_dialog(self) -> bool:
        """Ask where to save the spec and save it; True if it was saved."""
        path, _ = QFileDialog.getSaveFileName(self, "Save the model spec", f"{self.doc.spec.name}.json", SPEC_FILTER)
        if not path:
            return False
        try:
            self.save_spec(path)
        except (OSError, LumenError) as exc:
            self._refuse(f"could not save {shown(path)}: {getattr(exc, 'strerror', None) or exc}")
            return False
        return True

    def shutdown(self) -> None:
        """Wait for a spec being read (never long: the reader refuses anything but a regular file)."""
        self.reader.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # only when the pane is a window of its own
        self.shutdown()
        super().closeEvent(event)

    # ---- edits: every one is an undo command --------------------------------------------------------------
    def push(self, command_type, *args) -> bool:
        """Make and push an undo command; an edit that makes no sense shows why and changes nothing."""
        try:
            command = command_type(self.doc, *args)
        except (edits.EditError, KeyError) as exc:
            self._refuse(str(exc.args[0]) if exc.args else str(exc))
            return False
        self.undo_stack.push(command)
        return True

    def add_layer(self, layer_type: str, at: QPointF | None = None) -> str | None:
        """Add a node of ``layer_type``; without a position it goes below the selected node, fed by it."""
        node = edits.new_node(self.doc.spec, layer_type)
        selected = self.scene.selected_node_ids()
        source = selected[0] if at is None and len(selected) == 1 else None
        if at is None:
            if source:
                x, y = self.doc.snapshot.positions[source]
                at = QPointF(x, y + NODE_H + GAP_Y)
            else:
                at = self.view.mapToScene(self.view.viewport().rect().center())
        if source:
            try:
                edits.connect(edits.add_nodes(self.doc.spec, [node]), source, node.id)
            except edits.EditError:
                source = None  # e.g. the selected node is a merge's input already full: just add
        if not self.push(commands.AddNode, node, (at.x(), at.y()), source):
            return None
        self.scene.select_nodes([node.id])
        return node.id

    def connect_nodes(self, src: str, dst: str) -> bool:
        return self.push(commands.Connect, src, dst)

    def set_param(self, node_id: str, key: str, value) -> bool:
        return self.push(commands.SetParam, node_id, key, value)

    def _rename(self, old: str, new: str) -> None:
        if self.push(commands.Rename, old, new):
            self.scene.select_nodes([new])
        else:
            self._show_selected()  # put the old id back in the field

    def delete_selection(self) -> None:
        nodes, edges = set(self.scene.selected_node_ids()), set(self.scene.selected_edges())
        if nodes or edges:
            self.push(commands.Delete, nodes, edges)

    def copy_selection(self) -> None:
        ids = set(self.scene.selected_node_ids())
        if not ids:
            return
        frag = edits.fragment(self.doc.spec, ids, self.doc.snapshot.positions)
        data = QMimeData()
        text = json.dumps(frag, indent=2)
        data.setData(FRAGMENT_MIME, text.encode())
        data.setText(text)  # readable, and pastable into another Lumen window
        QGuiApplication.clipboard().setMimeData(data)

    def paste(self) -> list[str]:
        data = QGuiApplication.clipboard().mimeData()
        raw = bytes(data.data(FRAGMENT_MIME)).decode() if data.hasFormat(FRAGMENT_MIME) else data.text()
        try:
            frag = json.loads(raw)
        except json.JSONDecodeError:
            self._refuse("the clipboard holds no Lumen nodes")
            return []
        try:
            command = commands.Paste(self.doc, frag)
        except edits.EditError as exc:
            self._refuse(str(exc))
            return []
        self.undo_stack.push(command)
        pasted = list(command.mapping.values())
        self.scene.select_nodes(pasted)
        return pasted

    # ---- reacting to the document ---------------------------------------------------------------------------
    def _doc_changed(self, spec_changed: bool) -> None:
        doc = self.doc
        spec = doc.spec
        # The first sentence only (a preset's notes run long); the whole description is the tooltip.
        first = re.split(r"\.\s+(?=[A-Z])", spec.description, maxsplit=1)[0]
        self.description.setText(f"<b>{spec.name}</b>" + (f" — {first}" if first else ""))
        self.description.setToolTip(spec.description)
        self._show_validation()
        self._show_selected()
        if not spec_changed:
            return
        if doc.valid:
            self._refresh_summary()
            self._edit_timer.start()
        else:
            self._edit_timer.stop()  # invalid specs are never sent

    def _show_validation(self) -> None:
        doc = self.doc
        if doc.error is not None:
            self.problem.setStyleSheet("color: #d0312d; font-weight: bold;")
            self.problem.setText(f"⚠ {doc.error}")
        else:
            self.problem.setStyleSheet("color: #2b7a3d;")
            opaque = Counter(n.params.get("op", "?") for n in doc.spec.nodes if n.type == "onnx_op")
            ops = ", ".join(f"{op} ×{count}" for op, count in sorted(opaque.items()))
            self.problem.setText(
                f"✓ valid: {len(doc.spec.nodes)} nodes, {len(doc.spec.edges)} edges"
                + (f"; {sum(opaque.values())} opaque ONNX ops (no Lumen layer for them): {ops}" if opaque else "")
            )

    def _refuse(self, message: str) -> None:
        self.problem.setStyleSheet("color: #b8590b; font-weight: bold;")
        self.problem.setText(f"✗ {message}")

    def _refresh_summary(self) -> None:
        spec = self.doc.spec
        if spec == self._summary_spec:
            return
        try:
            reports = analyze(spec)
        except SpecError as exc:  # shapes fit but the model cannot be built (e.g. a reserved name)
            self._refuse(str(exc))
            return
        self._summary_spec = spec
        self.table.show_reports(reports)
        total = sum(r.params for r in reports)
        self.total.setText(
            f"Total parameters: <b>{total:,}</b>  ·  input {fmt(spec.input_shape)}  ·  "
            f"output {fmt(self.doc.shapes[spec.output_id])}"
        )

    def _show_selected(self) -> None:
        ids = self.scene.selected_node_ids()
        if len(ids) != 1:
            self.properties.show_node(None)
            return
        node = self.doc.spec.node(ids[0])
        error = self.doc.error.reason if self.doc.error and self.doc.error.node == node.id else None
        self.properties.show_node(node, self.doc.shapes.get(node.id), error)

    def _announce_edit(self) -> None:
        if self.doc.valid:
            self.spec_edited.emit(self.doc.spec)
