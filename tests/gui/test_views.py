"""Probes and views plug in through their two registries only; heavy frames are latest-wins, per type.

A new probe with settings, a control in its view and a long job costs exactly four files: the probe's module (its
Frame, Settings and Probe, here ``CountingProbe``), one line in ``engine/probes/__init__.py``'s ``PROBES``, the
view's module (here ``CountingView``, whose spin box sends ``ConfigureProbe``) and one entry in
``gui/views/__init__.py``'s ``VIEWS``; the tests below add them through the two lists alone."""

import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSpinBox, QToolBar, QVBoxLayout

import lumen.engine.probes as engine_probes
import lumen.gui.views as gui_views
from lumen.engine.events import Frame, RunState
from lumen.engine.jobs import Job
from lumen.engine.probes import Probe
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.runtime.commands import CancelJob, ConfigureProbe
from lumen.gui.main_window import MainWindow
from lumen.gui.views import View


@dataclass(frozen=True, eq=False)
class ToyFrame(Frame):
    serial: int
    pixels: np.ndarray  # heavy, as a real probe's payload would be


@dataclass(frozen=True, eq=False)
class OtherToyFrame(Frame):
    serial: int
    pixels: np.ndarray


class ToyProbe(Probe):
    """Makes a frame after every batch: far more often than a screen can show them."""

    name = "toy"
    frame_type = ToyFrame
    interval_s = 0.001
    budget = 1.0

    def __init__(self):
        self.made: list[ToyFrame] = []

    def frame(self, context):
        made = ToyFrame(context.step, len(self.made), np.full((64, 64), len(self.made), np.float32))
        self.made.append(made)
        return made


class ToyView(View):
    title = "Toy"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.drawn: list[tuple[int, int]] = []  # (serial, step) of each frame drawn; the frames are not kept
        self.last: Frame | None = None
        self.label = QLabel()
        self.canvas = pg.GraphicsLayoutWidget()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.canvas.ci.addViewBox().addItem(self.image)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.canvas)

    def show_frame(self, frame):
        self.drawn.append((frame.serial, frame.step))
        self.last = frame
        self.image.setImage(frame.pixels, levels=(0, 1000), autoLevels=False)
        self.label.setText(f"toy #{frame.serial} at step {frame.step}")


class OtherToyView(ToyView):
    title = "Other toy"


@pytest.fixture
def toy_views(monkeypatch):
    """Views for the two toy frame types, added through the views' registry only."""
    monkeypatch.setattr(gui_views, "VIEWS", {**gui_views.VIEWS, ToyFrame: ToyView, OtherToyFrame: OtherToyView})


@pytest.fixture
def plugged(monkeypatch, toy_views):
    """A toy probe and its view added through the two registries' lists, and nothing else."""
    probe = ToyProbe()
    monkeypatch.setattr(engine_probes, "PROBES", [*engine_probes.PROBES, probe])
    return probe


def open_window(qtbot, settings):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: FeatureMapFrame in window.viewer.frames, timeout=30_000)
    return window


def test_a_toy_probe_and_view_draw_latest_frames_while_a_model_trains(qtbot, settings, plugged):
    window = open_window(qtbot, settings)
    view = window.viewer.views[ToyFrame]
    assert isinstance(view, ToyView) and window.viewer.tabs.count() == len(gui_views.VIEWS)  # the toys' too
    assert not window.viewer.tabs.tabBar().isHidden()  # several views: one tab each
    maps = window.viewer.views[FeatureMapFrame]
    window.viewer.tabs.setCurrentWidget(view)  # views behind another tab wait, with their newest frame
    qtbot.waitUntil(lambda: bool(view.drawn), timeout=10_000)  # the load's forced run reached the toy view too
    assert view.drawn[0] == (0, 0)  # serial 0, step 0

    window.monitor.epochs.setValue(1)
    window.monitor.batch_size.setValue(16)  # 282 quick batches: a toy frame after each
    window.monitor.live_rate.addItem("every batch", 0.0)  # no cap from the window: the toy probe's own rate
    window.monitor.live_rate.setCurrentText("every batch")
    toolbar = window.findChild(QToolBar, "training_toolbar")
    qtbot.mouseClick(toolbar.widgetForAction(window.train_action), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=120_000)
    qtbot.waitUntil(lambda: view.last is plugged.made[-1], timeout=5_000)  # the newest is the one shown

    assert any(0 < step < 282 for _, step in view.drawn), "no toy frame was drawn while the model trained"
    serials = [serial for serial, _ in view.drawn]
    assert serials == sorted(set(serials))  # never an older frame after a newer one, never one twice
    assert len(plugged.made) > 282 and len(view.drawn) < len(plugged.made) / 2  # most were superseded, not queued
    assert window.viewer.frames[ToyFrame] is view.last
    assert view.label.text() == f"toy #{plugged.made[-1].serial} at step 282"
    # The feature maps' tab was behind the toy's all along: their probe did not run, so training paid nothing
    # for them; shown again, they are made at once for the trained model.
    assert window.viewer.frames[FeatureMapFrame].step == 0 and maps.frame.step == 0
    window.viewer.tabs.setCurrentWidget(maps)
    qtbot.waitUntil(lambda: maps.frame.step == 282, timeout=10_000)
    assert maps.frame is window.viewer.frames[FeatureMapFrame]
    assert window.bridge.frames_drawn < window.bridge.frames_received
    window.close()


