"""How late does the GUI thread answer while a model trains with live views on?

A QTimer on the main thread asks to fire every 10 ms; each firing records how much later than asked it
came. The monitor is raised (curves, plus its Gradients tab unless ``--monitor-tab`` says otherwise), so every
view is drawn while training: the viewer's and the monitor's. Measured for an idle window and then while
LeNet-5 trains with live curves and feature maps, with training throughput beside a bare training loop run
in the same process (a ratio, so the machine cancels).

    QT_QPA_PLATFORM=offscreen python benchmarks/ui_latency.py [--seconds 15]

Goal on a 2-core machine: p99 < 50 ms, max < 200 ms while training.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import torch
from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from lumen.engine.data.datasets import load_mnist
from lumen.engine.events import StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.training.loop import TrainConfig, Training
from lumen.gui.app import configure_pyqtgraph
from lumen.gui.main_window import MainWindow, _training_threads

PERIOD_MS = 10


def run_event_loop(seconds: float) -> None:
    """Qt's own event loop for ``seconds``, as the app runs it: it waits in C++ without holding the GIL (a Python
    loop of ``processEvents()`` and sleeps would take the GIL a thousand times a second, slowing training)."""
    loop = QEventLoop()
    QTimer.singleShot(max(1, round(seconds * 1000)), loop.quit)
    loop.exec()


def probe_lateness(app: QApplication, seconds: float) -> np.ndarray:
    """Lateness (ms) of each firing of a 10 ms timer on the GUI thread over ``seconds``."""
    lateness: list[float] = []
    clock = QElapsedTimer()
    timer = QTimer(timerType=Qt.TimerType.PreciseTimer, interval=PERIOD_MS)
    last = [0]

    def tick() -> None:
        now = clock.nsecsElapsed()
        lateness.append(max(0.0, (now - last[0]) / 1e6 - PERIOD_MS))
        last[0] = now

    timer.timeout.connect(tick)
    clock.start()
    timer.start()
    run_event_loop(seconds)
    timer.stop()
    return np.asarray(lateness[1:])


def bare_steps_per_s(seconds: float) -> float:
    """The same training with no GUI: the throughput ceiling, with the GUI's thread count."""
    torch.manual_seed(0)
    model = build_model(get_preset("lenet5"))
    steps = Training(model, load_mnist(), TrainConfig(epochs=100)).steps()
    began, count = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        if isinstance(next(steps), StepMetrics):
            count += 1
    return count / (time.perf_counter() - began)


def report(name: str, lateness: np.ndarray) -> None:
    p50, p99 = np.percentile(lateness, [50, 99])
    print(
        f"{name:<28} firings {len(lateness):5d}  lateness p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"max {lateness.max():6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--monitor-tab",
        default="Gradients",
        help="the monitor is raised with this tab beside the curves (Gradients, Histograms, Runs); 'none': the "
        "builder stays on top as before",
    )
    args = parser.parse_args()
    configure_pyqtgraph()  # as the app does
    app = QApplication(sys.argv)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1600, 1000)
    window.show()
    while window.viewer.frame is None:
        app.processEvents()
    print(
        f"platform {app.platformName()}, {os.cpu_count()} cores, torch threads for training "
        f"{_training_threads()}, torch {torch.__version__}"
    )
    report("idle window", probe_lateness(app, 3.0))

    if args.monitor_tab != "none":  # the curves and one of the monitor's views are drawn while training
        window.docks["monitor"].raise_()
        tabs = window.monitor.tabs
        tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == args.monitor_tab))
    steps: list[StepMetrics] = []
    window.bridge.metrics.connect(lambda events: steps.extend(e for e in events if isinstance(e, StepMetrics)))
    window.monitor.epochs.setValue(1000)
    window.train_action.trigger()
    while not steps:
        app.processEvents()
    first = (steps[-1].step, time.perf_counter())
    lateness = probe_lateness(app, args.seconds)
    live_rate = (steps[-1].step - first[0]) / (time.perf_counter() - first[1])
    received, drawn = window.bridge.frames_received, window.bridge.frames_drawn
    window.close()
    report("training, live views on", lateness)
    print(f"probe frames: {received} built by the engine, {drawn} drawn (the newest of each type wins)")

    torch.set_num_threads(_training_threads())
    bare_rate = bare_steps_per_s(min(args.seconds, 10.0))
    print(
        f"training throughput: {live_rate:.1f} steps/s with live views, {bare_rate:.1f} steps/s bare loop "
        f"(ratio {live_rate / bare_rate:.2f})"
    )
    p99, worst = np.percentile(lateness, 99), lateness.max()
    print(f"goal p99 < 50 ms and max < 200 ms: {'met' if p99 < 50 and worst < 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
