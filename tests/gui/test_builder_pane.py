"""The visual builder, driven as a user would: canvas, palette drops, port drags, property edits, undo,
copy/paste, spec files, and the main window's rule that edits never disturb a running training."""

import json
import time

import pytest
import torch
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QSpinBox, QToolBar

from lumen.engine.events import RunState
from lumen.engine.layers import LAYERS
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec, Node
from lumen.gui.panes.builder import edits, style
from lumen.gui.panes.builder.canvas import NODE_H, NODE_W
from lumen.gui.panes.builder.layout import layered
from lumen.gui.panes.builder.pane import BuilderPane

LENET_PARAMS = 61_706


@pytest.fixture
def pane(qtbot):
    p = BuilderPane()
    qtbot.addWidget(p)
    p.resize(1000, 800)
    p.show()
    p.load_preset("lenet5")
    return p


def conv_params(c_in, c_out, k):
    return sum(p.numel() for p in torch.nn.Conv2d(c_in, c_out, k).parameters())


def total_of(pane):
    return int(pane.total.text().split("<b>")[1].split("</b>")[0].replace(",", ""))


def port_pos(pane, node_id, direction):
    item = pane.scene.nodes[node_id]
    port = item.in_port if direction == "in" else item.out_port
    return pane.view.mapFromScene(port.scenePos())


def send_drop(widget, mime, pos):
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    drop = QDropEvent(
        QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, drop)
    return enter.isAccepted(), drop.isAccepted()


def file_mime(path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


# ---- canvas ------------------------------------------------------------------------------------------------
def test_lenet5_canvas_has_every_node_and_edge_with_shapes_on_the_edges(pane):
    assert len(pane.scene.nodes) == 13 and len(pane.scene.edges) == 12
    assert pane.table.rowCount() == 13 and total_of(pane) == LENET_PARAMS
    # The shapes drawn on edges are what torch's own layers produce.
    x = torch.zeros(1, 1, 28, 28)
    conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)(x)
    pool1 = torch.nn.MaxPool2d(2)(conv1)
    conv2 = torch.nn.Conv2d(6, 16, 5)(pool1)
    assert pane.scene.edges[("conv1", "relu1")].label == "×".join(map(str, conv1.shape[1:]))
    assert pane.scene.edges[("pool1", "conv2")].label == "6×14×14" == "×".join(map(str, pool1.shape[1:]))
    assert pane.scene.edges[("conv2", "relu2")].label == "×".join(map(str, conv2.shape[1:]))
    assert pane.scene.edges[("pool2", "flatten")].label == "16×5×5"
    assert pane.scene.nodes["flatten"].shape_text == "400"
    # Auto-layout: no two nodes overlap, and the chain runs top to bottom.
    rects = [item.sceneBoundingRect() for item in pane.scene.nodes.values()]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    ys = [pane.scene.nodes[n].pos().y() for n in pane.doc.spec.topological_order()]
    assert ys == sorted(ys)


def test_summary_tab_shows_costs_receptive_fields_and_formulas(pane):
    from lumen.gui.panes.builder.summary import COLUMNS

    table = pane.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "conv1")
    cell = {name: table.item(row, c).text() for c, name in enumerate(COLUMNS)}
    assert cell["Output shape"] == "6×28×28" and cell["Parameters"] == "156"
    assert cell["MACs"] == f"{6 * 28 * 28 * 25:,}"  # one 5×5 window per output value
    assert cell["Activation memory"] == f"{6 * 28 * 28 * 4 / 1024:.1f} KB"
    assert cell["Receptive field"] == "5"
    assert cell["Dense equivalent"] == f"{784 * 4704 + 4704:,}"  # 28×28 in, 6×28×28 out, fully connected
    assert cell["Formula"] == "W_out = (W − F + 2P)/S + 1 = (28 − 5 + 4)/1 + 1 = 28"


