"""``lumen.watch``: a Lumen window on a training loop Lumen does not run, from the script's side.

The script keeps its model, data and loop; ``w.step(loss=..., accuracy=...)`` after each batch hands the named values
to a ``WatchedSession`` (``lumen.engine.runtime.watched``), which runs the probes that are due in the script's own
thread, at a small budget. Everything made goes to a ``_Link``: one daemon thread that owns the connection to the
window and the run store. The script's thread only appends a light event to a list or replaces the pending frame of
its type (latest-wins) under a lock; the link thread sends what waits every ``SEND_INTERVAL_S`` (a frame the window
has not taken yet is replaced by a newer one, never queued), records the metrics into the run store, and reads the
window's commands, which the script's thread obeys at its next check.

The window is its own process (``python -m lumen.watching.window``, started with ``subprocess`` in a new session, so
a Ctrl-C in the script's terminal does not reach it): the script's loop is never slowed by painting, and either can
crash or end without the other. The window listens on a local socket (a Unix socket in a private temporary folder;
a named pipe on Windows) with a random key it reads from its stdin, and accepts one connection, the script's:
nothing listens beyond the machine, or after that. Closing the window makes ``w.step`` do nothing (said once on
stderr); the script ending leaves the window open (it says so), and *Save run…* there writes a normal run folder
from the last weights it received. Nothing here imports Qt.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

import lumen
from lumen.engine.errors import LumenError
from lumen.engine.events import EpochMetrics, Event, Frame, StepMetrics
from lumen.engine.io.runs import check_run_dir
from lumen.engine.io.store import RunRecorder, RunStore
from lumen.engine.runtime.watched import (
    WATCHED_DATA,
    ScriptEnded,
    WatchedSession,
    WeightsSnapshot,
)

SEND_INTERVAL_S = 0.1  # the link thread sends what waits this often (the window draws curves at 5 Hz)
CHECK_S = 0.1  # the script's thread reads the window's commands this often
WEIGHTS_EVERY_S = 10.0  # the window gets the weights this often (for Save run… after the script ends)...
WEIGHTS_BUDGET = 0.005  # ...or less often, so copying them takes at most this share of the loop
MAX_WAITING_METRICS = 200_000  # a window that stopped reading: the oldest metrics beyond this are dropped
START_TIMEOUT_S = 60.0  # how long the link waits for the window to listen
CLOSE_TIMEOUT_S = 30.0  # how long ``close`` waits for the last events to reach the window and the store


def _say(message: str) -> None:
    print(f"lumen.watch: {message}", file=sys.stderr, flush=True)


def _launch_window(name: str) -> tuple[subprocess.Popen, Connection]:
    """Start the window process and connect to it; ``LumenError`` if it does not start."""
    key = os.urandom(32)
    root = str(Path(lumen.__file__).resolve().parent.parent)  # so the window imports this same Lumen
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    # The window's own messages go to a file of its own (unlinked: only the two processes hold it), not to the
    # script's stderr: a window that outlives the script must not hold the script's pipes open (`python train.py |
    # tee log` would wait for the window to close). If the window does not start, what it said goes into the error.
    said = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "lumen.watching.window", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=said,
        env=env,
        start_new_session=True,  # a Ctrl-C meant for the script leaves the window open
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(key.hex().encode() + b"\n")
        process.stdin.close()
        line = process.stdout.readline()  # the address, once the window listens
    except OSError:
        line = b""
    process.stdout.close()
    if not line:
        code = process.wait(timeout=START_TIMEOUT_S)
        said.seek(0)
        last = [text for text in said.read().decode(errors="replace").splitlines() if text.strip()][-1:]
        raise LumenError(
            f"the window did not start (exit status {code}{': ' + last[0][:300] if last else ''}; is there a "
            "display? window=False records the run without one)"
        )
    said.close()
    address = json.loads(line)
    return process, Client(address, family=None, authkey=key)


class _Link(threading.Thread):
    """The connection to the window and the run store, on one thread; ``put`` is all the script's thread does."""

    def __init__(self, *, window: str | None, record: Callable[[], RunRecorder] | None):
        super().__init__(name="lumen-watch", daemon=True)
        self._window_name = window
        self._make_recorder = record
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._events: list[Any] = []  # light events and weights, in order
        self._frames: dict[type, Frame] = {}  # the newest frame of each type not sent yet
        self._final: tuple[ScriptEnded, str, WeightsSnapshot | None] | None = None
        self.commands: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.process: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.connected = threading.Event()  # the window took the connection (or will never)
        self.window_gone = False  # the window was closed or could not start: nothing is sent any more
        self.gone_reason = ""
        self.recording = record is not None
        self.recorder: RunRecorder | None = None
        self.record_error = ""
        self.frames_sent = self.frames_dropped = 0

    # ---- the script's thread -------------------------------------------------------------------------------
    def put(self, event: Any) -> None:
        if isinstance(event, Frame):
            if self.window_gone:
                return
            with self._lock:
                if type(event) in self._frames:
                    self.frames_dropped += 1
                self._frames[type(event)] = event  # latest-wins: the window only ever draws the newest
            return
        if self.window_gone and not self.recording:
            return
        with self._lock:
            self._events.append(event)
            if len(self._events) > MAX_WAITING_METRICS:
                del self._events[: len(self._events) - MAX_WAITING_METRICS]

    def finish(self, ended: ScriptEnded, status: str, weights: WeightsSnapshot | None, timeout: float) -> None:
        """The last events, the end, the run store's row closed; waits for it (at most ``timeout``)."""
        with self._lock:
            self._final = (ended, status, weights)
        self._wake.set()
        self.join(timeout)

    # ---- the link's thread ------------------------------------------------------------------------------------
    def run(self) -> None:
        if self._window_name is not None:
            try:
                self.process, self.connection = _launch_window(self._window_name)
            except (LumenError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                self._gone(str(exc) if isinstance(exc, LumenError) else f"the window did not start: {exc}")
        else:
            self.window_gone = True
        self.connected.set()
        if self._make_recorder is not None:
            try:
                self.recorder = self._make_recorder()
            except Exception as exc:  # a store that cannot be opened: the run goes on unrecorded
                self._record_failed(exc)
        while True:
            self._wake.wait(SEND_INTERVAL_S)
            self._wake.clear()
            with self._lock:
                events, self._events = self._events, []
                frames, self._frames = list(self._frames.values()), {}
                final = self._final
            self._record(events)
            self._send(events, frames)
            self._receive()
            if final is not None:
                self._end(*final)
                return

    def _send(self, events: list[Any], frames: list[Frame]) -> None:
        connection = self.connection
        if connection is None or self.window_gone:
            return
        try:
            if events:
                connection.send(events)
            for frame in frames:  # one message each: a frame made meanwhile replaces the next, not this one
                connection.send([frame])
                self.frames_sent += 1
        except (OSError, ValueError):
            self._gone("the window was closed")

    def _receive(self) -> None:
        connection = self.connection
        if connection is None or self.window_gone:
            return
        try:
            while connection.poll(0):
                self.commands.put(connection.recv())
        except (OSError, EOFError, ValueError):
            self._gone("the window was closed")

    def _gone(self, reason: str) -> None:
        if not self.window_gone:
            self.window_gone, self.gone_reason = True, reason
        if self.connection is not None:
            try:
                self.connection.close()
            except OSError:
                pass
        self.connection = None

    def _record(self, events: list[Any]) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        try:
            for event in events:
                if isinstance(event, (StepMetrics, EpochMetrics)):
                    recorder.record(event)
        except Exception as exc:
            self._record_failed(exc)

    def _record_failed(self, exc: Exception) -> None:
        self.recorder = None
        self.record_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LumenError) else str(exc)

    def _end(self, ended: ScriptEnded, status: str, weights: WeightsSnapshot | None) -> None:
        if weights is not None:
            self._send([weights], [])
        self._send([ended], [])
        self._gone(self.gone_reason or "the script ended")
        recorder = self.recorder
        if recorder is not None:
            try:
                if weights is not None:
                    import torch

                    tensors = {f"model/{k}": torch.from_numpy(v) for k, v in weights.tensors.items()}
                    recorder.checkpoint(tensors, {"step": weights.step, "watched": True})
                recorder.close(status, ended.message)
                recorder.store.close()
            except Exception as exc:
                self._record_failed(exc)


