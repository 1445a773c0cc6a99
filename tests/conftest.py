import gc
import os
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt

import pytest

ENGINE_THREADS = ("lumen-engine", "lumen-image", "lumen-spec", "lumen-run-check")


@pytest.fixture(autouse=True)
def lumen_data_dir(tmp_path_factory, monkeypatch):
    """The run store of every test lives in a temporary folder, never in the user's data folder."""
    folder = tmp_path_factory.mktemp("lumen-data")
    monkeypatch.setenv("LUMEN_DATA_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread(request):
    """While a test has Qt widgets, cyclic garbage is collected only here, on the GUI thread: collected in the
    engine's worker thread, a cycle holding Qt objects would destroy them there and crash Qt (the app does the
    same with pyqtgraph's GarbageCollector, see gui/app.py)."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@pytest.fixture(autouse=True)
def no_leftover_threads():
    """Fail a test that leaves an engine or image-loading thread running (a shutdown bug)."""
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [t.name for t in threading.enumerate() if t.name.startswith(ENGINE_THREADS)]
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"threads still running after the test: {alive}")


@pytest.fixture
def settings(tmp_path):
    """A QSettings in a temporary INI file, so tests never touch the user's saved layout."""
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "lumen.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """The real main window with LeNet-5 loaded and its first feature-map frame drawn."""
    from lumen.gui.main_window import MainWindow

    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.viewer.frame is not None, timeout=30_000)
    yield w
    w.close()
