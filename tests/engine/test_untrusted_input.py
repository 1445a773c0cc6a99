"""Untrusted input in the engine: the one file reader, spec limits, linear-time graphs, the memory budget, the
objective check, atomic writes, complete-or-absent run folders, complex weights, and a fuzz test of the loader."""

import errno
import json
import os
import threading
import time

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lumen.engine.errors import DataError, LumenError, SpecError
from lumen.engine.graph import budget
from lumen.engine.graph.model import build_model, infer_shapes
from lumen.engine.io import runs
from lumen.engine.presets import PRESETS, get_preset
from lumen.engine.spec.model_spec import MAX_NODES, ModelSpec
from lumen.engine.training.loop import TrainConfig, Training
from lumen.engine.untrusted import (
    MAX_DEPTH,
    UnreadableFile,
    atomic_write,
    nesting_depth,
    parse_json,
    printable,
    read_json,
)
from tests.support import relu_chain


def lenet_dict():
    return get_preset("lenet5").to_dict()


# ---- the reader ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested 100000 deep"),
        ('{"a": ' * 65 + "1" + "}" * 65, f"at most {MAX_DEPTH} levels"),
        ("1" * 5000, "has 5000 digits"),
        ("9223372036854775808", "does not fit in 64 bits"),
        ("[NaN]", "NaN is not a number JSON allows"),
        ("[-Infinity]", "-Infinity is not a number"),
        ("1e999", "is too large"),
        ("", "empty"),
        ("  \n", "empty"),
        ('{"a": 1,}', "not valid JSON (line 1, column 9"),
    ],
)
def test_parse_json_refuses_in_one_line(text, message):
    with pytest.raises(UnreadableFile, match=None) as caught:
        parse_json(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_parse_json_reads_what_a_spec_holds():
    assert parse_json('{"a": [1, -2, 2.5e3, "[[[[", true, null], "b": "\\"]]"}') == {
        "a": [1, -2, 2500.0, "[[[[", True, None],
        "b": '"]]',
    }
    assert parse_json(str(2**63 - 1)) == 2**63 - 1


def test_nesting_depth_is_linear_even_for_hostile_strings():
    assert nesting_depth('[["]]]]"], {"a": "[{"}]') == 2
    hostile = '"\\"' * 500_000 + "\\"  # every quote starts an unterminated string: was quadratic for a naive regex
    began = time.perf_counter()
    nesting_depth(hostile)
    assert time.perf_counter() - began < 2


def test_read_json_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "spec.json"
    os.mkfifo(fifo)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("error", _error(read_json, fifo)), daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert "not a regular file" in result["error"]
    assert "not a regular file" in _error(read_json, "/dev/zero")
    assert "is a folder" in _error(read_json, tmp_path)
    assert "no such file" in _error(read_json, tmp_path / "missing.json")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (9 * 2**20))
    assert "more than a JSON file may be" in _error(read_json, big)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not a text file" in _error(read_json, binary)


def _error(function, *args) -> str:
    try:
        function(*args)
    except LumenError as exc:
        return str(exc)
    raise AssertionError("no error")


def test_printable_escapes_control_characters():
    assert printable("ok ✓ ü") == "ok ✓ ü"
    assert printable("a\x1b[31mb\rc\x00d\u202e") == "a\\x1b[31mb\\rc\\x00d\\u202e"


