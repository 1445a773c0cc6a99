"""The one boundary for errors the window did not expect: nothing a view, a probe or a slot raises closes Lumen.

- ``draw_safely(view, frame)``: every frame is drawn through it. A view that raises shows one line ("could not
  draw this frame: …") with *Details* (the traceback, to copy) above its picture; the next frame it draws
  takes the line down. Training is not touched.
- ``install_excepthook(window)``: anything else raised in a Qt slot or a thread reaches ``sys.excepthook`` /
  ``threading.excepthook``; it is logged, shown in a dialog once per distinct error, and the window goes on.
- Everything is written to ``lumen.log`` in Lumen's data folder (``engine.io.store.data_dir``).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtWidgets import QWidget

from lumen.engine.io.store import data_dir
from lumen.gui.widgets.error_line import show_details

if TYPE_CHECKING:
    from lumen.engine.events import Frame
    from lumen.gui.views.base import View

log = logging.getLogger("lumen.gui")
LOG_NAME = "lumen.log"
_handler: RotatingFileHandler | None = None


def log_file() -> Path:
    return data_dir() / LOG_NAME


def start_log() -> Path | None:
    """Write Lumen's warnings and errors to ``lumen.log`` (1 MB, two old files kept); None when the data folder
    cannot be written (the errors still reach the dialogs and stderr)."""
    global _handler
    path = log_file()
    if _handler is not None:
        if Path(_handler.baseFilename) == path.absolute():
            return path
        logging.getLogger().removeHandler(_handler)  # the data folder moved (tests point each at its own)
        _handler.close()
        _handler = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return None
    _handler.setLevel(logging.WARNING)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(_handler)
    return path


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def draw_safely(view: View, frame: Frame) -> bool:
    """``view.show_frame(frame)``; if it raises, the view says so in one line and the error is logged. True if
    the frame was drawn."""
    try:
        view.show_frame(frame)
    except Exception as exc:
        details = traceback.format_exc()
        log.error("the %s view could not draw a %s\n%s", view.title, type(frame).__name__, details)
        view.error_line().report(f"could not draw this frame: {one_line(exc)}", details)
        return False
    view.error_line().hide()
    return True


class _Relay(QObject):
    """Carries an error from any thread to the GUI thread, where the dialog is shown."""

    raised = Signal(str, str)


def install_excepthook(
    parent: QWidget,
    shown: Callable[[str, str], None] | None = None,
    rescue: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """Route uncaught exceptions (in Qt slots, in threads) to a log entry and a dialog; the app stays alive.
    ``rescue()`` runs first, once per distinct error (the window checkpoints a run in progress, so whatever the
    error leads to, the run is in the store). ``shown(summary, details)`` replaces the dialog (tests). Returns a
    function that puts the old hooks back."""
    assert QThread.currentThread() is parent.thread(), "install the hook from the GUI thread"
    relay = _Relay(parent)
    seen: set[str] = set()

    def show(summary: str, details: str) -> None:
        if summary in seen:  # the same error again (a slot firing 30 times a second): logged, not shown again
            return
        seen.add(summary)
        if rescue is not None:
            try:
                rescue()
            except Exception:  # the rescue must never become the next error
                log.exception("could not save the run after an error")
        if shown is not None:
            shown(summary, details)
        else:
            where = f"\n\nWritten to {log_file()}." if _handler is not None else ""
            show_details(parent, "Lumen: something went wrong", f"{summary}\n\nLumen keeps running.{where}", details)

    relay.raised.connect(show, Qt.ConnectionType.QueuedConnection)

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            old_hook(kind, exc, tb)
            return
        details = "".join(traceback.format_exception(kind, exc, tb))
        log.error("uncaught %s\n%s", one_line(exc), details)
        print(details, file=sys.stderr)
        relay.raised.emit(one_line(exc), details)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    old_hook, old_thread_hook = sys.excepthook, threading.excepthook
    sys.excepthook, threading.excepthook = hook, thread_hook

    def uninstall() -> None:
        sys.excepthook, threading.excepthook = old_hook, old_thread_hook

    return uninstall
