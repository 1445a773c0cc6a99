"""The property editor: the selected node's id and parameters, one editor per parameter domain
(``engine.layers.param_domains``). It only reports edits; the pane makes them undoable commands."""

from __future__ import annotations

import json
import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget

from lumen.engine.layers import LAYERS, param_domains
from lumen.engine.spec.model_spec import Node
from lumen.engine.spec.shapes import fmt

SPIN_MAX = 1_000_000


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def parse_value(text: str, domain: str) -> Any:
    """Text typed into a field → a JSON value; ValueError with a readable message if it is none."""
    text = text.strip()
    if text == "":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if domain in ("int_or_same", "pair_or_same") and text.strip("\"'") == "same":
        return "same"
    if domain in ("shape", "int_or_pair", "nonneg_or_pair", "pair_or_same") or "," in text:
        # "5, 3", "[5, 3]", "5×3" and "5x3" all mean [5, 3]
        parts = [p.strip() for p in re.split(r",|×|(?<=\d)\s*x(?=\s*\d)", text.strip("[]() "))]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{text!r} is not a list of whole numbers") from None
        return numbers if len(numbers) > 1 or domain == "shape" else numbers[0]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a plain word, e.g. a choice


class PropertyEditor(QWidget):
    param_edited = Signal(str, str, object)  # node id, parameter, value
    rename_requested = Signal(str, str)  # old id, new id
    problem = Signal(str)  # text that could not be read as a value

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.node: Node | None = None
        self.editors: dict[str, QWidget] = {}
        self.id_edit: QLineEdit | None = None
        self._form_host: QWidget | None = None
        self.heading = QLabel("Select a node to edit it.", wordWrap=True)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.heading)
        self._layout.addStretch(1)

    def show_node(self, node: Node | None, shape=None, error: str | None = None) -> None:
        focused = next((k for k, w in self.editors.items() if w.hasFocus()), None)
        if self._form_host is not None:
            self._form_host.hide()
            self._form_host.deleteLater()  # not now: its editor may be the one whose signal brought us here
        self._form_host, self.editors, self.id_edit, self.node = None, {}, None, node
        if node is None:
            self.heading.setText("Select a node to edit it.")
            return
        layer = LAYERS.get(node.type)
        text = f"<b>{node.type}</b>" + (f" — {layer.description}" if layer else "")
        text += f"<br>output {fmt(shape)}" if shape else ""
        if error:
            text += f"<br><span style='color:#d0312d'><b>{error}</b></span>"
        self.heading.setText(text)
        host = QWidget()
        form = QFormLayout(host)
        form.setContentsMargins(0, 4, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.id_edit = QLineEdit(node.id)
        self.id_edit.setCursorPosition(0)  # a long dotted id shows its start
        self.id_edit.editingFinished.connect(self._rename)
        form.addRow("id", self.id_edit)
        if layer is not None:
            domains = param_domains(layer)
            for key, default in layer.defaults.items():
                value = node.params.get(key, default)
                editor = self._editor(key, domains[key], value, default)
                editor.setToolTip(f"{key}: {domains[key]}" + ("" if default is None else f" (default {default})"))
                form.addRow(key, editor)
                self.editors[key] = editor
        self._layout.insertWidget(1, host)
        self._form_host = host
        if focused in self.editors:
            self.editors[focused].setFocus()

    def _editor(self, key: str, domain: str, value: Any, default: Any) -> QWidget:
        def emit(v: Any, key: str = key) -> None:
            if self.node:
                self.param_edited.emit(self.node.id, key, v)

        if domain == "bool" and isinstance(value, bool):
            box = QCheckBox()
            box.setChecked(value)
            box.toggled.connect(emit)
            return box
        if domain.startswith("choice:"):
            combo = QComboBox()
            combo.addItems(domain[len("choice:") :].split("|"))
            combo.setCurrentText(str(value))
            combo.activated.connect(lambda _, c=combo: emit(c.currentText()))
            return combo
        if domain in ("posint", "nonneg") and (value is None or isinstance(value, int)):
            # The lowest value stands for "unset" (None) where the default allows it.
            low = (1 if domain == "posint" else 0) - (1 if default is None else 0)
            spin = QSpinBox(minimum=low, maximum=SPIN_MAX, keyboardTracking=False)
            if default is None:
                spin.setSpecialValueText("—")
            spin.setValue(low if value is None else value)
            spin.valueChanged.connect(lambda v, low=low, none=default is None: emit(None if none and v == low else v))
            return spin
        line = QLineEdit(format_value(value))
        line.setPlaceholderText("default" if default is None else format_value(default))

        def commit(line: QLineEdit = line, domain: str = domain, current: Any = value) -> None:
            try:
                parsed = parse_value(line.text(), domain)
            except ValueError as exc:
                self.problem.emit(f"{key}: {exc}")
                line.setText(format_value(current))
                return
            if parsed != current:
                emit(parsed)

        line.editingFinished.connect(commit)
        return line

    def _rename(self) -> None:
        if self.node and self.id_edit and self.id_edit.text().strip() != self.node.id:
            self.rename_requested.emit(self.node.id, self.id_edit.text().strip())
