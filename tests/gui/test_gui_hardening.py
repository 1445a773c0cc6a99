"""Issue 7 through the real window: every bad input gets one clear refusal where the user looks, the app keeps
working and the last good model stays. Cycles and self-loops in spec files, unsaved builder edits, specs the
builder marks invalid, spec files read off the GUI thread (FIFOs, devices), models too big for the machine,
and Save run… into a folder that already holds something."""

import json
import os
import threading

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from lumen.engine.io.runs import read_run_info
from lumen.engine.presets import PRESETS, get_preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.gui.panes.builder import edits
from lumen.gui.panes.builder.layout import layered
from tests.support import drop

Button = QMessageBox.StandardButton
OTHER = "vgg_small"  # a second preset, small enough to build at once


# ---- helpers ---------------------------------------------------------------------------------------------------
def open_with_dialog(window, monkeypatch, path):
    """The builder's Open spec… action, with the file dialog answering ``path``."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    window.builder.open_action.trigger()


def spy_loads(window, monkeypatch):
    """Every spec the window sends to the worker."""
    loads = []
    real = window.bridge.worker.load_model
    monkeypatch.setattr(window.bridge.worker, "load_model", lambda spec, *a: (loads.append(spec), real(spec, *a)))
    return loads


def answer_questions(monkeypatch, *answers):
    """QMessageBox.question answers ``answers`` in turn; returns the list of (title, text) it was asked."""
    asked, queue = [], list(answers)

    def question(parent, title, text, *args, **kwargs):
        asked.append((title, text))
        return queue.pop(0)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def write_spec(path, data):
    path.write_text(json.dumps(data))
    return path


def lenet_with(**changes):
    """LeNet-5's spec as a dict, with ``edges`` appended or a node renamed."""
    data = get_preset("lenet5").to_dict()
    data["edges"] += [list(e) for e in changes.get("edges", [])]
    for old, new in changes.get("rename", {}).items():
        for node in data["nodes"]:
            node["id"] = new if node["id"] == old else node["id"]
        data["edges"] = [[new if e == old else e for e in edge] for edge in data["edges"]]
    return data


def settle_valid_edit(qtbot, window, loads):
    """Make a valid edit and wait until the worker has it: any earlier load would have arrived first."""
    window.builder.set_param("fc2", "out_features", 83)
    qtbot.waitUntil(lambda: len(loads) >= 1, timeout=5000)
    assert [s.node("fc2").params["out_features"] for s in loads] == [83]
    qtbot.waitUntil(
        lambda: (
            window.bridge.worker._session._spec is not None
            and window.bridge.worker._session._spec.node("fc2").params["out_features"] == 83
        ),
        timeout=10_000,
    )


def preset_menu_action(window, name):
    summary = PRESETS[name].summary
    presets = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Presets")
    return next(a for family in presets.actions() for a in family.menu().actions() if a.toolTip() == summary)


# ---- 1. cycles and self-loops --------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["drop", "open"])
@pytest.mark.parametrize(
    "edge, culprit", [(("conv2", "conv2"), "conv2"), (("fc3", "relu1"), "relu1")], ids=["self-loop", "cycle"]
)
def test_a_spec_with_a_cycle_is_refused_with_its_message_and_the_model_stays(
    qtbot, window, monkeypatch, tmp_path, how, edge, culprit
):
    loads = spy_loads(window, monkeypatch)
    builder, before, running = window.builder, window.builder.doc.spec, window.bridge.worker._session._spec
    path = write_spec(tmp_path / "looped.json", lenet_with(edges=[edge]))
    if how == "drop":
        drop(window, path)
    else:
        open_with_dialog(window, monkeypatch, path)
    qtbot.waitUntil(lambda: "cycle" in builder.problem.text(), timeout=5000)
    assert f"{culprit}: is part of a cycle" in builder.problem.text()
    assert builder.doc.spec == before and len(builder.scene.nodes) == 13
    assert window.bridge.worker._session._spec is running and loads == []
    settle_valid_edit(qtbot, window, loads)  # the window keeps working


def test_layout_places_every_node_of_a_graph_with_cycles():
    spec = ModelSpec.from_dict(lenet_with(edges=[("conv2", "conv2"), ("fc3", "relu1"), ("relu4", "input")]))
    positions, routes = layered(spec)
    assert set(positions) == {n.id for n in spec.nodes}
    assert ("conv2", "conv2") not in routes and ("fc3", "relu1") not in routes