def test_add_a_layer_from_the_palette_and_connect_it_by_dragging_ports(qtbot, pane):
    pane.palette.search.setText("transpose")
    assert pane.palette.visible_types() == ["conv_transpose2d"]  # the search narrows the palette to one type
    pane.palette.search.setText("relu")
    assert "relu" in pane.palette.visible_types() and "conv2d" not in pane.palette.visible_types()
    group = next(
        pane.palette.tree.topLevelItem(i)
        for i in range(pane.palette.tree.topLevelItemCount())
        if not pane.palette.tree.topLevelItem(i).isHidden()
    )
    item = next(group.child(i) for i in range(group.childCount()) if group.child(i).text(0) == "relu")
    mime = pane.palette.tree.mimeData([item])
    fc3 = pane.scene.nodes["fc3"]
    target = pane.view.mapFromScene(fc3.pos() + QPointF(NODE_W / 2 + 260, NODE_H * 2))
    entered, dropped = send_drop(pane.view.viewport(), mime, target)
    assert entered and dropped
    assert "relu_1" in pane.scene.nodes  # a fresh id: relu1..relu4 exist
    assert pane.doc.spec.node("relu_1").type == "relu"
    assert not pane.doc.valid and "exactly one output" in pane.problem.text()  # fc3 and relu_1 both end

    # Drag from fc3's output port to relu_1's input port.
    start, end = port_pos(pane, "fc3", "out"), port_pos(pane, "relu_1", "in")
    viewport = pane.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, (start + end) / 2)
    qtbot.mouseMove(viewport, end)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    qtbot.waitUntil(lambda: ("fc3", "relu_1") in pane.doc.spec.edges, timeout=3000)
    assert pane.doc.valid and pane.scene.edges[("fc3", "relu_1")].label == "10"

    # Connections that would loop back or overfill a layer are refused with a message.
    before = pane.doc.spec
    assert not pane.connect_nodes("relu_1", "conv1")
    assert "cycle" in pane.problem.text() and pane.doc.spec == before
    assert not pane.connect_nodes("input", "conv2")
    assert "already has pool1" in pane.problem.text() and pane.doc.spec == before
    pane.undo_stack.undo()
    pane.undo_stack.undo()
    assert pane.doc.spec == get_preset("lenet5")


def test_double_click_adds_below_the_selected_node_and_feeds_it(pane):
    pane.scene.select_nodes(["fc3"])
    new = pane.add_layer("dropout")
    assert new == "dropout_1" and ("fc3", "dropout_1") in pane.doc.spec.edges and pane.doc.valid


def test_editing_a_parameter_updates_shapes_and_counts_and_undoes_exactly(qtbot, pane):
    original = pane.doc.spec
    pane.scene.select_nodes(["conv1"])
    spin = pane.properties.editors["out_channels"]
    assert isinstance(spin, QSpinBox) and spin.value() == 6
    spin.setValue(8)
    assert pane.doc.spec.node("conv1").params["out_channels"] == 8
    assert pane.scene.edges[("pool1", "conv2")].label == "8×14×14"  # conv2's input
    expected = (
        LENET_PARAMS - conv_params(1, 6, 5) - conv_params(6, 16, 5) + conv_params(1, 8, 5) + conv_params(8, 16, 5)
    )
    assert total_of(pane) == expected

    pane.undo_action.trigger()
    assert pane.doc.spec == original and total_of(pane) == LENET_PARAMS
    assert pane.scene.edges[("pool1", "conv2")].label == "6×14×14"
    pane.redo_action.trigger()
    assert pane.doc.spec.node("conv1").params["out_channels"] == 8 and total_of(pane) == expected


def test_rename_is_validated_and_undoable(pane):
    pane.scene.select_nodes(["fc1"])
    pane.properties.id_edit.setText("relu1")
    pane.properties.id_edit.editingFinished.emit()
    assert "already a node called relu1" in pane.problem.text() and "fc1" in pane.scene.nodes
    pane.scene.select_nodes(["fc1"])
    pane.properties.id_edit.setText("2fast")
    pane.properties.id_edit.editingFinished.emit()
    assert "letters, digits" in pane.problem.text()
    pane.scene.select_nodes(["fc1"])
    pane.properties.id_edit.setText("classifier.0")
    pane.properties.id_edit.editingFinished.emit()
    assert ("flatten", "classifier.0") in pane.doc.spec.edges and pane.doc.valid
    pane.undo_stack.undo()
    assert pane.doc.spec == get_preset("lenet5")


