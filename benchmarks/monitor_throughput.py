"""Training throughput with the monitor and every live view attached, against a bare PyTorch loop, side by side.

One process, one real window (offscreen unless QT_QPA_PLATFORM says otherwise). The window trains a preset
(``--preset``, LeNet-5 on the bundled MNIST by default) on its own data through the worker (monitor curves and
every probe and view that applies to the model: for LeNet-5 gradient norms, histograms, feature maps, filters,
attribution; for a recurrent model the sequence view); a bare loop trains the same model on the same data, batch
size and torch thread count in the main thread. They alternate in windows of ``--window`` seconds (the GUI run
is paused while the bare loop runs, and the other way round), so a change in machine load hits both alike; the
ratio of each pair is reported (median, min, max). Measured twice: on a fresh monitor, and after ``--prefill``
steps of metrics (default 50,000) have been put into the monitor's plots.

    QT_QPA_PLATFORM=offscreen python benchmarks/monitor_throughput.py [--pairs 5] [--window 4] [--warmup 2] \
        [--live-rate "10 frames/s"] [--preset lstm_many_to_one] [--tab Gates|none]
    python benchmarks/monitor_throughput.py --rss-steps 20000 [--preset lenet5]   # RSS growth instead

Goal: ratio ≥ 0.9 at both points; RSS growth < 50 MB over 20,000 steps with live views on.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LUMEN_DATA_DIR", tempfile.mkdtemp(prefix="lumen-bench-"))  # runs recorded, not kept

import torch
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from lumen.engine.events import RunState, StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.training.fit import load_run_data, plan_run
from lumen.engine.training.loop import TrainConfig, Training
from lumen.gui.app import configure_pyqtgraph
from lumen.gui.main_window import MainWindow, _training_threads
from lumen.gui.panes.monitor import DEFAULT_LIVE_RATE, LIVE_RATES


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Live:
    def __init__(self, app: QApplication, window: MainWindow):
        self.app, self.window, self.step = app, window, 0
        window.bridge.metrics.connect(self._metrics)

    def _metrics(self, events: list) -> None:
        steps = [e.step for e in events if isinstance(e, StepMetrics)]
        if steps:
            self.step = steps[-1]

    def pump(self, seconds: float) -> None:
        """Run Qt's own event loop for ``seconds``, as the app does: it waits in C++ without the GIL. (A Python
        loop of ``processEvents()`` and short sleeps takes the GIL back a thousand times a second and slows the
        training thread by itself.)"""
        loop = QEventLoop()
        QTimer.singleShot(max(1, round(seconds * 1000)), loop.quit)
        loop.exec()

    def wait_state(self, state: RunState) -> None:
        while self.window.state is not state:
            self.pump(0.01)

    def window_rate(self, seconds: float) -> float:
        """Resume, count steps (as the GUI receives them) over ``seconds``, pause again."""
        self.window.bridge.worker.resume()
        self.wait_state(RunState.TRAINING)
        self.pump(0.3)  # settle: the first flush after a resume
        first, began = self.step, time.perf_counter()
        self.pump(seconds)
        rate = (self.step - first) / (time.perf_counter() - began)
        self.window.bridge.worker.pause()
        self.wait_state(RunState.PAUSED)
        return rate


def bare_rate(steps, seconds: float) -> float:
    began, count = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        if isinstance(next(steps), StepMetrics):
            count += 1
    return count / (time.perf_counter() - began)


def prefill(window: MainWindow, count: int) -> None:
    events = [
        StepMetrics(i, count, 1, {"loss": 1.0 / i, "accuracy": min(1.0, i / count)}, 1.0) for i in range(1, count + 1)
    ]
    window.monitor.add_metrics(events)
    window.monitor.redraw()


def measure(live: Live, bare_steps, pairs: int, seconds: float, warmup: int = 0) -> list[float]:
    """``pairs`` ratios of live to bare; the first ``warmup`` pairs are shown but not counted (a process's first
    seconds of training pay one-off costs: lazy imports, the allocator, the first frames of every view)."""
    ratios = []
    for index in range(warmup + pairs):
        gui = live.window_rate(seconds)
        bare = bare_rate(bare_steps, seconds)
        counted = index >= warmup
        if counted:
            ratios.append(gui / bare)
        note = "" if counted else "   (warm-up, not counted)"
        print(f"  live {gui:6.1f} steps/s   bare {bare:6.1f} steps/s   ratio {gui / bare:.2f}{note}", flush=True)
    return ratios


def open_window(preset: str) -> tuple[QApplication, MainWindow]:
    configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv)
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.resize(1600, 1000)
    window.show()
    window.builder.load_preset(preset)
    name = get_preset(preset).name
    while window.viewer.info is None or window.viewer.info.name != name:
        app.processEvents()
    return app, window


def throughput(args: argparse.Namespace) -> None:
    app, window = open_window(args.preset)
    live = Live(app, window)
    threads = _training_threads()
    print(f"platform {app.platformName()}, {os.cpu_count()} cores, torch threads {threads}, torch {torch.__version__}")
    window.docks["monitor"].raise_()
    window.monitor.epochs.setValue(1000)
    window.monitor.live_rate.setCurrentText(args.live_rate)
    if args.tab == "none":  # no viewer: its probes are not run (what the monitor alone costs)
        window.docks["viewer"].hide()
    elif args.tab:
        titles = [window.viewer.tabs.tabText(i) for i in range(window.viewer.tabs.count())]
        window.viewer.tabs.setCurrentIndex(titles.index(args.tab))
    tab = "none" if args.tab == "none" else window.viewer.tabs.tabText(window.viewer.tabs.currentIndex())
    print(f"{args.preset}; live views: {window.monitor.live_rate.currentText()}; viewer tab: {tab}")
    window.train_action.trigger()
    while live.step == 0:
        live.pump(0.01)
    window.bridge.worker.pause()
    live.wait_state(RunState.PAUSED)

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = window.monitor.config()
    spec = get_preset(args.preset)
    data, preferred = load_run_data(spec, None)
    plan = plan_run(spec, data, preferred=preferred)  # the model fitted to its data, as the window trains it
    bare = Training(
        build_model(plan.spec),
        data,
        TrainConfig(epochs=1000, lr=config.lr, batch_size=config.batch_size, seed=1, device="cpu"),
        plan.objective,
    ).steps()
    print("fresh monitor:")
    fresh = measure(live, bare, args.pairs, args.window, warmup=args.warmup)
    prefill(window, args.prefill)
    print(f"after {args.prefill:,} steps of metrics in the monitor:")
    filled = measure(live, bare, args.pairs, args.window)
    window.close()
    for name, ratios in (("fresh", fresh), (f"after {args.prefill:,}", filled)):
        print(
            f"ratio {name}: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); "
            f"goal ≥ 0.9 {'met' if statistics.median(ratios) >= 0.9 else 'NOT met'}"
        )


def rss_growth(args: argparse.Namespace) -> None:
    app, window = open_window(args.preset)
    live = Live(app, window)
    window.monitor.epochs.setValue(1000)
    window.monitor.batch_size.setValue(args.batch_size)
    window.train_action.trigger()
    while live.step < 200:  # warm-up: allocator, first frames, the run store
        live.pump(0.05)
    start_step, start = live.step, rss_mb()
    marks = []
    while live.step < start_step + args.rss_steps:
        live.pump(1.0)
        marks.append((live.step - start_step, rss_mb()))
        if len(marks) % 30 == 0:
            print(f"  step +{marks[-1][0]:6d}  RSS {marks[-1][1]:7.1f} MB", flush=True)
    grown = rss_mb() - start
    window.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.preset}, batch {args.batch_size}: RSS {start:.1f} MB after warm-up, +{grown:.1f} MB over "
        f"{live.step - start_step:,} steps (peak {peak:.0f} MB); goal < 50 MB: {'met' if grown < 50 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--window", type=float, default=4.0, help="seconds per live or bare window")
    parser.add_argument("--prefill", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=2, help="pairs measured first and not counted")
    parser.add_argument("--rss-steps", type=int, default=0, help="measure RSS growth over this many steps instead")
    parser.add_argument("--preset", default="lenet5")
    parser.add_argument("--tab", default="", help="the viewer's tab to show while measuring ('none': no viewer)")
    parser.add_argument("--live-rate", default=DEFAULT_LIVE_RATE, choices=list(LIVE_RATES), help="the monitor's")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if args.rss_steps:
        rss_growth(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