# ---- 2. unsaved edits ------------------------------------------------------------------------------------------
def test_loading_a_preset_over_unsaved_edits_asks_and_cancel_keeps_everything(qtbot, window, monkeypatch):
    builder = window.builder
    builder.set_param("fc1", "out_features", 100)
    builder.set_param("fc2", "out_features", 50)
    edited, box_text = builder.doc.spec, builder.presets.currentText()
    assert not builder.undo_stack.isClean()
    asked = answer_questions(monkeypatch, Button.Cancel, Button.Cancel)
    chosen = []
    builder.model_chosen.connect(chosen.append)

    builder.presets.activated.emit(builder.presets.findData(OTHER))  # the preset box
    preset_menu_action(window, OTHER).trigger()  # the Presets menu
    assert len(asked) == 2 and all("not saved" in text for _, text in asked)
    assert builder.doc.spec == edited and chosen == []
    assert builder.undo_stack.count() == 2 and builder.undo_stack.index() == 2  # the history is kept
    assert builder.presets.currentText() == box_text
    assert "edits are kept" in builder.problem.text()
    builder.undo_stack.undo()
    assert builder.doc.spec.node("fc2").params["out_features"] == 84


def test_discard_loads_the_preset_and_starts_a_fresh_history(qtbot, window, monkeypatch):
    builder = window.builder
    builder.set_param("fc1", "out_features", 100)
    asked = answer_questions(monkeypatch, Button.Discard)
    with qtbot.waitSignal(builder.model_chosen):
        preset_menu_action(window, OTHER).trigger()
    assert len(asked) == 1 and builder.doc.spec == get_preset(OTHER)
    assert builder.undo_stack.count() == 0 and builder.undo_stack.isClean()
    assert builder.presets.currentData() == OTHER


@pytest.mark.parametrize("how", ["drop", "open"])
def test_opening_a_spec_over_unsaved_edits_can_save_them_first(qtbot, window, monkeypatch, tmp_path, how):
    builder = window.builder
    builder.set_param("fc1", "out_features", 100)
    edited = builder.doc.spec
    incoming = edits.set_param(get_preset("lenet5"), "fc2", "out_features", 60)
    incoming.save(tmp_path / "incoming.json")
    asked = answer_questions(monkeypatch, Button.Save)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(tmp_path / "mine.json"), "")))
    with qtbot.waitSignal(builder.model_chosen, timeout=5000):
        if how == "drop":
            drop(window.viewer, tmp_path / "incoming.json")
        else:
            open_with_dialog(window, monkeypatch, tmp_path / "incoming.json")
    assert len(asked) == 1
    assert ModelSpec.load(tmp_path / "mine.json") == edited  # the edits were saved first
    assert builder.doc.spec == incoming and builder.undo_stack.isClean()


def test_a_save_cancelled_in_the_file_dialog_keeps_the_edits(qtbot, window, monkeypatch, tmp_path):
    builder = window.builder
    builder.set_param("fc1", "out_features", 100)
    edited = builder.doc.spec
    get_preset(OTHER).save(tmp_path / "other.json")
    answer_questions(monkeypatch, Button.Save)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    drop(window, tmp_path / "other.json")
    qtbot.waitUntil(lambda: "edits are kept" in builder.problem.text(), timeout=5000)
    assert builder.doc.spec == edited and builder.undo_stack.count() == 1


def test_after_saving_the_spec_nothing_asks(qtbot, window, monkeypatch, tmp_path):
    builder = window.builder
    builder.set_param("fc1", "out_features", 100)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(tmp_path / "s.json"), "")))
    builder.save_action.trigger()
    assert builder.undo_stack.isClean() and ModelSpec.load(tmp_path / "s.json") == builder.doc.spec
    asked = answer_questions(monkeypatch)  # asking now would pop from an empty list and fail the test
    with qtbot.waitSignal(builder.model_chosen):
        builder.load_preset(OTHER)
    assert asked == [] and builder.doc.spec == get_preset(OTHER)


# ---- 3. a spec the builder marks invalid never replaces the model ------------------------------------------------
@pytest.mark.parametrize("reserved", ["forward", "training", "spec"])
def test_a_spec_file_with_a_reserved_node_name_is_refused(qtbot, window, monkeypatch, tmp_path, reserved):
    loads = spy_loads(window, monkeypatch)
    builder, before, running = window.builder, window.builder.doc.spec, window.bridge.worker._session._spec
    drop(window, write_spec(tmp_path / "reserved.json", lenet_with(rename={"conv1": reserved})))
    qtbot.waitUntil(lambda: "reserved name" in builder.problem.text(), timeout=5000)
    assert builder.doc.spec == before and window.bridge.worker._session._spec is running and loads == []
    settle_valid_edit(qtbot, window, loads)


