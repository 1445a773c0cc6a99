"""Starting the application: Qt settings, pyqtgraph options, the main window, and the self-test."""

from __future__ import annotations

import os
import sys


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    # No antialiasing: on a 2-core machine it costs the GUI thread ~15 ms of p99 latency while training
    # (benchmarks/ui_latency.py), and the curves stay readable without it.
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="w", foreground="k")


def set_icon() -> None:
    """Lumen's icon on every window (title bar, task switcher); the menu entry beside the bundle uses the same file."""
    from PySide6.QtGui import QGuiApplication, QIcon

    from lumen.engine.resources import resource_path

    QGuiApplication.setWindowIcon(QIcon(str(resource_path("lumen.png"))))


def run_app(self_test: str | None = None, open_path: str | None = None) -> int:
    """Open the window (on ``open_path``, a run folder or a spec file, when given); with ``self_test`` (a preset
    name), run the self-test on it offscreen instead."""
    if self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from lumen.gui.main_window import MainWindow

    configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName("Lumen")
    app.setApplicationName("Lumen" if not self_test else "Lumen-self-test")
    set_icon()
    # Python's cyclic garbage collector runs in whichever thread happens to allocate; a cycle holding Qt objects
    # collected in the engine's worker thread destroys them there, which crashes Qt. pyqtgraph's collector turns
    # automatic collection off and collects on a GUI-thread timer instead.
    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)  # noqa: F841 - kept alive for the application's lifetime
    from lumen.gui.errors import install_excepthook, start_log

    start_log()
    window = MainWindow()
    window.show()
    if self_test:
        from lumen.gui.self_test import run_self_test

        return run_self_test(app, window, self_test)
    install_excepthook(window, rescue=window.rescue_run)  # a dialog; the run is checkpointed; the window goes on
    if open_path is not None:
        window.open_path(open_path)
    return app.exec()


def run_watch(key: bytes, name: str) -> int:
    """The window of a watched script (``python -m lumen.watching.window``): Qt first (no display fails here, before
    the script connects), then a private listener whose address goes to stdout, one line, for the script to connect
    to with ``key``; from then on stdout is stderr. The window stays open after the script has gone."""
    import json
    from multiprocessing.connection import Listener

    from PySide6.QtWidgets import QApplication

    configure_pyqtgraph()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Lumen")
    app.setApplicationName("Lumen-watch")
    set_icon()
    app.setQuitOnLastWindowClosed(True)
    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)  # noqa: F841 - see run_app
    from lumen.gui.errors import install_excepthook, start_log
    from lumen.gui.watch_bridge import PipeBridge
    from lumen.gui.watch_window import WatchWindow

    start_log()
    listener = Listener(authkey=key)  # a Unix socket in a private temporary folder (a named pipe on Windows)
    print(json.dumps(listener.address), flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the script reads one line; nothing more goes there
    window = WatchWindow(PipeBridge(listener), name)
    window.show()
    install_excepthook(window)
    return app.exec()
