"""Hundreds of metric events a second reach the GUI thread as a few batches a second, complete and in order; a status
takes the metrics before it along at once; the monitor draws a fast run's epoch points together (a line through them
once they are many), none lost, and keeps its axes cached so curve updates do not repaint them."""

import threading
import time

import pytest
from PySide6.QtCore import Qt

from lumen.engine.events import EpochMetrics, RunState, StatusChanged, StepMetrics
from lumen.gui.bridge import METRICS_HZ, RENDER_HZ, EngineBridge
from lumen.gui.panes.monitor import EPOCH_REDRAW_S, EPOCH_SYMBOLS_UP_TO, MonitorPane


@pytest.fixture
def bridge(qtbot):
    made = EngineBridge(torch_threads=1)
    yield made
    assert made.shutdown()


def test_a_flood_of_metrics_arrives_whole_in_order_and_in_few_batches(qtbot, bridge):
    batches: list[tuple[float, list]] = []
    bridge.metrics.connect(lambda events: batches.append((time.monotonic(), events)))
    total = 1500

    def flood():  # as the worker thread would: 1,500 steps over ~1.5 s, an epoch every 27
        for i in range(1, total + 1):
            bridge._sink(StepMetrics(i, total, 1 + i // 27, {"loss": 1.0 / i, "accuracy": 0.5}, 1000.0))
            if i % 27 == 0:
                bridge._sink(EpochMetrics(i // 27, i, {"loss": 0.5}, {"loss": 0.4}))
            time.sleep(0.001)

    thread = threading.Thread(target=flood, name="toy-flood")
    began = time.monotonic()
    thread.start()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=60_000)
    qtbot.waitUntil(lambda: sum(isinstance(e, StepMetrics) for _, b in batches for e in b) == total, timeout=5_000)
    seconds = time.monotonic() - began
    events = [e for _, batch in batches for e in batch]
    assert [e.step for e in events if isinstance(e, StepMetrics)] == list(range(1, total + 1))  # none lost, in order
    assert [e.epoch for e in events if isinstance(e, EpochMetrics)] == list(range(1, total // 27 + 1))
    assert events.index(next(e for e in events if isinstance(e, EpochMetrics))) == 27  # after its last step
    assert len(batches) <= seconds * METRICS_HZ + 2  # a batch per 1/METRICS_HZ s, not per event (nor per tick)
    assert METRICS_HZ < RENDER_HZ
    gaps = [b[0] - a[0] for a, b in zip(batches, batches[1:], strict=False)]
    assert min(gaps) >= 1 / METRICS_HZ - 0.02


def test_a_status_takes_the_metrics_before_it_along_at_once(qtbot, bridge):
    log: list[object] = []
    bridge.metrics.connect(lambda events: log.extend(events))
    bridge.status.connect(log.append)
    bridge._sink(StepMetrics(0, 10, 1, {"loss": 1.1}, 100.0))
    bridge.flush()  # just handed over: metrics alone would now wait a tenth of a second
    bridge._sink(StepMetrics(1, 10, 1, {"loss": 1.0}, 100.0))
    bridge._sink(StepMetrics(2, 10, 1, {"loss": 0.9}, 100.0))
    paused = StatusChanged(RunState.PAUSED, "paused")
    bridge._sink(paused)
    bridge._sink(StepMetrics(3, 10, 1, {"loss": 0.8}, 100.0))
    bridge._tick()  # the next tick, however soon
    assert [getattr(e, "step", e) for e in log] == [0, 1, 2, paused, 3]


def test_metrics_alone_wait_for_their_batch_but_flush_hands_everything_over(qtbot, bridge):
    seen: list[list] = []
    bridge.metrics.connect(seen.append)
    bridge._sink(StepMetrics(1, 10, 1, {"loss": 1.0}, 100.0))
    bridge._tick()  # the first metrics in a while: at once
    bridge._sink(StepMetrics(2, 10, 1, {"loss": 0.9}, 100.0))
    bridge._tick()  # less than 1/METRICS_HZ since the last hand-over: kept for the next batch
    assert [[e.step for e in batch] for batch in seen] == [[1]]
    bridge.flush()
    assert [[e.step for e in batch] for batch in seen] == [[1], [2]]


def test_a_fast_runs_epoch_points_are_drawn_together_and_all_of_them(qtbot):
    monitor = MonitorPane()
    qtbot.addWidget(monitor)
    monitor.resize(900, 700)
    monitor.show()
    qtbot.waitExposed(monitor)
    val = monitor.plots["loss"].val
    handed: list[int] = []
    set_data = val.setData
    val.setData = lambda *args, **kw: (handed.append(len(args[0]) if args else 0), set_data(*args, **kw))[1]
    began, epoch = time.monotonic(), 0
    while time.monotonic() - began < 2.0:  # an epoch of 27 steps every 50 ms, as recall's in the window
        epoch += 1
        steps = [
            StepMetrics(s, 27_000, epoch, {"loss": 1.0 / s}, 500.0) for s in range(27 * epoch - 26, 27 * epoch + 1)
        ]
        monitor.add_metrics([*steps, EpochMetrics(epoch, 27 * epoch, {"loss": 0.5}, {"loss": 1.0 / epoch})])
        qtbot.wait(50)
    qtbot.waitUntil(lambda: handed and handed[-1] == epoch, timeout=3_000)  # every epoch's point, in the end
    assert list(val.getOriginalDataset()[1]) == pytest.approx([1.0 / e for e in range(1, epoch + 1)])
    assert epoch >= 20
    assert len(handed) <= (time.monotonic() - began) / EPOCH_REDRAW_S + 2  # not once per epoch


def test_the_curves_axes_are_cached_so_a_curve_update_does_not_repaint_them(qtbot):
    from PySide6.QtWidgets import QGraphicsItem

    monitor = MonitorPane()
    qtbot.addWidget(monitor)
    monitor.add_metrics([StepMetrics(1, 10, 1, {"loss": 1.0, "accuracy": 0.5}, 100.0)])
    for plot in monitor.plots.values():
        for side in ("left", "bottom"):
            assert plot.widget.getAxis(side).cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache


def test_many_epoch_points_are_joined_by_a_line_instead_of_symbols_and_all_kept(qtbot):
    monitor = MonitorPane()
    qtbot.addWidget(monitor)
    plot = monitor._plot("loss")
    few = [EpochMetrics(e, 27 * e, {"loss": 0.5}, {"loss": 1.0 / e}) for e in range(1, EPOCH_SYMBOLS_UP_TO + 1)]
    monitor.add_metrics(few)
    monitor.redraw()
    assert plot.val.opts["symbol"] == "o" and plot.train.opts["symbol"] == "s"
    more = [EpochMetrics(e, 27 * e, {"loss": 0.5}, {"loss": 1.0 / e}) for e in range(EPOCH_SYMBOLS_UP_TO + 1, 301)]
    monitor.add_metrics(more)
    monitor.redraw()
    assert plot.val.opts["symbol"] is None and plot.train.opts["symbol"] is None
    assert plot.train.opts["pen"].style() != Qt.PenStyle.NoPen  # the epoch means as a line
    assert list(plot.val.getOriginalDataset()[0]) == [27 * e for e in range(1, 301)]  # every point still drawn
    monitor.clear()
    assert plot.val.opts["symbol"] == "o" and plot.train.opts["symbol"] == "s"