def test_renaming_a_node_to_a_reserved_name_marks_it_and_never_reaches_the_worker(qtbot, window, monkeypatch):
    loads = spy_loads(window, monkeypatch)
    builder, running = window.builder, window.bridge.worker._session._spec
    builder.scene.select_nodes(["conv1"])
    builder.properties.rename_requested.emit("conv1", "forward")  # what the id field sends
    assert builder.doc.spec.node("forward")  # the edit is made (and undoable), but marked
    assert "reserved name" in builder.scene.nodes["forward"].error
    assert "⚠ forward:" in builder.problem.text() and "d0312d" in builder.problem.styleSheet()
    assert not builder.doc.valid and not builder._edit_timer.isActive()
    builder.undo_stack.undo()
    assert builder.doc.valid
    settle_valid_edit(qtbot, window, loads)  # only the valid spec arrives
    assert window.bridge.worker._session._spec is not running


def test_the_window_loads_only_the_builders_valid_spec(qtbot, window, monkeypatch):
    loads = spy_loads(window, monkeypatch)
    builder = window.builder
    stray = ModelSpec.from_dict(lenet_with(rename={"conv1": "forward"}))
    builder.model_chosen.emit(stray)  # a signal carrying anything but the builder's valid spec is ignored
    builder.spec_edited.emit(stray)
    builder.spec_edited.emit(edits.set_param(builder.doc.spec, "fc1", "out_features", 64))
    assert loads == []
    settle_valid_edit(qtbot, window, loads)


# ---- 4. spec files are read off the GUI thread; pipes and devices are refused ------------------------------------
def test_a_spec_file_is_read_off_the_gui_thread(qtbot, window, monkeypatch, tmp_path):
    builder = window.builder
    incoming = edits.set_param(get_preset("lenet5"), "fc2", "out_features", 60)
    incoming.save(tmp_path / "slow.json")
    real_load, release, readers = ModelSpec.load.__func__, threading.Event(), []

    def slow_load(cls, path):
        readers.append(threading.current_thread().name)
        assert release.wait(10), "the test never released the read"
        return real_load(cls, path)

    monkeypatch.setattr(ModelSpec, "load", classmethod(slow_load))
    drop(window, tmp_path / "slow.json")  # returns while the read is still waiting
    qtbot.waitUntil(lambda: bool(readers), timeout=5000)
    assert readers[0].startswith("lumen-spec") and "Opening slow.json" in builder.problem.text()
    builder.set_param("fc1", "out_features", 100)  # the window answers meanwhile
    answer_questions(monkeypatch, Button.Discard)
    with qtbot.waitSignal(builder.model_chosen, timeout=5000):
        release.set()
    assert builder.doc.spec == incoming


def test_only_the_newest_of_two_opened_specs_is_shown(qtbot, window, monkeypatch, tmp_path):
    builder = window.builder
    first = edits.set_param(get_preset("lenet5"), "fc2", "out_features", 60)
    first.save(tmp_path / "first.json")
    get_preset(OTHER).save(tmp_path / "second.json")
    real_load, release = ModelSpec.load.__func__, threading.Event()

    def load(cls, path):
        release.wait(10)  # both requests are queued before either is read
        return real_load(cls, path)

    monkeypatch.setattr(ModelSpec, "load", classmethod(load))
    chosen = []
    builder.model_chosen.connect(chosen.append)
    drop(window, tmp_path / "first.json")
    drop(window, tmp_path / "second.json")
    release.set()
    qtbot.waitUntil(lambda: bool(chosen), timeout=5000)
    qtbot.waitUntil(lambda: window.bridge.worker._session._spec == get_preset(OTHER), timeout=10_000)
    assert [s.name for s in chosen] == [get_preset(OTHER).name] and builder.doc.spec == get_preset(OTHER)


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge"])
def test_a_spec_path_that_is_not_a_small_regular_file_gets_a_clear_message(qtbot, window, monkeypatch, tmp_path, kind):
    loads = spy_loads(window, monkeypatch)
    builder, before = window.builder, window.builder.doc.spec
    path = tmp_path / "spec.json"
    expected = {
        "fifo": "not a regular file (a pipe",
        "device": "not a regular file",
        "folder": "is a folder",
        "huge": "more than a model spec may be",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)  # no writer: a blocking read would wait forever
    elif kind == "device":
        path.symlink_to("/dev/zero")  # endless: a plain read would fill the memory
    elif kind == "folder":
        path.mkdir()
    else:
        with open(path, "wb") as f:
            f.truncate(64 * 2**20)  # sparse: 64 MiB of nothing
    drop(window, path)
    qtbot.waitUntil(lambda: expected in builder.problem.text(), timeout=5000)
    assert "spec.json" in builder.problem.text()
    assert builder.doc.spec == before and loads == []
    settle_valid_edit(qtbot, window, loads)


