"""Helpers shared by several test modules (test modules never import each other)."""

from __future__ import annotations

import importlib
import queue
import struct
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "lumen" / "resources" / "samples"


def write_png(path: Path, width: int, height: int, rows_per_chunk: int = 500) -> None:
    """A real greyscale PNG of any size, streamed so even 20,000 × 20,000 costs little memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(1)
    row = b"\x00" + b"\xff" * width  # filter byte + white pixels
    idat = b"".join(
        compressor.compress(row * min(rows_per_chunk, height - y)) for y in range(0, height, rows_per_chunk)
    )
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def one_line_error(result, *messages: str, status: int = 1) -> None:
    """A CLI refusal as a user meets it (``result``: a finished ``subprocess.run`` of main.py): exit status
    ``status`` (argparse's usage errors exit 2), one line on stderr that starts ``lumen: `` and names every one of
    ``messages``, and no traceback, torch stack frames or warnings."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("lumen: "), result.stderr
    for noise in ("Traceback", "frame #", "Warning"):
        assert noise not in result.stderr, result.stderr
    for message in messages:
        assert message in result.stderr, result.stderr


def all_presets() -> dict:
    """lumen.engine.presets.PRESETS and every list or dict of presets in engine/presets/*.py."""
    from lumen.engine.presets.preset import Preset

    found: dict[str, Preset] = {}
    for path in sorted((ROOT / "lumen" / "engine" / "presets").glob("*.py")):
        name = "lumen.engine.presets" if path.stem == "__init__" else f"lumen.engine.presets.{path.stem}"
        module = importlib.import_module(name)
        for value in vars(module).values():
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
            for item in items:
                if isinstance(item, Preset):
                    found.setdefault(item.name, item)
    return found


class Recorder:
    """An engine worker's sink: every event, waited for by predicate."""

    def __init__(self):
        self.events = queue.Queue()
        self.seen = []

    def __call__(self, event):
        self.events.put(event)

    def wait_for(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no matching event within {timeout}s; last: {self.seen[-3:]}")

    def drain(self, settle=0.3):
        time.sleep(settle)
        while not self.events.empty():
            self.seen.append(self.events.get())
        return self.seen


def state_is(state):
    """A Recorder predicate: a StatusChanged to ``state``."""
    from lumen.engine.events import StatusChanged

    return lambda e: isinstance(e, StatusChanged) and e.state is state


def relu_chain(n: int, shape: tuple[int, ...] = (1, 8, 8)) -> dict:
    """A spec dict of an input followed by ``n`` relu nodes in a chain (for size limits and linear time)."""
    nodes = [{"id": "input", "type": "input", "params": {"shape": list(shape)}}]
    nodes += [{"id": f"relu{i}", "type": "relu"} for i in range(n)]
    return {
        "format": "lumen.model",
        "version": 1,
        "name": "chain",
        "nodes": nodes,
        "edges": [[a["id"], b["id"]] for a, b in zip(nodes, nodes[1:])],
    }


def drop(widget, *paths):
    """Drop files on ``widget`` as a file manager would; returns the drop event."""
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(widget.rect().center(), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(widget.rect().center()), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(widget, event)
    return event


def click(qtbot, window, action):
    """Click a main-window action's button on the training toolbar, as a person would."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QToolBar

    toolbar = window.findChild(QToolBar, "training_toolbar")
    qtbot.mouseClick(toolbar.widgetForAction(action), Qt.MouseButton.LeftButton)


def ask_too_much_when(model, when):
    """Make ``model``'s forward pass ask for 40 TB whenever ``when(model)`` is true: a real allocation that the CPU
    allocator refuses, so the out-of-memory paths are met as a user would meet them."""
    import torch

    forward = model.forward

    def forward_that_may_ask_too_much(x):
        if when(model):
            torch.empty(10**13)
        return forward(x)

    model.forward = forward_that_may_ask_too_much
    return model


def load_preset(qtbot, window, preset: str, frame_type=None, dataset: str | None = None, ready=None):
    """Load ``preset`` in the real window as a user does (the monitor's *Data* box first, when ``dataset`` is
    given) and wait until the viewer has it; with ``frame_type``, raise that view's tab and wait for a frame
    (one that ``ready(frame)`` accepts, when given). Returns the view, or None without ``frame_type``."""
    from lumen.engine.presets import PRESETS

    name = PRESETS[preset].make().name
    if dataset is not None:
        window.monitor.dataset.setCurrentText(dataset)
    window.builder.load_preset(preset)
    qtbot.waitUntil(lambda: window.viewer.info is not None and window.viewer.info.name == name, timeout=30_000)
    if frame_type is None:
        return None
    view = window.viewer.views[frame_type]
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and (ready is None or ready(view.frame)), timeout=15_000)
    return view


def lumen(*args, env: dict | None = None, timeout: float = 240):
    """``python main.py ARGS`` as a user runs it, from the repository root, with ``env`` added to the environment;
    the finished ``subprocess.run``, its output as text."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def tiny_imagenet_spec(name: str):
    """A small 3×16×16 model with ImageNet's 1,000 outputs: imported weights named by the ImageNet class list."""
    from lumen.engine.spec.model_spec import ModelSpec

    return ModelSpec.from_dict(
        {
            "format": "lumen.model",
            "version": 1,
            "name": name,
            "nodes": [
                {"id": "input", "type": "input", "params": {"shape": [3, 16, 16]}},
                {"id": "conv", "type": "conv2d", "params": {"out_channels": 4, "kernel_size": 3}},
                {"id": "pool", "type": "global_avgpool"},
                {"id": "fc", "type": "linear", "params": {"out_features": 1000}},
            ],
            "edges": [["input", "conv"], ["conv", "pool"], ["pool", "fc"]],
        }
    )