# ---- spec limits and linear time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(name="evil\x1b[31m"), "the name holds a control character (\\x1b)"),
        (lambda d: d.update(name="a\rb"), "the name holds a control character (\\r)"),
        (lambda d: d.update(description="NUL\x00"), "the description holds a control character (\\x00)"),
        (lambda d: d.update(description="right-to-left \u202e"), "(\\u202e)"),
        (lambda d: d["nodes"][1].update(id="conv1\n"), "ids may hold only letters"),
        (
            lambda d: d["nodes"][1]["params"].update(out_channels=2**63 - 1),
            "conv1: the number 9223372036854775807 is too",
        ),
        (lambda d: d["nodes"][0]["params"].update(shape=[1, 2**40, 2**40]), "input: the number 1099511627776 is too"),
        (lambda d: d["nodes"][1]["params"].update(padding="\x1b[2J"), "conv1: a text parameter holds a control"),
        (lambda d: d["nodes"][1]["params"].update(eps=float("nan")), "conv1: the number nan is not finite"),
        (lambda d: d.update(description="x" * 20_001), "the description has 20,001 characters"),
    ],
)
def test_spec_text_and_numbers_are_bounded(edit, message):
    data = lenet_dict()
    edit(data)
    with pytest.raises(SpecError) as caught:
        ModelSpec.from_dict(data)
    assert message in str(caught.value)


def test_descriptions_keep_newlines_and_tabs():
    data = lenet_dict()
    data["description"] = "two\nlines\tand a tab"
    assert ModelSpec.from_dict(data).description == "two\nlines\tand a tab"


def test_a_spec_over_the_node_limit_is_refused_fast():
    began = time.perf_counter()
    with pytest.raises(SpecError, match=f"the spec has 16,001 nodes; Lumen reads at most {MAX_NODES:,}"):
        ModelSpec.from_json(json.dumps(relu_chain(16_000)))
    assert time.perf_counter() - began < 2


def test_the_largest_spec_is_handled_in_linear_time():
    text = json.dumps(relu_chain(MAX_NODES - 1))
    began = time.perf_counter()
    spec = ModelSpec.from_json(text)
    order = spec.topological_order()
    shapes = infer_shapes(spec)
    assert len(order) == len(shapes) == MAX_NODES and spec.output_id == f"relu{MAX_NODES - 2}"
    assert time.perf_counter() - began < 3  # was quadratic: 14 s for 5,000 nodes


def test_parent_paths_are_still_refused():
    data = relu_chain(2)
    data["nodes"].append({"id": "relu0.inner", "type": "relu"})
    with pytest.raises(SpecError, match=r"relu0.inner: the id lies inside another node's path \(relu0\)"):
        ModelSpec.from_dict(data)


# ---- models too big to exist ---------------------------------------------------------------------------------


def test_a_model_too_big_to_exist_is_refused_before_allocating():
    data = lenet_dict()
    data["nodes"][1]["params"]["out_channels"] = 1_000_000_000
    spec = ModelSpec.from_dict(data)
    with pytest.raises(SpecError) as caught:
        build_model(spec)  # 426 G parameters: would take 1.7 TB if it tried
    assert caught.value.node == "conv1"
    assert "TiB" in str(caught.value) and "more than Lumen's limit" in str(caught.value)


def test_activations_count_too(monkeypatch):
    spec = ModelSpec.sequential(
        "up",
        (1, 28, 28),
        [
            ("up", "upsample", {"scale_factor": 100}),
            ("conv", "conv2d", {"out_channels": 64, "kernel_size": 3}),
            ("pool", "global_avgpool", {}),
            ("fc", "linear", {"out_features": 10}),
        ],
    )
    monkeypatch.setenv("LUMEN_MEMORY_LIMIT", "1G")
    assert budget.memory_limit() == 2**30
    with pytest.raises(SpecError) as caught:
        build_model(spec)
    assert caught.value.node == "conv" and "(LUMEN_MEMORY_LIMIT)" in str(caught.value)
    monkeypatch.delenv("LUMEN_MEMORY_LIMIT")
    with torch.device("meta"):
        meta = build_model(spec)
    with pytest.raises(SpecError, match="to train with batches of 64"):
        budget.check_model(meta, 64, training=True)


def test_the_limit_is_a_share_of_this_machines_memory():
    assert budget.memory_limit() == int(budget.machine_memory() * budget.MEMORY_FRACTION)
    assert budget.machine_memory() > 2**28


def test_every_preset_fits_the_budget():
    for preset in PRESETS.values():
        with torch.device("meta"):
            budget.check_model(build_model(preset.make()))