# ---- 5. models too big for this machine ----------------------------------------------------------------------
def test_a_model_too_big_for_the_memory_limit_is_marked_on_its_node(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("LUMEN_MEMORY_LIMIT", "8M")  # LeNet-5 needs about 0.3 MB
    loads = spy_loads(window, monkeypatch)
    builder, running = window.builder, window.bridge.worker._session._spec
    builder.set_param("fc1", "out_features", 100_000)  # 160 MB of weights in fc1 alone
    error = builder.doc.error
    assert error is not None and error.node == "fc1" and "LUMEN_MEMORY_LIMIT" in error.reason
    assert "more than Lumen's limit" in builder.scene.nodes["fc1"].error
    assert "⚠ fc1:" in builder.problem.text() and not builder._edit_timer.isActive()
    big = builder.doc.spec
    big.save(tmp_path / "big.json")
    builder.undo_stack.undo()

    drop(window, tmp_path / "big.json")  # the same model from a file is refused before it replaces anything
    qtbot.waitUntil(lambda: "more than Lumen's limit" in builder.problem.text(), timeout=5000)
    assert builder.doc.spec.node("fc1").params["out_features"] == 120 and loads == []

    window.bridge.worker.load_model(big)  # and the engine refuses it itself, keeping its model
    qtbot.waitUntil(lambda: "more than Lumen's limit" in window.statusBar().currentMessage(), timeout=10_000)
    assert window.bridge.worker._session._spec is running


def test_a_billion_channels_are_refused_on_any_machine(window):
    builder = window.builder
    builder.set_param("conv2", "out_channels", 1_000_000_000)
    assert builder.doc.error is not None and "more than Lumen's limit" in builder.doc.error.reason
    assert builder.scene.nodes[builder.doc.error.node].error


# ---- 6. Save run… --------------------------------------------------------------------------------------------
def save_via_menu(window, monkeypatch, folder):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    next(a for a in file_menu.actions() if a.text() == "Save run…").trigger()


def test_save_run_asks_before_replacing_a_run(qtbot, window, monkeypatch, tmp_path):
    saved = []
    window.bridge.status.connect(
        lambda event: saved.append(event.message) if "saved the run" in event.message else None
    )
    sent = []
    real_save = window.bridge.worker.save
    monkeypatch.setattr(
        window.bridge.worker, "save", lambda folder, force=False: (sent.append(force), real_save(folder, force=force))
    )
    folder = tmp_path / "run"
    folder.mkdir()
    asked = answer_questions(monkeypatch, Button.Cancel, Button.Yes)

    save_via_menu(window, monkeypatch, folder)  # an empty folder: saved without a question
    qtbot.waitUntil(lambda: len(saved) == 1, timeout=10_000)
    assert asked == [] and sent == [False] and read_run_info(folder)  # a complete run
    assert ModelSpec.load(folder / "model.json").node("fc2").params["out_features"] == 84

    window.builder.set_param("fc2", "out_features", 83)
    qtbot.waitUntil(
        lambda: window.bridge.worker._session._spec.node("fc2").params["out_features"] == 83, timeout=10_000
    )
    save_via_menu(window, monkeypatch, folder)  # the folder holds a run now: asked, and cancelled
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=10_000)  # the folder is checked off the GUI thread
    assert len(asked) == 1 and "already holds a saved run" in asked[0][1] and sent == [False]
    assert "keeps its run" in window.statusBar().currentMessage()

    save_via_menu(window, monkeypatch, folder)  # asked again, and replaced
    qtbot.waitUntil(lambda: len(saved) == 2, timeout=10_000)
    assert len(asked) == 2 and sent == [False, True]
    assert ModelSpec.load(folder / "model.json").node("fc2").params["out_features"] == 83


@pytest.mark.parametrize("kind", ["other files", "below a file"])
def test_save_run_refuses_a_folder_it_cannot_use_before_starting(qtbot, window, monkeypatch, tmp_path, kind):
    sent = []
    monkeypatch.setattr(window.bridge.worker, "save", lambda *a, **k: sent.append(a))
    asked = answer_questions(monkeypatch)
    if kind == "other files":
        folder = tmp_path / "photos"
        folder.mkdir()
        (folder / "holiday.jpg").write_bytes(b"not a run")
        expected = "holds other files"
    else:
        (tmp_path / "notes.txt").write_text("a file")
        folder = tmp_path / "notes.txt" / "run"
        expected = "is a file"
    save_via_menu(window, monkeypatch, folder)
    qtbot.waitUntil(
        lambda: expected in window.statusBar().currentMessage(), timeout=10_000
    )  # checked off the GUI thread
    assert sent == [] and asked == []
    assert expected in window.viewer.message.text()
