"""Opening a saved run in the real window: File → Open run…, a dropped folder, a double-clicked row of the runs list,
the Recent menu and ``python main.py RUN_DIR``; Train asks once whether to continue from the run's weights; closing
asks about unsaved edits and a run still training; each bad run folder is one message and the model stays."""

import json
import shutil

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from lumen.engine.events import RunState
from lumen.engine.io.runs import RUN_FORMAT, class_list, import_run
from lumen.engine.probes.feature_maps import FeatureMapFrame
from lumen.engine.training.loop import TrainConfig
from tests.engine.test_open_run import trained_run
from tests.support import drop, tiny_imagenet_spec

Button = QMessageBox.StandardButton


@pytest.fixture
def run(tmp_path):
    return trained_run(tmp_path / "run")


def opened(qtbot, window, name="LeNet-5"):
    qtbot.waitUntil(lambda: window.opened_run is not None and window.opened_run.spec.name == name, timeout=30_000)
    return window.opened_run


def answer(monkeypatch, *answers):
    asked, queue = [], list(answers)

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return queue.pop(0)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def file_action(window, text):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    return next(a for a in menu.actions() if a.text() == text)


def test_a_dropped_run_folder_shows_its_curves_weights_and_checkpoints(qtbot, window, run, settings):
    run_id = json.loads((run / "run.json").read_text())["run_id"]
    drop(window, run)
    event = opened(qtbot, window)
    assert event.run == run_id and window.builder.doc.spec == event.spec and window.builder.undo_stack.isClean()
    monitor, viewer = window.monitor, window.viewer
    qtbot.waitUntil(lambda: "loss" in monitor.plots and monitor.plots["loss"].steps == 6, timeout=10_000)
    qtbot.waitUntil(lambda: viewer.replay_run == run_id and viewer.replay_steps[-1] == 6, timeout=10_000)
    assert "Epoch 1: validation" in monitor.readout.text()
    # the live views show the run's weights (its last checkpoint); the slider replays an earlier one
    qtbot.waitUntil(lambda: isinstance(viewer.frame, FeatureMapFrame), timeout=10_000)
    viewer.replay_slider.setValue(0)
    first = viewer.replay_steps[0]
    qtbot.waitUntil(lambda: getattr(viewer.frame, "checkpoint_step", None) == first, timeout=20_000)
    assert window.recent()[0] == str(run) and window.windowTitle() == "Lumen — run"
    assert settings.value("recent/paths") in ([str(run)], str(run))


def test_a_run_folder_dropped_on_the_viewer_opens_the_run_not_its_pictures(qtbot, window, run):
    drop(window.viewer, run)
    assert opened(qtbot, window).folder == str(run)


def test_train_asks_once_and_continues_from_the_weights(qtbot, window, run, monkeypatch):
    window.open_run(run)
    opened(qtbot, window)
    asked = []
    monkeypatch.setattr(window, "ask_keep_weights", lambda event: asked.append(event) or True)
    sent = []
    submit = window.bridge.worker.submit
    monkeypatch.setattr(window.bridge.worker, "submit", lambda c: (sent.append(c), submit(c)))
    monkeypatch.setattr(window.monitor, "config", lambda: TrainConfig(epochs=1, max_steps=2, batch_size=16))
    qtbot.waitUntil(lambda: "loss" in window.monitor.plots and window.monitor.plots["loss"].steps == 6, timeout=10_000)
    for _ in range(2):
        window.train_action.trigger()
        qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=30_000)
        window._apply_state(RunState.IDLE)
    trains = [c for c in sent if type(c).__name__ == "Train"]
    assert len(asked) == 1 and [c.keep_weights for c in trains] == [True, True]
    # the opened run's 6 steps stay drawn and each run on from them goes on where the last one ended
    qtbot.waitUntil(lambda: window.monitor.plots["loss"].steps == 10, timeout=10_000)
    assert window.monitor.plots["loss"].values.last[0] == 10
    window.builder.load_preset("lenet5")  # another model: fresh weights, no question
    qtbot.waitUntil(lambda: window.opened_run is None, timeout=10_000)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=30_000)
    assert len(asked) == 1 and [c.keep_weights for c in sent if type(c).__name__ == "Train"][-1] is False


def test_file_open_run_and_the_recent_menu(qtbot, window, run, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(run)))
    file_action(window, "Open run…").trigger()
    opened(qtbot, window)
    window.builder.load_preset("lenet5")
    qtbot.waitUntil(lambda: window.opened_run is None, timeout=10_000)
    window._fill_recent()
    entry = next(a for a in window.recent_menu.actions() if a.text() == str(run))
    entry.trigger()
    opened(qtbot, window)


def test_a_double_clicked_row_of_the_runs_list_opens_that_run(qtbot, window, run):
    run_id = json.loads((run / "run.json").read_text())["run_id"]
    runs = window.monitor.runs
    runs.refresh()
    row = next(r for r, row in enumerate(runs.rows) if row.id == run_id)
    runs.table.cellDoubleClicked.emit(row, 1)
    assert opened(qtbot, window).run == run_id and window.windowTitle() == f"Lumen — run {run_id}"
    assert window.recent()[0] == f"run {run_id}"


def test_loading_over_unsaved_edits_asks_and_cancel_keeps_them(qtbot, window, run, monkeypatch):
    window.builder.set_param("fc2", "out_features", 83)
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.open_run(run)
    assert len(asked) == 1 and "not saved" in asked[0] and window._opening is None  # nothing was sent