# ---- the objective -------------------------------------------------------------------------------------------


def test_outputs_that_do_not_fit_the_loss_are_refused():
    """Training (the CLI's train, the window's Train) checks the model against its objective before any batch."""
    from lumen.engine.data.datasets import load_mnist

    data = load_mnist()

    def objective(spec, name=None):
        return Training(build_model(spec), data, TrainConfig(), name).objective.name

    assert objective(get_preset("lenet5")) == "classification"
    assert objective(get_preset("ae_undercomplete")) == "autoencoder"  # its code node says so
    with pytest.raises(SpecError, match=r"outputs a 1×28×28 tensor per sample, but training on mnist needs 10 "):
        objective(get_preset("ae_undercomplete"), "classification")
    five = lenet_dict()
    five["nodes"][-1]["params"]["out_features"] = 5
    with pytest.raises(SpecError) as caught:
        objective(ModelSpec.from_dict(five))
    assert caught.value.node == "fc3" and "outputs 5 values per sample" in str(caught.value)


# ---- writing -------------------------------------------------------------------------------------------------


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.py"
    target.write_text("old")
    with pytest.raises(DataError, match=r"cannot write .*model.py: No space left on device"):
        with atomic_write(target) as temp:
            temp.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_a_run_cut_short_by_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    model = build_model(get_preset("lenet5"))

    def full(path, header, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runs, "_write_csv", full)  # after the spec and the weights were written
    with pytest.raises(DataError, match=r"run: No space left on device"):
        runs.save_run(tmp_path / "run", model.spec, model, [], {"dataset": "mnist"})
    assert list(tmp_path.iterdir()) == []


def test_runs_are_replaced_only_when_asked(tmp_path):
    model = build_model(get_preset("lenet5"))
    runs.save_run(tmp_path / "run", model.spec, model, [], {"n": 1})
    with pytest.raises(runs.RunExists, match="already holds a run"):
        runs.save_run(tmp_path / "run", model.spec, model, [], {"n": 2})
    runs.save_run(tmp_path / "run", model.spec, model, [], {"n": 2}, force=True)
    assert runs.read_run_info(tmp_path / "run")["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no partial or old folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(DataError, match="holds other files"):
        runs.save_run(tmp_path / "mine", model.spec, model, [], {}, force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "run.json").write_bytes(b""), "incomplete or damaged run folder: run.json: empty"),
        (lambda run: (run / "run.json").write_text('{"steps": 1'), "incomplete or damaged run folder: run.json: not"),
        (lambda run: (run / "run.json").unlink(), "not a complete run folder (it lacks run.json)"),
        (lambda run: (run / "run.json").write_text("[1]"), "run.json does not hold an object"),
    ],
)
def test_incomplete_run_folders_are_refused(tmp_path, damage, message):
    model = build_model(get_preset("lenet5"))
    run = runs.save_run(tmp_path / "run", model.spec, model, [], {})
    damage(run)
    with pytest.raises(DataError) as caught:
        runs.open_run(run)
    assert message in str(caught.value)


def test_complex_weights_are_refused(tmp_path):
    path = tmp_path / "complex.pth"
    torch.save({"w": torch.zeros(2, dtype=torch.complex64)}, path)
    with pytest.raises(DataError, match=r"complex.pth: w holds complex numbers \(torch.complex64\)"):
        runs.read_state_dict(path)


# ---- fuzz: random JSON and random mutations of every preset's spec ---------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
INTERESTING = st.sampled_from(
    [
        0,
        -1,
        1,
        2**31 - 1,
        2**31,
        2**63 - 1,
        10**9,
        1.5,
        -0.0,
        "",
        "same",
        "x\x1b[2J",
        "int64",
        None,
        True,
        [],
        {},
        [1, 2**40],
        [2**40, 2**40, 1],
    ]
)
PRESET_DICTS = {name: preset.make().to_dict() for name, preset in PRESETS.items()}