def test_delete_and_undo(qtbot, pane):
    original, positions = pane.doc.spec, dict(pane.doc.snapshot.positions)
    pane.scene.select_nodes(["conv2"])
    pane.delete_action.trigger()
    assert "conv2" not in pane.scene.nodes and len(pane.scene.edges) == 10
    assert not pane.doc.valid and "found 2: pool1, fc3" in pane.problem.text()  # two loose ends now
    pane.undo_action.trigger()
    assert pane.doc.spec == original and pane.doc.snapshot.positions == positions
    # The same from the keyboard: Del on the canvas, Ctrl+Z.
    pane.activateWindow()
    pane.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is pane, timeout=3000)
    pane.scene.select_nodes(["fc1"])
    qtbot.keyClick(pane.view, Qt.Key.Key_Delete)
    assert "fc1" not in pane.scene.nodes
    qtbot.keyClick(pane.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert pane.doc.spec == original
    # An edge alone can be selected and deleted too.
    pane.scene.clearSelection()
    pane.scene.edges[("relu4", "fc3")].setSelected(True)
    pane.delete_action.trigger()
    assert ("relu4", "fc3") not in pane.doc.spec.edges and len(pane.doc.spec.nodes) == 13
    pane.undo_action.trigger()
    assert pane.doc.spec == original


def test_moving_a_node_is_undoable(qtbot, pane):
    item = pane.scene.nodes["fc2"]
    before = item.pos()
    start = pane.view.mapFromScene(item.pos() + QPointF(40, NODE_H - 10))
    viewport = pane.view.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(viewport, start + QPoint(30, 5))
    qtbot.mouseMove(viewport, start + QPoint(120, 20))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=start + QPoint(120, 20))
    qtbot.waitUntil(lambda: pane.undo_stack.count() == 1, timeout=3000)
    assert pane.doc.snapshot.positions["fc2"][0] > before.x() + 50
    pane.undo_stack.undo()
    assert pane.scene.nodes["fc2"].pos() == before


def test_copy_paste_duplicates_nodes_with_fresh_ids(pane):
    pane.scene.select_nodes(["conv1", "relu1", "pool1"])
    pane.copy_action.trigger()
    fragment = json.loads(QApplication.clipboard().text())
    assert [n["id"] for n in fragment["nodes"]] == ["conv1", "relu1", "pool1"]
    pasted = pane.paste()
    assert sorted(pasted) == ["conv1_1", "pool1_1", "relu1_1"]
    spec = pane.doc.spec
    assert spec.node("conv1_1").params == spec.node("conv1").params
    assert ("conv1_1", "relu1_1") in spec.edges and ("relu1_1", "pool1_1") in spec.edges
    assert len(spec.nodes) == 16 and len(spec.edges) == 14  # only the edges among the copied nodes
    assert sorted(pane.scene.selected_node_ids()) == sorted(pasted)
    assert pane.paste() == ["conv1_2", "relu1_2", "pool1_2"]
    pane.undo_stack.undo()
    pane.undo_stack.undo()
    assert pane.doc.spec == get_preset("lenet5")
    QApplication.clipboard().setText("not nodes")
    assert pane.paste() == [] and "no Lumen nodes" in pane.problem.text()


def test_spec_files_round_trip_and_bad_files_change_nothing(qtbot, pane, tmp_path):
    pane.set_param("fc1", "out_features", 100)
    edited = pane.doc.spec
    pane.save_spec(tmp_path / "mine.json")
    pane.load_preset("lenet5")
    with qtbot.waitSignal(pane.model_chosen) as chosen:  # read on the reader's thread, shown when read
        pane.open_spec(str(tmp_path / "mine.json"))
    assert chosen.args[0] == edited and pane.doc.spec == edited
    assert ModelSpec.load(tmp_path / "mine.json") == edited

    (tmp_path / "bad.json").write_text("{ not json")
    broken = json.loads(edited.to_json())
    broken["nodes"][1]["params"]["kernel_size"] = 40
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    for name, message in (("bad.json", "not valid JSON"), ("broken.json", "conv1: kernel 40×40 is larger")):
        pane.open_spec(str(tmp_path / name))
        qtbot.waitUntil(lambda message=message: message in pane.problem.text(), timeout=5000)
        assert pane.doc.spec == edited and len(pane.scene.nodes) == 13


# ---- the main window -----------------------------------------------------------------------------------------
def spy_loads(window, monkeypatch):
    loads = []
    real = window.bridge.worker.load_model
    monkeypatch.setattr(window.bridge.worker, "load_model", lambda spec, *a: (loads.append(spec), real(spec, *a)))
    return loads


