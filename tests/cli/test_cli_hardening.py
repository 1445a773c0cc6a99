"""Hostile input through the CLI, run as a user runs it (subprocesses of main.py): each cause of issue 7 ends in
one line on stderr naming the file and the cause, a non-zero exit, no traceback, and nothing half-written."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec
from tests.support import lumen, one_line_error, relu_chain

ROOT = Path(__file__).resolve().parents[2]


def lenet():
    return get_preset("lenet5").to_dict()


def write_spec(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def edited(**changes):
    data = lenet()
    for where, value in changes.items():
        node, key = where.split("__")
        target = next(n for n in data["nodes"] if n["id"] == node)
        target["params"][key] = value
    return data


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")


def mount_tmpfs(path, options):
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")


def unmount(path):
    subprocess.run(["umount", str(path)], capture_output=True)


# ---- 1. spec files that defeat the parser; 11. terminal and text safety ----------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        ("[" * 100_000 + "]" * 100_000, "spec.json: nested 100000 deep; at most 64 levels are read"),
        ("1" * 5000, "spec.json: the number 111111111111… has 5000 digits; numbers must fit in 64 bits"),
        (edited(conv1__out_channels=2**63), "spec.json: the number 9223372036854775808 does not fit in 64 bits"),
        (edited(conv1__out_channels=2**62), "spec.json: conv1: the number 4611686018427387904 is too large"),
        (edited(input__shape=[1, 2**40, 2**40]), "spec.json: input: the number 1099511627776 is too large"),
        ('{"format": "lumen.model", "version": 1, "nodes": [NaN], "edges": []}', "NaN is not a number JSON allows"),
        ('{"format": "lumen.model", "version": 1e999}', "the number 1e999 is too large"),
        ({**lenet(), "name": "evil\x1b[31mred\rX"}, "spec.json: the name holds a control character (\\x1b)"),
        ({**lenet(), "description": "NUL\x00"}, "spec.json: the description holds a control character (\\x00)"),
        ({**lenet(), "name": "x" * 201}, "the name has 201 characters; at most 200"),
        (edited(conv1__padding="\x1b]0;pwned\x07"), "conv1: a text parameter holds a control character (\\x1b)"),
    ],
)
def test_hostile_spec_files_are_refused_in_one_line(tmp_path, content, message):
    spec = write_spec(tmp_path / "spec.json", content)
    for command in (["summary", spec], ["train", spec, "--out", tmp_path / "run"]):
        result = lumen(*command)
        one_line_error(result, message)
        assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["summary", "lenet5", "--input", "99999999999999999999,28,28"], "--input takes whole numbers above 0"),
        (["summary", "lenet5", "--input", "1,2147483648,28"], "each up to 2,147,483,647"),
        (["summary", "lenet5", "--input", "1," * 20 + "1"], "at most 8 numbers"),
        (["summary", "lenet5", "--input", "１,28,28"], "--input takes whole numbers"),  # a full-width digit
        (["summary", "lenet5", "--input", "1,100000,100000"], "lenet5"),  # fits 64 bits, not memory: a warning, rc 0
    ],
)
def test_numbers_on_the_command_line_are_bounded(args, message):
    result = lumen(*args)
    if args[-1] == "1,100000,100000":
        assert result.returncode == 0 and "lumen: warning: fc1: " in result.stderr  # 1.2 T weights
        assert "not built or trained here" in result.stderr
        return
    one_line_error(result, message)


@pytest.mark.parametrize(
    "option, value",
    [
        ("--seed", "99999999999999999999"),
        ("--seed", "-1"),
        ("--batch-size", "99999999999999999999"),
        ("--batch-size", "0"),
    ],
)
def test_train_options_are_bounded(tmp_path, option, value):
    result = lumen("train", "lenet5", "--out", tmp_path / "run", option, value)
    one_line_error(result, f"argument {option}: takes a whole number from", status=2)


def test_printed_names_are_sanitised(tmp_path):
    # A spec written by an older Lumen could hold anything; whatever reaches the terminal is escaped.
    run = tmp_path / "run\x1b[2J"
    result = lumen("import", "lenet5", _lenet_weights(tmp_path), "--out", run)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "run\\x1b[2J" in result.stdout


def _lenet_weights(tmp_path):
    from lumen.engine.graph.model import build_model

    path = tmp_path / "lenet.pth"
    torch.save(build_model(get_preset("lenet5")).state_dict(), path)
    return path


def test_complex_weights_are_refused(tmp_path):
    weights = _lenet_weights(tmp_path)
    state = torch.load(weights, weights_only=True)
    state["conv1.weight"] = state["conv1.weight"].to(torch.complex64)
    torch.save(state, tmp_path / "complex.pth")
    result = lumen("import", "lenet5", tmp_path / "complex.pth", "--out", tmp_path / "run")
    one_line_error(result, "complex.pth: conv1.weight holds complex numbers (torch.complex64)")
    assert not (tmp_path / "run").exists()


# ---- 2. models too big to exist ---------------------------------------------------------------------------------


def test_a_billion_channels_is_summarised_with_a_warning_and_never_trained(tmp_path):
    spec = write_spec(tmp_path / "big.json", edited(conv1__out_channels=1_000_000_000))
    result = lumen("summary", spec)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "total params: 426000059150"
    assert result.stderr.startswith("lumen: warning: conv1: ") and "more than Lumen's limit" in result.stderr
    began = time.monotonic()
    result = lumen("train", spec, "--out", tmp_path / "run")
    one_line_error(result, "lumen: big.json: conv1: ", "TiB", "more than Lumen's limit on this machine")
    assert time.monotonic() - began < 60 and not (tmp_path / "run").exists()


def test_activations_too_big_to_train_are_refused_before_the_first_batch(tmp_path):
    spec = get_preset("lenet5").sequential(
        "up",
        (1, 28, 28),
        [
            ("up", "upsample", {"scale_factor": 100}),
            ("conv", "conv2d", {"out_channels": 64, "kernel_size": 3}),
            ("pool", "global_avgpool", {}),
            ("fc", "linear", {"out_features": 10}),
        ],
    )
    path = tmp_path / "up.json"
    spec.save(path)
    result = lumen("train", path, "--out", tmp_path / "run")
    one_line_error(result, "up.json: conv: ", "to train with batches of 64", "GiB for the layers' outputs")
    result = lumen("summary", path, env={"LUMEN_MEMORY_LIMIT": "1G"})  # building it at all: over a 1 GiB limit
    assert result.returncode == 0 and "(LUMEN_MEMORY_LIMIT)" in result.stderr


# ---- 4. large specs: linear time and a node limit ---------------------------------------------------------------


def test_large_specs_are_fast_and_bounded(tmp_path):
    began = time.monotonic()
    one_line_error(
        lumen("summary", write_spec(tmp_path / "huge.json", relu_chain(16_000, (1, 28, 28)))),
        "huge.json: the spec has 16,001 nodes; Lumen reads at most 5,000",
    )
    assert time.monotonic() - began < 15
    began = time.monotonic()
    result = lumen("summary", write_spec(tmp_path / "long.json", relu_chain(4_000, (1, 28, 28))))
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "total params: 0"
    assert time.monotonic() - began < 20  # was 60 s for 16,000; the process start itself takes a few seconds


# ---- 5. paths that are not regular files -----------------------------------------------------------------------


def test_paths_that_are_not_regular_files(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    one_line_error(lumen("summary", fifo, timeout=60), "pipe.json is not a regular file")
    one_line_error(lumen("summary", "/dev/zero", timeout=60), "/dev/zero is not a regular file")
    one_line_error(lumen("summary", tmp_path), "is a folder, not a model spec")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (9 * 2**20))
    one_line_error(lumen("summary", big), "big.json is 9.0 MiB, more than a model spec may be (8.0 MiB)")
    one_line_error(lumen("summary", tmp_path / "missing.json"), "missing.json: no such file")
    one_line_error(lumen("summary", "a" * 5000), "File name too long")
    one_line_error(lumen("import", "lenet5", fifo, "--out", tmp_path / "run", timeout=60), "is not a regular file")


# ---- 6. outputs that do not fit the objective -------------------------------------------------------------------


def test_models_that_cannot_fit_the_data_are_refused_naming_the_node(tmp_path):
    # A head of the wrong size is resized to the data (engine.training.fit); what cannot be resized is refused.
    tabular = ModelSpec.sequential("tabular", (8,), [("fc", "linear", {"out_features": 3})]).to_dict()
    one_line_error(
        lumen("train", write_spec(tmp_path / "tabular.json", tabular), "--data", "mnist", "--out", tmp_path / "t"),
        "tabular.json: input: the model takes 8 inputs, but mnist has 1×28×28 samples",
    )
    one_line_error(
        lumen("train", "lenet5", "--data", "sine", "--out", tmp_path / "s"),
        "input: the model takes 1×28×28 inputs, but sine has 40×1 samples",
    )
    assert not (tmp_path / "t").exists() and not (tmp_path / "s").exists()


def test_a_head_of_the_wrong_size_is_resized_and_said_in_one_line(tmp_path):
    five = lenet()
    five["nodes"][-1]["params"]["out_features"] = 5
    result = lumen(
        "train",
        write_spec(tmp_path / "five.json", five),
        "--epochs",
        "1",
        "--batch-size",
        "500",
        "--out",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    assert "lumen: fitted to the data: fc3 out_features 5 → 10\n" in result.stderr


# ---- 7. a bad --out is noticed before training; 10. no silent overwrites ---------------------------------------------


def test_bad_out_folders_are_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(lumen("train", "lenet5", "--out", tmp_path / "file" / "run"), "file is a file, not a folder")
    one_line_error(lumen("train", "lenet5", "--out", "/proc/lumen-run"), "cannot write /proc/lumen-run")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    one_line_error(lumen("train", "lenet5", "--out", tmp_path / "notes", "--force"), "the folder holds other files")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


@needs_root()
def test_a_read_only_disk_is_noticed_before_training(tmp_path):
    mount_tmpfs(tmp_path / "ro", "size=200k,ro")
    try:
        began = time.monotonic()
        one_line_error(
            lumen("train", "lenet5", "--epochs", "50", "--out", tmp_path / "ro" / "run"), "Read-only file system"
        )
        assert time.monotonic() - began < 30  # fifty epochs would take minutes
    finally:
        unmount(tmp_path / "ro")


def test_an_existing_run_is_replaced_only_with_force(tmp_path):
    weights, run = _lenet_weights(tmp_path), tmp_path / "run"
    assert lumen("import", "lenet5", weights, "--out", run).returncode == 0
    before = (run / "run.json").read_text()
    one_line_error(lumen("import", "lenet5", weights, "--out", run), "already holds a run", "--force")
    one_line_error(lumen("train", "lenet5", "--epochs", "1", "--out", run), "already holds a run")
    assert (run / "run.json").read_text() == before
    assert lumen("import", "lenet5", weights, "--out", run, "--force").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.pth", "run"]  # nothing hidden left over


# ---- 8. a full disk --------------------------------------------------------------------------------------------


@needs_root()
def test_a_full_disk_leaves_no_half_written_run_or_export(tmp_path):
    weights = _lenet_weights(tmp_path)
    assert lumen("import", "lenet5", weights, "--out", tmp_path / "good").returncode == 0
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=200k")  # LeNet-5's weights alone are 247 KB
    try:
        one_line_error(lumen("import", "lenet5", weights, "--out", disk / "run"), "No space left on device")
        for kind in ("torchscript", "safetensors", "onnx", "python"):
            result = lumen("export", tmp_path / "good", "--format", kind, "--out", disk / f"model.{kind}")
            if kind == "python":  # small enough to fit
                assert result.returncode == 0, result.stderr
                (disk / "model.python").unlink()
            else:
                one_line_error(result, "No space left on device")
        assert list(disk.iterdir()) == []
    finally:
        unmount(disk)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "run.json").write_bytes(b""), "incomplete or damaged run folder: run.json: empty"),
        (
            lambda run: (run / "weights.safetensors").unlink(),
            "not a complete run folder (it lacks weights.safetensors)",
        ),
    ],
)
def test_incomplete_run_folders_are_refused(tmp_path, damage, message):
    run = tmp_path / "run"
    assert lumen("import", "lenet5", _lenet_weights(tmp_path), "--out", run).returncode == 0
    damage(run)
    one_line_error(lumen("export", run, "--format", "python", "--out", tmp_path / "m.py"), message)
    assert not (tmp_path / "m.py").exists()


# ---- 9. signals and pipes ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_saves_the_run_like_ctrl_c(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "main.py", "train", "lenet5", "--epochs", "50", "--out", str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("epoch 1:")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "interrupted; saved the run so far to" in err and "Traceback" not in err
    info = json.loads((run / "run.json").read_text())
    assert info["interrupted"] is True and info["steps"] >= 71


@pytest.mark.slow
def test_a_closed_stdout_saves_the_run(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "main.py", "train", "lenet5", "--epochs", "50", "--out", str(run)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("epoch 1:")  # as `| head -1` reads it
    process.stdout.close()
    err = process.stderr.read()
    process.wait(timeout=120)
    assert process.returncode == 141 and "interrupted; saved the run so far" in err and "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["interrupted"] is True


# ---- the rules hold in-process too (the fuzz test in tests/engine calls main.main the same way) -----------------


def test_errors_in_process_are_one_line(tmp_path, capsys):
    import main

    spec = write_spec(tmp_path / "deep.json", "[" * 5000 + "]" * 5000)
    assert main.main(["summary", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deep.json: nested 5000 deep" in err
    data = copy.deepcopy(lenet())
    data["name"] = "a\u202eb"
    assert main.main(["summary", str(write_spec(tmp_path / "rtl.json", data))]) == 1
    assert "\\u202e" in capsys.readouterr().err