def test_a_flood_of_two_frame_types_keeps_at_most_one_of_each_and_draws_the_last(qtbot, settings, toy_views):
    window = open_window(qtbot, settings)
    bridge, viewer = window.bridge, window.viewer
    sent: dict[type, list] = {ToyFrame: [], OtherToyFrame: []}
    most_pending, most_alive = [0], [0]

    def flood():  # as a worker thread would, faster than any screen
        for i in range(1500):
            for frame_type in (ToyFrame, OtherToyFrame):
                frame = frame_type(i, i, np.full((128, 128), i, np.float32))
                sent[frame_type].append(weakref.ref(frame))
                bridge._sink(frame)
                del frame
            pending = bridge.pending_frames()
            most_pending[0] = max(
                most_pending[0], max(sum(isinstance(f, t) for f in pending.values()) for t in (ToyFrame, OtherToyFrame))
            )
            if i % 50 == 0:  # frames nobody holds are freed at once: count the ones still alive
                most_alive[0] = max(most_alive[0], max(sum(r() is not None for r in refs) for refs in sent.values()))
            del pending

    thread = threading.Thread(target=flood, name="toy-flood")
    thread.start()
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=60_000)  # the GUI keeps flushing meanwhile
    bridge.flush()
    assert most_pending[0] == 1
    assert most_alive[0] <= 3  # pending, being drawn, shown: never a queue that grows with the flood
    assert bridge.frames_drawn < 1500  # most of the 3,000 were superseded before a flush
    for frame_type in (ToyFrame, OtherToyFrame):
        last = sent[frame_type][-1]()
        assert last is not None and viewer.frames[frame_type] is last
        viewer.tabs.setCurrentWidget(viewer.views[frame_type])  # a view behind another tab is drawn when shown
        assert viewer.views[frame_type].last is last
        assert sum(r() is not None for r in sent[frame_type]) == 1  # everything older is gone
    window.close()


def test_a_long_caption_wraps_instead_of_widening_the_viewer(qtbot):
    """Seen under Xvfb: a rotated probe's caption made the viewer wider than the screen, cutting off its views."""
    from lumen.gui.panes.viewer import ViewerPane

    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.show()
    qtbot.wait(20)
    narrow = pane.minimumSizeHint().width()
    pane.caption.setText("validation digit #0 (shifted +3,−2 px, rotated +10°, scaled ×1.25) (true label 4) " * 4)
    qtbot.wait(20)  # the layout takes the new text in on the next event-loop turn
    assert pane.minimumSizeHint().width() <= narrow + 10


@dataclass(frozen=True)
class CountingSettings:
    up_to: int = 3  # how far the probe counts: past 20 it is a long job, counted in slices


@dataclass(frozen=True, eq=False)
class CountFrame(Frame):
    counted: int
    up_to: int
    progress: float | None  # None: done


class CountingProbe(Probe):
    """Counts up to its setting; a long count is a job, each number one slice, with progress frames."""

    name = "counting"
    frame_type = CountFrame
    Settings = CountingSettings

    def frame(self, context):
        up_to = self.settings.up_to
        if up_to <= 20:
            return CountFrame(context.step, up_to, up_to, None)

        def work():
            for n in range(1, up_to):
                time.sleep(0.002)
                yield CountFrame(context.step, n, up_to, n / up_to)
            return CountFrame(context.step, up_to, up_to, None)

        return Job("counting", f"up to {up_to}", work(), interval_s=0.0)


class CountingView(View):
    title = "Counting"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.up_to = QSpinBox(minimum=1, maximum=100_000, value=3)
        self.up_to.valueChanged.connect(
            lambda value: self.command.emit(ConfigureProbe("counting", CountingSettings(up_to=value)))
        )
        self.label = QLabel()
        self.drawn: list[CountFrame] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self.up_to)
        layout.addWidget(self.label)

    def show_frame(self, frame):
        self.drawn.append(frame)
        done = "done" if frame.progress is None else f"{frame.progress:.0%}"
        self.label.setText(f"{frame.counted} of {frame.up_to} ({done})")


def test_a_probe_with_settings_a_control_and_a_long_job_plugs_in_through_the_two_lists(qtbot, settings, monkeypatch):
    monkeypatch.setattr(engine_probes, "PROBES", [*engine_probes.PROBES, CountingProbe()])
    monkeypatch.setattr(gui_views, "VIEWS", {**gui_views.VIEWS, CountFrame: CountingView})
    window = open_window(qtbot, settings)
    view = window.viewer.views[CountFrame]
    window.viewer.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.label.text() == "3 of 3 (done)", timeout=10_000)  # its default settings
    view.up_to.setValue(5)  # the control: one ConfigureProbe, the probe's next frame follows it
    qtbot.waitUntil(lambda: view.label.text() == "5 of 5 (done)", timeout=10_000)
    view.up_to.setValue(400)  # a long count: a job in slices, progress frames, the window answers meanwhile
    qtbot.waitUntil(lambda: view.label.text() == "400 of 400 (done)", timeout=30_000)
    progress = [f.progress for f in view.drawn if f.up_to == 400 and f.progress is not None]
    assert progress and progress == sorted(progress) and all(0 < p < 1 for p in progress)
    view.up_to.setValue(100_000)  # too long to wait for: CancelJob stops it between slices
    qtbot.waitUntil(lambda: any(f.up_to == 100_000 for f in view.drawn), timeout=10_000)
    window.bridge.worker.submit(CancelJob())
    qtbot.waitUntil(lambda: not window.bridge.worker._session.busy, timeout=10_000)
    assert view.drawn[-1].counted < 100_000
    window.close()