def test_a_breaking_edit_marks_the_node_and_never_reaches_the_worker(qtbot, window, monkeypatch):
    loads = spy_loads(window, monkeypatch)
    builder = window.builder
    builder.scene.select_nodes(["conv2"])
    field = builder.properties.editors["kernel_size"]
    field.setText("3, x")  # not a number: refused at once, nothing changes
    field.editingFinished.emit()
    assert "not a list of whole numbers" in builder.problem.text() and field.text() == "5"
    field.setText("30")
    field.editingFinished.emit()
    assert builder.doc.spec.node("conv2").params["kernel_size"] == 30
    node = builder.scene.nodes["conv2"]
    assert node.error and "larger than its 14×14 input" in node.error and "30×30" in node.error
    assert "conv2: kernel 30×30" in builder.problem.text() and "d0312d" in builder.problem.styleSheet()
    assert "larger than" in node.toolTip()
    qtbot.wait(600)
    assert loads == []
    builder.set_param("conv2", "kernel_size", 3)  # valid again: sent once, after the debounce
    assert builder.scene.nodes["conv2"].error is None
    qtbot.waitUntil(lambda: len(loads) == 1, timeout=3000)
    assert loads[0].node("conv2").params["kernel_size"] == 3
    qtbot.waitUntil(
        lambda: (
            window.viewer.frame is not None  # the reloaded model's first frame (the last model's were dropped)
            and window.viewer.frame.layers[1].shape[1:] == (12, 12)
        ),
        timeout=10_000,
    )  # 14 − 3 + 1


def test_editing_while_training_does_not_disturb_the_run(qtbot, window, monkeypatch):
    window.monitor.epochs.setValue(100)
    toolbar = window.findChild(QToolBar, "training_toolbar")
    qtbot.mouseClick(toolbar.widgetForAction(window.train_action), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.state is RunState.TRAINING and window.progress.value() > 0, timeout=30_000)
    loads = spy_loads(window, monkeypatch)
    window.builder.set_param("fc1", "out_features", 64)
    qtbot.waitUntil(lambda: window.pending_spec is not None, timeout=3000)
    assert "changes apply to the next run" in window.statusBar().currentMessage()
    step = window.progress.value()
    qtbot.waitUntil(lambda: window.progress.value() > step + 2, timeout=20_000)  # still training
    assert window.state is RunState.TRAINING and loads == []
    assert window.bridge.worker._session._spec.node("fc1").params["out_features"] == 120  # the run keeps its model

    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=10_000)
    window.monitor.epochs.setValue(1)
    window.train_action.trigger()  # loads the pending spec first, then trains it
    assert [s.node("fc1").params["out_features"] for s in loads] == [64] and window.pending_spec is None
    qtbot.waitUntil(lambda: window.state is RunState.TRAINING, timeout=30_000)
    assert window.bridge.worker._session._spec.node("fc1").params["out_features"] == 64
    window.stop_action.trigger()
    qtbot.waitUntil(lambda: window.state is RunState.FINISHED, timeout=10_000)


def test_dropping_a_spec_on_the_window_opens_it(qtbot, window, tmp_path):
    spec = edits.set_param(get_preset("lenet5"), "fc2", "out_features", 50)
    spec.save(tmp_path / "spec.json")
    with qtbot.waitSignal(window.builder.model_chosen):
        send_drop(window.viewer, file_mime(tmp_path / "spec.json"), window.viewer.rect().center())
    assert window.builder.doc.spec == spec
    (tmp_path / "junk.json").write_text("[]")
    send_drop(window, file_mime(tmp_path / "junk.json"), window.rect().center())
    qtbot.waitUntil(lambda: "not a Lumen model spec" in window.builder.problem.text(), timeout=5000)
    assert window.builder.doc.spec == spec


# ---- the pure parts: edits and layout --------------------------------------------------------------------------
def test_edit_rules():
    spec = get_preset("lenet5")
    assert edits.unique_id(spec, "conv2d") == "conv2d_1"
    assert edits.unique_id({"conv2d_1", "conv2d_2"}, "conv2d_2") == "conv2d_3"
    with pytest.raises(edits.EditError, match="cycle"):
        edits.connect(spec, "fc3", "conv1")
    with pytest.raises(edits.EditError, match="model's input"):
        edits.connect(spec, "fc3", "input")
    with pytest.raises(edits.EditError, match="itself"):
        edits.connect(spec, "fc3", "fc3")
    merged = edits.add_nodes(spec, [Node("sum", "add")])
    merged = edits.connect(edits.connect(merged, "relu1", "sum"), "pool1", "sum")  # merges take many
    assert merged.inputs_of("sum") == ["relu1", "pool1"]
    assert LAYERS["add"].arity is None