class Watch:
    """What ``lumen.watch`` returns: ``step(**values)`` after each batch; ``close()`` (or a ``with`` block) at the end.

    ``run_id`` is the run store's id of the recorded run (None when not recorded); ``out`` the run folder written
    when it closes (None: none)."""

    def __init__(
        self,
        model: nn.Module,
        probe_input: Any = None,
        classes: Any = None,
        *,
        window: bool = True,
        out: str | os.PathLike[str] | None = None,
        name: str | None = None,
        record: bool | None = None,
    ):
        self.out = Path(out) if out is not None else None
        if self.out is not None:
            check_run_dir(self.out, force=True)  # a folder that cannot hold the run is refused now, not at the end
        self._session = WatchedSession(model, self._put, probe_input, classes=classes, name=name, frames=window)
        recorded = (not window or out is not None) if record is None else record
        factory = self._recorder_factory() if recorded else None
        self._window = window
        self._link = _Link(window=self._session.name if window else None, record=factory)
        self._closed = False
        self._said_gone = self._said_record = False
        self._next_check = 0.0
        self._weights_due = 0.0  # the first check sends them: a killed script leaves the window something to save
        self._weights_every = WEIGHTS_EVERY_S
        self._session.start()  # the first events wait in the link until the window connects
        self._link.start()
        self.status = "watching"
        _open.add(self)

    # ---- the user's calls ---------------------------------------------------------------------------------
    def step(self, **values: Any) -> None:
        """One step of the loop with its named values (``loss=0.31, accuracy=0.92``: floats, or 0-d tensors)."""
        if self._closed:
            return
        link = self._link
        if link.window_gone and not self._said_gone and self._window:
            self._say_gone()
        if link.window_gone and not link.recording:
            return
        try:
            named = {name: _float(value) for name, value in values.items()}
        except (TypeError, ValueError) as exc:
            bad = next(n for n, v in values.items() if not _number(v))
            raise TypeError(f"lumen.watch: step({bad}=...) must be a number, not {type(values[bad]).__name__}") from exc
        self._session.step(named)
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + CHECK_S
            self._check(now)

    def epoch(self, **validation: Any) -> None:
        """The end of an epoch: the monitor draws the mean of its steps' values, and beside them the ``validation``
        values you measured, named like the steps' (``w.epoch(loss=val_loss, accuracy=val_acc)``); optional."""
        if self._closed:
            return
        if self._link.window_gone and not self._link.recording:
            return
        try:
            named = {name: _float(value) for name, value in validation.items()}
        except (TypeError, ValueError) as exc:
            bad = next(n for n, v in validation.items() if not _number(v))
            raise TypeError(
                f"lumen.watch: epoch({bad}=...) must be a number, not {type(validation[bad]).__name__}"
            ) from exc
        self._session.end_epoch(named)

    def close(self, status: str = "finished", message: str | None = None) -> None:
        """The end: the last frames and weights to the window (which stays open), the run store's row closed, and
        the run folder ``out`` written. Called by the end of a ``with`` block and when the process exits."""
        if self._closed:
            return
        self._closed = True
        _open.discard(self)
        session = self._session
        said = message or f"the script {'ended' if status == 'finished' else status} at step {session.step_count}"
        ended = session.finish(said)
        link = self._link
        wanted = not link.window_gone or link.recording
        weights = session.snapshot() if wanted else None
        link.finish(ended, status, weights, CLOSE_TIMEOUT_S)
        if link.record_error and not self._said_record:
            self._said_record = True
            _say(f"the run store did not record this run: {link.record_error}")
        self.status = status
        if self.out is not None:
            session.save(self.out, force=True)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.close("stopped" if issubclass(kind, KeyboardInterrupt) else "failed", f"stopped by {kind.__name__}")

    # ---- what the user may read ---------------------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        recorder = self._link.recorder
        return recorder.id if recorder is not None else None

    @property
    def steps(self) -> int:
        return self._session.step_count

    @property
    def window_open(self) -> bool:
        """The window is (still) there: it was asked for, it started, and nobody closed it."""
        return self._link.connection is not None and not self._link.window_gone

    def wait_for_window(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Wait until the window has started (True) or failed to (False); ``lumen.watch`` itself never waits."""
        self._link.connected.wait(timeout)
        return self.window_open

    def save(self, run_dir: str | os.PathLike[str], force: bool = False) -> Path:
        """A run folder of what was watched so far (spec, weights now, every step's values)."""
        return self._session.save(run_dir, force=force)

    # ---- inside -------------------------------------------------------------------------------------------
    def _put(self, event: Event | Any) -> None:
        self._link.put(event)

    def _check(self, now: float) -> None:
        """The window's commands, obeyed in the script's thread; the weights, when due."""
        link = self._link
        while True:
            try:
                command = link.commands.get_nowait()
            except queue.Empty:
                break
            self._session.handle(command)  # type: ignore[arg-type]
        if now >= self._weights_due and not link.window_gone and link.connection is not None:
            began = time.monotonic()
            link.put(self._session.snapshot())
            cost = time.monotonic() - began
            self._weights_every = max(WEIGHTS_EVERY_S, cost / WEIGHTS_BUDGET)
            self._weights_due = now + self._weights_every

    def _say_gone(self) -> None:
        self._said_gone = True
        reason = self._link.gone_reason or "the window was closed"
        if self._link.recording:
            _say(f"{reason}; the run is still recorded, and w.step() sends nothing from now on")
        else:
            _say(f"{reason}; w.step() does nothing from now on (the script goes on)")

    def _recorder_factory(self) -> Callable[[], RunRecorder]:
        spec, info = self._session.spec(), self._session.run_info()

        def make() -> RunRecorder:  # on the link's thread, which then owns the store's connection
            store = RunStore()
            try:
                return RunRecorder.start(store, spec, WATCHED_DATA, "watched", 0, info)
            except BaseException:
                store.close()
                raise

        return make


def _float(value: Any) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _number(value: Any) -> bool:
    try:
        _float(value)
    except (TypeError, ValueError):
        return False
    return True


_open: weakref.WeakSet[Watch] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """The process ends: every watch still open is closed (the window stays, and says the script ended)."""
    for watch in list(_open):
        try:
            watch.close()
        except Exception as exc:  # nothing may stop the interpreter's exit
            _say(f"could not close cleanly: {exc}")


def watch(
    model: nn.Module,
    probe_input: Any = None,
    classes: Any = None,
    window: bool = True,
    out: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Watch:
    """See ``lumen.watch``."""
    if classes is not None and not isinstance(classes, list | tuple):
        classes = list(classes)
    return Watch(model, probe_input, classes, window=window, out=out, **options)


__all__ = ["Watch", "watch"]
