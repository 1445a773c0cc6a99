"""``main.py --self-test``: the packaged app proves it works: window up, one training step, one frame."""

from __future__ import annotations

import sys
import time

from PySide6.QtWidgets import QApplication

from engine.probes.feature_maps import FeatureMapFrame
from engine.runtime.events import StepMetrics
from gui.main_window import MainWindow

TIMEOUT_S = 120


def _wait(app: QApplication, condition, what: str, deadline: float) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def run_self_test(app: QApplication, window: MainWindow) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    steps: list[StepMetrics] = []
    window.bridge.metrics.connect(lambda events: steps.extend(e for e in events if isinstance(e, StepMetrics)))
    try:
        _wait(app, lambda: window.viewer.frame is not None, "the model to load", deadline)
        window.monitor.epochs.setValue(1)
        window.train_action.trigger()
        _wait(app, lambda: bool(steps), "a training step", deadline)
        window.pause_action.trigger()
        view = window.viewer.views[FeatureMapFrame]
        _wait(
            app,
            lambda: view.frame is not None and view.frame.step >= 1 and view.layer_views,
            "a feature-map frame",
            deadline,
        )
        frame = view.frame
        image = view.layer_views[frame.layers[0].node].image.image
        if image is None or image.shape != frame.layers[0].mosaic.shape:
            raise RuntimeError("the feature-map image was not rendered")
        print(
            f"self-test passed: step {steps[0].step} loss {steps[0].values['loss']:.4f}; rendered "
            f"{len(frame.layers)} feature-map layers ({', '.join(m.node for m in frame.layers)})"
        )
        return 0
    except Exception as exc:  # any failure is the answer
        print(f"self-test failed: {exc}", file=sys.stderr)
        return 1
    finally:
        window.close()