def test_layout_puts_branches_side_by_side_and_routes_long_edges_around_nodes():
    nodes = (
        [Node("input", "input", {"shape": [8, 8, 8]})]
        + [Node(f"b{i}", "relu") for i in range(4)]
        + [Node("deep", "relu"), Node("cat", "concat")]
    )
    edges = (
        [("input", f"b{i}") for i in range(4)]
        + [("b0", "deep")]
        + [(f"b{i}", "cat") for i in range(1, 4)]
        + [("deep", "cat")]
    )
    spec = ModelSpec("branches", tuple(nodes), tuple(edges))
    positions, routes = layered(spec)
    ys = {positions[f"b{i}"][1] for i in range(4)}
    assert len(ys) == 1  # the four branches share a layer
    xs = sorted(positions[f"b{i}"][0] for i in range(4))
    assert all(b - a >= NODE_W for a, b in zip(xs, xs[1:]))
    for i in range(1, 4):  # b1..b3 → cat skip the "deep" layer through slots that avoid the deep node
        (bend,) = routes[(f"b{i}", "cat")]
        assert not positions["deep"][0] <= bend[0] <= positions["deep"][0] + NODE_W


def test_layout_of_a_hundred_nodes_is_fast_and_overlap_free():
    layers = []
    for block in range(20):  # residual blocks: a → b → c, plus a skip into the add
        layers += [(f"a{block}", "relu", {}), (f"b{block}", "relu", {}), (f"c{block}", "relu", {})]
    spec = ModelSpec.sequential("deep", (4, 8, 8), layers)
    nodes, edges = list(spec.nodes), list(spec.edges)
    for block in range(1, 20):
        add = Node(f"add{block}", "add")
        nodes.append(add)
        edges = [e for e in edges if e != (f"c{block - 1}", f"a{block}")]
        edges += [(f"c{block - 1}", add.id), (f"a{block - 1}", add.id), (add.id, f"a{block}")]
    spec = ModelSpec("deep", tuple(nodes), tuple(edges))
    began = time.perf_counter()
    positions, _ = layered(spec)
    assert time.perf_counter() - began < 0.5
    boxes = sorted(positions.values())
    for i, (x, y) in enumerate(boxes):
        for x2, y2 in boxes[i + 1 :]:
            assert abs(x - x2) >= NODE_W or abs(y - y2) >= NODE_H


def test_typed_values_are_read_by_domain():
    from lumen.gui.panes.builder.properties import parse_value

    assert parse_value("5", "int_or_pair") == 5
    assert parse_value("5x3", "int_or_pair") == parse_value("[5, 3]", "int_or_pair") == [5, 3]
    assert parse_value("1, 28, 28", "shape") == [1, 28, 28] and parse_value("7", "shape") == [7]
    assert parse_value("same", "int_or_same") == "same" and parse_value("2", "int_or_same") == 2
    assert parse_value("0.25", "prob") == 0.25 and parse_value("", "posint") is None
    for bad in ("3, x", "3,", "a×b"):
        with pytest.raises(ValueError, match="whole numbers"):
            parse_value(bad, "int_or_pair")


def test_every_layer_family_has_a_palette_group_and_a_colour(pane):
    for layer in LAYERS.values():
        assert layer.family in style.FAMILIES, layer.name
        assert style.family(layer.name) == style.FAMILIES[layer.family]
    assert style.family("from_a_newer_lumen") == style.OTHER
    groups = {
        pane.palette.tree.topLevelItem(i).text(0): pane.palette.tree.topLevelItem(i)
        for i in range(pane.palette.tree.topLevelItemCount())
    }
    assert list(groups) == [group for group, _ in style.FAMILIES.values()]  # in the table's order, none empty
    autoencoder = groups["Autoencoder"]
    assert {autoencoder.child(i).text(0) for i in range(autoencoder.childCount())} == {
        "bottleneck",
        "noise",
        "variational_bottleneck",
    }  # by family, whatever the names say


def test_every_required_parameter_has_a_starting_value_and_no_other_does():
    required = {
        key
        for layer in LAYERS.values()
        for key, default in layer.defaults.items()
        if default is None and key not in layer.optional
    }
    assert set(edits.STARTERS) == required
    spec = ModelSpec.sequential("s", (1, 28, 28), [])
    for layer_type in LAYERS:
        node = edits.new_node(spec, layer_type)
        LAYERS[layer_type].resolve(node.params)  # every parameter present and in its domain
