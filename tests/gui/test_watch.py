"""The window of a watched script (``lumen.watch``): frames and curves arrive from another process, the script
ending or being killed leaves the window usable, and closing the window leaves the script running to its end.

The window runs here (pytest-qt); the script is a real process (``tests/data/watch_script.py``) that connects to it
through the same private listener and key the window process uses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from multiprocessing.connection import Listener

import pytest

from lumen.engine.io.runs import read_run_info
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.probes.gradients import GradientNormFrame
from lumen.gui.watch_bridge import PipeBridge
from lumen.gui.watch_window import WatchWindow
from tests.support import ROOT

SCRIPT = ROOT / "tests" / "data" / "watch_script.py"


@pytest.fixture
def watched(qtbot, settings):
    """A watch window in this process, and a function that starts a script connected to it."""
    key = os.urandom(32)
    listener = Listener(authkey=key)
    window = WatchWindow(PipeBridge(listener), "test", settings)
    qtbot.addWidget(window)
    window.show()
    scripts: list[subprocess.Popen] = []

    def start(seconds: float, steps: int, *extra: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        address = json.dumps(listener.address)
        script = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(seconds), str(steps), "--window", address, key.hex(), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        scripts.append(script)
        return script

    yield window, start
    for script in scripts:
        if script.poll() is None:
            script.kill()
        script.wait()
    window.close()


def test_frames_and_curves_arrive_and_the_ended_script_leaves_a_run_to_save(watched, qtbot, tmp_path):
    window, start = watched
    script = start(0, 150)
    qtbot.waitUntil(lambda: window.script_ended is not None, timeout=60_000)
    assert script.wait(30) == 0, script.stderr.read()
    assert "the script ended at step 150" in window.status_label.text()
    assert window.layers.rowCount() == 5 and window.layers.item(0, 3).text() == "4×28×28"
    assert {"loss", "accuracy"} <= set(window.monitor.plots)
    assert window.monitor.readout.text().startswith("Step 150: loss ")  # no epochs: the script's loop has none known
    maps = window.viewer.frames.get(FeatureMapFrame)
    assert maps is not None and maps.step == 150 and maps.layers[0].shape == (4, 28, 28)  # the last weights' maps
    assert GradientNormFrame in window.monitor.frames  # the monitor's views are always watched
    assert window.save_run_to(str(tmp_path / "run"))
    info = read_run_info(tmp_path / "run")
    assert info["watched"] and info["steps"] == 150 and info["weights_step"] == 150
    assert (tmp_path / "run" / "steps.csv").read_text().count("\n") == 151


def test_the_window_closed_mid_run_leaves_the_script_finishing(watched, qtbot):
    window, start = watched
    script = start(3, 0)
    qtbot.waitUntil(lambda: window.bridge.step > 5, timeout=60_000)
    window.close()
    out, err = script.communicate(timeout=60)
    assert script.returncode == 0, err
    assert err.count("the window was closed") == 1, err
    assert json.loads(out.splitlines()[-1])["steps"] > 5


def test_a_killed_script_leaves_the_window_usable(watched, qtbot, tmp_path):
    window, start = watched
    script = start(120, 0)
    qtbot.waitUntil(lambda: window.bridge.step > 5 and window.bridge.saved_state()[0] is not None, timeout=60_000)
    os.kill(script.pid, signal.SIGKILL)
    script.wait(10)
    qtbot.waitUntil(lambda: window.script_ended is not None, timeout=10_000)
    assert "ended without closing its watch" in window.status_label.text()
    assert not window.bridge.submit(object())  # the script is gone: commands go nowhere, nothing raises
    window.viewer.probe.setValue(2)  # the controls still work
    assert window.save_run_to(str(tmp_path / "run"))
    assert read_run_info(tmp_path / "run")["watched"]


def test_a_real_window_process_outlives_its_script():
    """``lumen.watch`` starts the window as a process of its own (key on stdin, address back on stdout); the script
    ends with exit 0 without waiting for it, and the window stays open, holding none of the script's pipes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    script = subprocess.run(
        [sys.executable, str(SCRIPT), "0", "30"], capture_output=True, text=True, timeout=180, env=env
    )  # returns: the window holds neither of the script's pipes
    assert script.returncode == 0, script.stderr
    assert script.stderr == ""
    report = json.loads(script.stdout.splitlines()[-1])
    window = report["window"]
    try:
        os.kill(window, 0)  # still there after the script ended
        assert report["qt"] is False and report["steps"] == 30
        assert report["returned_s"] < 1.0  # lumen.watch returns at once (a window takes seconds to start)
    finally:
        os.kill(window, signal.SIGTERM)