def _mutate(data, draw):
    """Replace one value somewhere in the spec (a random path down the tree), delete a key, or add an edge."""
    kind = draw(st.sampled_from(["replace", "replace", "replace", "replace", "delete", "edge"]))
    if kind == "edge":
        nodes, edges = data.get("nodes"), data.get("edges")
        ids = [n["id"] for n in nodes if isinstance(n, dict) and "id" in n] if isinstance(nodes, list) else []
        if ids and isinstance(edges, list):
            edges.append([draw(st.sampled_from(ids)), draw(st.sampled_from(ids))])
        return
    parent, key = None, None
    current = data
    nodes = [n for n in data.get("nodes", []) if isinstance(n, dict)] if isinstance(data.get("nodes"), list) else []
    where = draw(st.sampled_from(["top", "node", "params", "params", "params"]))
    if nodes and where != "top":  # most mutations go into one node, most of those into its params
        node = draw(st.sampled_from(nodes))
        params = node.get("params")
        current = params if where == "params" and isinstance(params, dict) and params else node
        parent, key = None, None
    while isinstance(current, (dict, list)) and current and (parent is None or draw(st.booleans())):
        keys = list(current) if isinstance(current, dict) else list(range(len(current)))
        parent, key = current, draw(st.sampled_from(keys))
        current = parent[key]
    if parent is None:
        return
    if kind == "delete":
        del parent[key]
    else:
        parent[key] = draw(st.integers(1, 64) | st.integers(1, 64) | INTERESTING | JSON)


def _loads_cleanly(text: str, tmp_path) -> None:
    """The loader and the summary either refuse in one line or give a valid model."""
    import main

    try:
        spec = ModelSpec.from_json(text)
        from lumen.engine.graph.analysis import analyze

        analyze(spec)
        event("a valid model")
    except LumenError as exc:
        event(f"refused: {type(exc).__name__}")
        assert "\n" not in printable(str(exc))
    path = tmp_path / "fuzz.json"
    path.write_text(text)
    assert main.main(["summary", str(path)]) in (0, 1)


@settings(
    max_examples=120,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_mutated_presets(data, tmp_path, capsys):
    name = data.draw(st.sampled_from(sorted(PRESET_DICTS)))
    spec = json.loads(json.dumps(PRESET_DICTS[name]))
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(spec, data.draw)
    text = json.dumps(spec, allow_nan=True)
    _loads_cleanly(text, tmp_path)
    capsys.readouterr()


@settings(max_examples=80, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON | st.text(max_size=40))
def test_fuzz_random_json(value, tmp_path, capsys):
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=True)
    _loads_cleanly(text, tmp_path)
    capsys.readouterr()


# ---- the worker (the window's engine) refuses the same models -----------------------------------------------------


def test_the_worker_refuses_models_too_big_or_unfit_for_the_loss(monkeypatch):
    import queue

    from lumen.engine.events import EngineError
    from lumen.engine.runtime.worker import EngineWorker
    from lumen.engine.training.loop import TrainConfig

    events = queue.Queue()
    worker = EngineWorker(events.put, torch_threads=1)
    worker.start()

    def next_error(timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(event, EngineError):
                return event.message
        raise AssertionError("no EngineError")

    try:
        # An autoencoder trains (on its reconstruction); a model for 8-number vectors cannot fit 1×28×28 digits.
        worker.load_model(ModelSpec.sequential("tabular", (8,), [("fc", "linear", {"out_features": 3})]), "mnist")
        worker.train(TrainConfig(epochs=1))
        assert "input: the model takes 8 inputs, but mnist has 1×28×28 samples" in next_error()
        monkeypatch.setenv("LUMEN_MEMORY_LIMIT", "64K")  # LeNet-5's weights alone are 247 KB
        worker.load_model(get_preset("lenet5"))
        assert "more than Lumen's limit, 64.0 KiB (LUMEN_MEMORY_LIMIT)" in next_error()
    finally:
        assert worker.shutdown()
