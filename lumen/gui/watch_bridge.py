"""A watched script's events into Qt signals: ``PipeBridge`` reads them from the script's connection (``lumen.watch``)
instead of an engine worker, and coalesces them as ``EngineBridge`` does (every light event kept, the newest frame
of each type drawn).

One reader thread accepts the script's connection on the window's private listener (one connection, then the
listener is closed) and receives what the script sends: lists of events. Metrics are also kept here, whole, for
*Save run…*, and so is the newest ``WeightsSnapshot``. When the connection closes the bridge says how: the script
ended (it sent ``ScriptEnded``), or its process went without a word (killed, crashed), and the window stays usable.
Commands go the other way through ``submit``; once the script is gone they are dropped.
"""

from __future__ import annotations

import socket
import threading
from multiprocessing.connection import Connection, Listener

from PySide6.QtCore import QObject

from lumen.engine.events import EpochMetrics, StepMetrics
from lumen.engine.runtime.history import MetricsHistory
from lumen.engine.runtime.watched import ScriptEnded, WatchStarted, WeightsSnapshot
from lumen.gui.bridge import EventBridge

KILLED = "the script's process ended without closing its watch (killed, or it crashed) at step {step}"


class PipeBridge(EventBridge):
    def __init__(self, source: Listener | Connection, parent: QObject | None = None):
        super().__init__(parent)
        self._listener = source if isinstance(source, Listener) else None
        self._connection: Connection | None = source if isinstance(source, Connection) else None
        self._send_lock = threading.Lock()
        self._kept = threading.Lock()
        self._history = MetricsHistory()  # every metric the script sent, for Save run…
        self._weights: WeightsSnapshot | None = None
        self.started: WatchStarted | None = None
        self.ended: ScriptEnded | None = None  # set once the script is gone (how it went)
        self.connected = threading.Event()
        self.step = 0
        self._closing = False
        self._thread = threading.Thread(target=self._read, name="lumen-watch-reader", daemon=True)
        self._thread.start()

    # ---- the reader thread ----------------------------------------------------------------------------------
    def _read(self) -> None:
        if self._listener is not None:
            try:
                self._connection = self._listener.accept()
            except (OSError, EOFError) as exc:  # a wrong key, or the window closing before the script came
                self._end(f"the script did not connect ({exc})")
                return
            finally:
                self._listener.close()  # nothing listens any more
        self.connected.set()
        connection = self._connection
        assert connection is not None
        try:
            while True:
                for event in connection.recv():
                    self._take(event)
        except (EOFError, OSError):
            pass
        except Exception as exc:  # something that does not unpickle here: say so, stop reading
            self._end(f"the script sent something this window cannot read ({type(exc).__name__}: {exc})")
            return
        self._end(KILLED.format(step=self.step))

    def _take(self, event: object) -> None:
        if isinstance(event, WeightsSnapshot):
            with self._kept:
                self._weights = event
            return
        if isinstance(event, StepMetrics | EpochMetrics):
            with self._kept:
                self._history.append(event)
            self.step = max(self.step, event.step)
        elif isinstance(event, WatchStarted):
            self.started = event
        elif isinstance(event, ScriptEnded):
            self.ended = event
        self._sink(event)  # type: ignore[arg-type]

    def _end(self, message: str) -> None:
        self.connected.set()
        if self.ended is None and not self._closing:
            self.ended = ScriptEnded(self.step, message)
            self._sink(self.ended)  # type: ignore[arg-type]

    # ---- the GUI thread ---------------------------------------------------------------------------------------
    def submit(self, command: object) -> bool:
        """Send a command to the script (obeyed between its steps); False once the script is gone."""
        connection = self._connection
        if connection is None or self.ended is not None:
            return False
        with self._send_lock:
            try:
                connection.send(command)
            except (OSError, ValueError):
                return False
        return True

    def saved_state(self) -> tuple[WeightsSnapshot | None, list]:
        """The newest weights the script sent and every metric, for a run folder."""
        with self._kept:
            return self._weights, self._history.events()

    def shutdown(self, timeout: float = 2.0) -> bool:
        """The window closes: the connection too, so the script's next step finds it gone."""
        self._timer.stop()
        self._closing = True
        connection = self._connection
        if connection is not None:
            try:  # wake the reader (a blocked recv), then close
                with socket.fromfd(connection.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as duplicate:
                    duplicate.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError, ValueError):
                pass
            try:
                connection.close()
            except OSError:
                pass
        elif self._listener is not None:
            self._listener.close()
        self._thread.join(timeout)
        return not self._thread.is_alive()