def test_opening_while_a_run_trains_asks_first(qtbot, window, run, monkeypatch):
    window._apply_state(RunState.TRAINING)  # as the engine reports while a run trains
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.open_run(run) and "still training" in asked[0] and window._opening is None
    window._apply_state(RunState.IDLE)


def test_an_opened_spec_file_goes_into_recent(qtbot, window, tmp_path):
    from lumen.engine.presets import get_preset

    path = tmp_path / "model.json"
    get_preset("lenet5").save(path)
    drop(window, path)
    qtbot.waitUntil(lambda: window.recent() == [str(path)], timeout=10_000)
    window._fill_recent()
    assert [a.text() for a in window.recent_menu.actions()][0] == str(path)


def test_imported_imagenet_weights_name_the_top_predictions(qtbot, window, tmp_path):
    from safetensors.torch import save_file

    from lumen.engine.graph.model import build_model
    from tests.support import write_png

    spec = tiny_imagenet_spec("tiny-imagenet")
    save_file(build_model(spec).state_dict(), str(tmp_path / "w.safetensors"))
    run = import_run(spec, tmp_path / "w.safetensors", tmp_path / "run", classes="imagenet")
    drop(window, run)
    opened(qtbot, window, "tiny-imagenet")
    write_png(tmp_path / "photo.png", 40, 30)
    window._open_image(str(tmp_path / "photo.png"))
    imagenet = set(class_list("imagenet"))
    qtbot.waitUntil(
        lambda: (
            isinstance(window.viewer.frame, FeatureMapFrame)
            and window.viewer.frame.source == "photo.png"
            and all(name in imagenet for name, _ in window.viewer.frame.predictions)
        ),
        timeout=20_000,
    )
    asked, errors = [], []
    window.ask_keep_weights = asked.append  # never asked: 1,000 outputs cannot train on the default data
    window.bridge.error.connect(errors.append)
    window.train_action.trigger()
    qtbot.waitUntil(lambda: any("cannot train" in e for e in errors), timeout=10_000)
    assert asked == []


def spoil(run, kind, tmp_path):
    folder = tmp_path / kind
    shutil.copytree(run, folder)
    if kind == "not a run":
        (folder / "weights.safetensors").unlink()
    elif kind == "newer":
        info = json.loads((folder / "run.json").read_text())
        (folder / "run.json").write_text(json.dumps({**info, "format": RUN_FORMAT + 1}))
    elif kind == "misfit":
        spec = json.loads((folder / "model.json").read_text())
        next(n for n in spec["nodes"] if n["id"] == "fc3")["params"]["out_features"] = 7
        (folder / "model.json").write_text(json.dumps(spec))
    return folder


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not a run", "is not a complete run folder"),
        ("newer", "was written by a newer version of Lumen"),
        ("misfit", "do not fit this model"),
    ],
)
def test_a_bad_run_is_one_message_and_the_model_stays(qtbot, window, run, tmp_path, kind, message):
    folder = spoil(run, kind, tmp_path)
    spec = window.builder.doc.spec
    errors = []
    window.bridge.error.connect(errors.append)
    drop(window, folder)
    qtbot.waitUntil(lambda: bool(errors), timeout=20_000)
    assert len(errors) == 1 and message in errors[0] and message in window.viewer.message.text()
    assert window.opened_run is None and window.builder.doc.spec == spec and window.recent() == []


def test_a_read_only_run_opens_and_offers_saving_elsewhere(qtbot, window, run, monkeypatch, tmp_path):
    monkeypatch.setattr("lumen.engine.runtime.opening.writable", lambda folder: False)
    offered = []
    monkeypatch.setattr(window, "offer_save_elsewhere", offered.append)
    drop(window, run)
    assert opened(qtbot, window).read_only and offered == [window.opened_run]


def test_closing_asks_about_a_run_in_progress_and_unsaved_edits(qtbot, window, monkeypatch):
    window.builder.set_param("fc2", "out_features", 83)
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.may_close() and len(asked) == 1 and "Quitting loses them" in asked[0]
    window._apply_state(RunState.TRAINING)  # as the engine reports while a run trains
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.may_close() and "still training" in asked[0]
    asked = answer(monkeypatch, Button.Yes, Button.Discard)
    assert window.may_close() and len(asked) == 2
    window._apply_state(RunState.IDLE)


def test_the_live_views_rate_is_remembered(qtbot, settings):
    from lumen.gui.main_window import MainWindow

    first = MainWindow(settings)
    qtbot.addWidget(first)
    rate = first.monitor.live_rate
    rate.setCurrentIndex((rate.currentIndex() + 1) % rate.count())
    chosen = rate.currentText()
    first.close()
    second = MainWindow(settings)
    qtbot.addWidget(second)
    assert second.monitor.live_rate.currentText() == chosen
    second.close()


def test_the_command_line_opens_the_window_on_a_path(monkeypatch, tmp_path):
    import lumen.gui.app
    from lumen import entry

    opened_with = []
    monkeypatch.setattr(lumen.gui.app, "run_app", lambda **kw: opened_with.append(kw) or 0)
    (tmp_path / "spec.json").write_text("{}")
    assert entry.main([str(tmp_path)]) == 0 and entry.main([str(tmp_path / "spec.json")]) == 0
    assert opened_with == [{"open_path": str(tmp_path)}, {"open_path": str(tmp_path / "spec.json")}]
    with pytest.raises(SystemExit) as exit:
        entry.main([str(tmp_path / "gone")])
    assert exit.value.code == 2
    assert entry.opened_path(["presets"]) is None
