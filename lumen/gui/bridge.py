"""Engine events into Qt signals, coalesced: every light event is kept, only the newest frame of each type.

The engine calls ``_sink`` on its worker thread. It only appends a light event to a list, or replaces the
pending frame of the same type (a dict keyed by frame type), under a lock; a timer on the GUI thread drains
both at most ``RENDER_HZ`` times a second. So however fast the engine and its probes run, the GUI does a
bounded amount of work per second, holds at most one undrawn frame per type, and never draws a stale one.
Frames replayed from a checkpoint (``checkpoint_step`` set) have slots of their own, so a live frame never
pushes out the replayed one the viewer waits for (nor the other way round).

Metrics (``StepMetrics``, ``EpochMetrics``) are handed over in batches at most ``METRICS_HZ`` times a second: a
recurrent preset's batches of ~2 ms make hundreds a second, and each hand-over wakes the monitor (readout, progress,
curves) on the GUI thread, which shares the GIL with training. Every event is kept, in order; any other light event
(a status, an error, a checkpoint list, a new model) takes the metrics waiting before it along at once.
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, QTimer, Signal

from lumen.engine.events import (
    CheckpointList,
    EngineError,
    EpochMetrics,
    Event,
    Frame,
    ModelLoaded,
    StatusChanged,
    StepMetrics,
)
from lumen.engine.runtime.worker import EngineWorker

RENDER_HZ = 30
METRICS_HZ = 10  # batches of metrics a second at most (the curves redraw at 5 Hz: gui.panes.monitor)


class EventBridge(QObject):
    """Events from wherever they are made (``_sink``, any thread) into Qt signals on the GUI thread, coalesced.
    ``EngineBridge`` feeds it from the window's own engine worker; ``gui.watch_bridge.PipeBridge`` from a watched
    script's connection (``lumen.watch``)."""

    metrics = Signal(list)  # StepMetrics and EpochMetrics since the last flush, in order
    frame = Signal(object)  # the newest Frame of one type; the viewer routes it to that type's view
    status = Signal(object)  # StatusChanged
    error = Signal(str)  # EngineError's message
    checkpoints = Signal(object)  # CheckpointList: a run's checkpoint steps
    model_loaded = Signal(object)  # ModelLoaded: what the new model is and which views apply to it
    other = Signal(object)  # any other light event (a subclass's own kinds), in order with the rest

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._urgent = False  # a light event other than metrics waits: hand everything over at the next tick
        self._metrics_at = float("-inf")  # when metrics were last handed over (time.monotonic)
        self._frames: dict[type[Frame], Frame] = {}  # the newest undrawn frame of each type
        self._replays: dict[type[Frame], Frame] = {}  # the same for frames replayed from a checkpoint
        self.frames_received = 0  # engine frames, counted so benchmarks can report how many were coalesced
        self.frames_drawn = 0
        self._timer = QTimer(self)
        self._timer.setInterval(1000 // RENDER_HZ)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _sink(self, event: Event) -> None:  # worker thread
        with self._lock:
            if isinstance(event, Frame):
                slots = self._frames if event.checkpoint_step is None else self._replays
                slots[type(event)] = event  # latest-wins: an undrawn older frame of this type is dropped
                self.frames_received += 1
            else:
                if isinstance(event, ModelLoaded):  # frames still waiting show the last model: never draw them
                    self._frames.clear()
                if not isinstance(event, (StepMetrics, EpochMetrics)):
                    self._urgent = True
                self._events.append(event)

    def pending_frames(self) -> dict[type[Frame], Frame]:
        """A copy of the frames waiting for the next flush (at most one per type)."""
        with self._lock:
            return dict(self._frames)

    def _tick(self) -> None:  # GUI thread, RENDER_HZ times a second
        self.flush(metrics_due=self._urgent or time.monotonic() - self._metrics_at >= 1 / METRICS_HZ)

    def flush(self, metrics_due: bool = True) -> None:  # GUI thread
        """Emit what waits: every frame, and the light events (all of them; only when ``metrics_due`` if they are
        all metrics, else they wait for a later flush)."""
        with self._lock:
            if metrics_due or self._urgent:
                events, self._events, self._urgent = self._events, [], False
            else:
                events = []
            frames, self._frames = self._frames, {}
            replays, self._replays = self._replays, {}
        if events:
            self._metrics_at = time.monotonic()
        metrics: list[Event] = []
        for event in events:
            if not isinstance(event, (StepMetrics, EpochMetrics)):
                if metrics:  # keep the order: curves first, then the status that followed them
                    self.metrics.emit(metrics)
                    metrics = []
                if isinstance(event, StatusChanged):
                    self.status.emit(event)
                elif isinstance(event, CheckpointList):
                    self.checkpoints.emit(event)
                elif isinstance(event, ModelLoaded):
                    self.model_loaded.emit(event)
                elif isinstance(event, EngineError):
                    self.error.emit(event.message)
                else:
                    self.other.emit(event)
            else:
                metrics.append(event)
        if metrics:
            self.metrics.emit(metrics)
        for frame in [*frames.values(), *replays.values()]:
            self.frames_drawn += 1
            self.frame.emit(frame)


class EngineBridge(EventBridge):
    """The window's own engine: an ``EngineWorker`` whose events come through ``_sink``."""

    def __init__(self, parent: QObject | None = None, *, torch_threads: int | None = None, store=None):
        super().__init__(parent)
        self.worker = EngineWorker(self._sink, torch_threads=torch_threads, store=store)  # store: a RunStore factory
        self.worker.start()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop training and join the worker thread; called when the window closes."""
        self._timer.stop()
        return self.worker.shutdown(timeout)
