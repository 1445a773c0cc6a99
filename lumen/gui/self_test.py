"""``main.py --self-test [PRESET]``: the window proves it works for one preset, as a user would use it.

Opens the window (offscreen), loads the preset (default ``lenet5``), trains a few small batches, then shows
every viewer tab and monitor view that applies in turn — during training and after it — waits for each to
draw a frame of this model, and exports each as a PNG. It passes (exit 0) only if every view drew and nothing
raised anywhere (a view, a slot, a thread); otherwise it exits 1 with one line naming the view.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QTabWidget, QWidget

from lumen.engine.events import Frame, RunState, StepMetrics
from lumen.engine.explain.jobs import DreamFrame
from lumen.engine.presets import PRESETS
from lumen.gui.errors import install_excepthook
from lumen.gui.main_window import MainWindow
from lumen.gui.views.base import View

TIMEOUT_S = 240  # the whole test; a full-size CNN's first batches take a while on two cores
STEPS = 3  # batches trained before the views are looked at
BATCH = 8  # small batches: the test is about the window, not the model


class SelfTestFailed(Exception):
    pass


class _Test:
    def __init__(self, app: QApplication, window: MainWindow, preset: str, out: Path):
        self.app, self.window, self.preset, self.out = app, window, preset, out
        self.deadline = time.monotonic() + TIMEOUT_S
        self.steps: list[StepMetrics] = []
        self.errors: list[str] = []
        window.bridge.metrics.connect(lambda events: self.steps.extend(e for e in events if isinstance(e, StepMetrics)))
        window.bridge.error.connect(self.errors.append)

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        while not condition():
            if time.monotonic() > self.deadline:
                raise SelfTestFailed(f"timed out waiting for {what}")
            if self.errors:
                raise SelfTestFailed(f"{what}: {self.errors[0]}")
            self.app.processEvents()
            time.sleep(0.01)

    def run(self) -> str:
        window, name = self.window, PRESETS[self.preset].make().name
        window.builder.load_preset(self.preset)
        self.wait(lambda: window.viewer.info is not None and window.viewer.info.name == name, f"{name} to load")
        window.monitor.epochs.setValue(1)
        window.monitor.batch_size.setValue(BATCH)
        window.train_action.trigger()
        self.wait(lambda: len(self.steps) >= 1, "a training step")
        shown = self.show_every_view("while training")
        self.wait(lambda: len(self.steps) >= STEPS or window.state is RunState.FINISHED, f"{STEPS} training steps")
        if window.state in (RunState.TRAINING, RunState.PAUSED):
            window.stop_action.trigger()
        self.wait(lambda: window.state is RunState.FINISHED, "the run to stop")
        shown |= self.show_every_view("after training")
        last = self.steps[-1]
        loss = last.values.get("loss", float("nan"))
        return (
            f"self-test passed: {self.preset} trained {last.step} steps (loss {loss:.4f});"
            f" drew {', '.join(sorted(shown)) or 'no view'}; PNGs in {self.out}"
        )

    def show_every_view(self, when: str) -> set[str]:
        """Click every tab that applies, wait for its view to draw a frame of this model, export it."""
        viewer, monitor = self.window.viewer, self.window.monitor
        shown: set[str] = set()
        if not viewer.tabs.isVisibleTo(viewer):
            if not viewer.not_yet.isVisibleTo(viewer) or not viewer.not_yet.text():
                raise SelfTestFailed(f"{when}: the viewer shows neither a view nor why none applies")
        else:
            for frame_type, view in viewer.views.items():
                if self._tab_shown(viewer.tabs, view):
                    self._look(viewer.tabs, view, frame_type, lambda t=frame_type: viewer.frames.get(t), when)
                    shown.add(view.title)
        self.window.docks["monitor"].raise_()
        for frame_type, view in monitor.views.items():
            if self._tab_shown(monitor.tabs, view):
                self._look(monitor.tabs, view, frame_type, lambda t=frame_type: monitor.frames.get(t), when)
                shown.add(view.title)
        return shown

    @staticmethod
    def _tab_shown(tabs: QTabWidget, view: QWidget) -> bool:
        return tabs.isTabVisible(tabs.indexOf(view))

    def _look(
        self, tabs: QTabWidget, view: View, frame_type: type[Frame], drawn: Callable[[], Frame | None], when: str
    ) -> None:
        tabs.setCurrentWidget(view)
        if frame_type is DreamFrame:  # a job's frames, not a probe's: ask for a short DeepDream
            view.steps.setValue(2)  # type: ignore[attr-defined]
            view.start()  # type: ignore[attr-defined]
        failed = view.error_line().isVisible
        self.wait(
            lambda: (drawn() is not None or failed()) and view.isVisible(), f"the {view.title} view to draw ({when})"
        )
        self.app.processEvents()
        if view.error_line().isVisible():
            raise SelfTestFailed(f"the {view.title} view {view.error_line().text.text()} ({when})")
        path = self.out / f"{self.preset}-{view.title.lower().replace(' ', '_')}-{when.split()[0]}.png"
        if not view.grab().save(str(path)):
            raise SelfTestFailed(f"the {view.title} view could not be exported to {path}")


def run_self_test(app: QApplication, window: MainWindow, preset: str = "lenet5", out: Path | None = None) -> int:
    if preset not in PRESETS:
        print(f"self-test failed: unknown preset {preset!r} (see 'python main.py presets')", file=sys.stderr)
        window.close()
        return 1
    out = out or Path(tempfile.mkdtemp(prefix="lumen-self-test-"))
    raised: list[str] = []
    uninstall = install_excepthook(window, shown=lambda summary, details: raised.append(summary))
    test = _Test(app, window, preset, out)
    try:
        line = test.run()
        app.processEvents()
        if raised:
            raise SelfTestFailed(f"an error reached the window: {raised[0]}")
        print(line)
        return 0
    except Exception as exc:  # any failure is the answer
        print(f"self-test failed ({preset}): {exc}", file=sys.stderr)
        return 1
    finally:
        uninstall()
        window.close()
