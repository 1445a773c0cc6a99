"""``python main.py explain``: an attribution map of one image as a PNG, the raw map and the model's input as .npy;
bad input refused in one line with a non-zero exit."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lumen.cli.explain as cli_explain
import main
from lumen.cli import COMMANDS
from lumen.cli.parser import parse
from lumen.engine.explain.attribution import METHODS, attribute
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import open_run, save_run
from lumen.engine.presets import get_preset
from tests.support import one_line_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain") / "run"
    torch.manual_seed(0)
    spec = get_preset("lenet5")
    save_run(folder, spec, build_model(spec), [], {"dataset": "mnist"})
    return folder


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """A dark "1" on white paper, in a folder whose name has a space and a non-ASCII letter."""
    pixels = np.full((64, 48), 255, np.uint8)
    pixels[8:56, 20:28] = 0
    path = tmp_path_factory.mktemp("pictures") / "mes chiffres é" / "one.png"
    path.parent.mkdir()
    Image.fromarray(pixels).save(path)
    return path


def test_the_parser_takes_every_method_of_the_registry_and_no_other():
    line = ["explain", "run", "--image", "in.png", "--out", "out.png", "--method"]
    for method in METHODS:
        assert parse(COMMANDS, [*line, method]).method == method
    with pytest.raises(SystemExit) as refused:
        parse(COMMANDS, [*line, "lime"])
    assert refused.value.code == 2


def test_explain_writes_the_png_the_map_and_the_input(run_dir, digit, tmp_path):
    out, npy = tmp_path / "ig.png", tmp_path / "ig.npy"
    result = subprocess.run(
        [sys.executable, "main.py", "explain", run_dir, "--image", digit, "--method", "integrated-gradients"]
        + ["--steps", "32", "--target", "1", "--out", out, "--npy", npy],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "convergence delta" in result.stdout
    picture = np.asarray(Image.open(out))
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[0] >= 224
    saved_map, saved_input = np.load(npy), np.load(tmp_path / "ig.input.npy")
    assert saved_map.shape == (1, 28, 28) and saved_map.dtype == np.float32
    assert saved_input.shape == (1, 1, 28, 28)
    # Anyone can reproduce the map from the input the model was given.
    again = attribute(open_run(run_dir), torch.from_numpy(saved_input), "integrated-gradients", 1, steps=32)
    np.testing.assert_allclose(again.map, saved_map, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["saliency", "gradcam", "occlusion", "smoothgrad", "guided-backprop"])
def test_every_method_writes_its_map(run_dir, digit, tmp_path, capsys, method):
    code = main.main(
        ["explain", str(run_dir), "--image", str(digit), "--method", method, "--out", str(tmp_path / "o.png")]
        + ["--npy", str(tmp_path / "o.npy")]
    )
    assert code == 0, capsys.readouterr().err
    shape = np.load(tmp_path / "o.npy").shape
    assert shape == ((28, 28) if method == "gradcam" else (1, 28, 28))
    assert (tmp_path / "o.input.npy").is_file() and (tmp_path / "o.png").is_file()


def _bad_files(folder: Path) -> dict[str, Path]:
    (folder / "notes.png").write_text("not a picture")
    (folder / "empty.png").write_bytes(b"")
    noisy = np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)
    Image.fromarray(noisy).save(folder / "whole.png")
    data = (folder / "whole.png").read_bytes()
    (folder / "cut.png").write_bytes(data[: len(data) // 2])
    Image.new("1", (12_000, 9_000)).save(folder / "huge.png")
    Image.new("1", (30_000, 30_000)).save(folder / "bomb.png")
    return {
        "notes.png": folder / "notes.png",
        "empty.png": folder / "empty.png",
        "cut.png": folder / "cut.png",
        "huge.png": folder / "huge.png",
        "bomb.png": folder / "bomb.png",
    }


@pytest.mark.slow
def test_bad_input_is_one_line_and_a_non_zero_exit(run_dir, digit, tmp_path, capsys):
    cases = [(["--image", str(p)], name) for name, p in _bad_files(tmp_path).items()]
    cases += [
        (["--image", str(tmp_path / "missing.png")], "no such file"),
        (["--image", str(tmp_path)], "folder"),
        (["--image", str(digit), "--target", "12"], "target class 12 does not exist"),
        (["--image", str(digit), "--steps", "4"], "saliency does not take steps"),
    ]
    for extra, expected in cases:
        code = main.main(["explain", str(run_dir), "--method", "saliency", "--out", str(tmp_path / "x.png"), *extra])
        err = capsys.readouterr().err
        assert code == 1, (extra, err)
        assert err.startswith("lumen: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "x.png").exists()
    code = main.main(["explain", str(tmp_path), "--image", str(digit), "--method", "saliency", "--out", "x.png"])
    assert code == 1 and "not a complete run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main.main(["explain", str(run_dir), "--image", str(digit), "--method", "lime", "--out", "x.png"])
    assert exited.value.code == 2


def _lumen(*args):
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
def test_every_output_is_checked_before_any_is_written(run_dir, digit, tmp_path):
    """explain, activations and dream write all their files or none: an --npy that is a folder, a missing
    folder, or two options naming one file are refused before the PNG is written (or anything computed)."""
    (tmp_path / "a folder").mkdir()
    (tmp_path / "taken.input.npy").mkdir()
    ok = tmp_path / "ok.png"
    explain = ["explain", run_dir, "--image", digit, "--method", "saliency", "--out", ok]
    activations = ["activations", run_dir, "--image", digit, "--layer", "conv1", "--out", ok]
    cases = [
        (explain + ["--npy", tmp_path / "a folder"], "a folder is a folder; --npy names the file to write"),
        (explain + ["--npy", tmp_path / "taken.npy"], "is a folder; --npy's input file names the file to write"),
        (explain + ["--npy", tmp_path / "no" / "map.npy"], f"{tmp_path / 'no'} does not exist"),
        (explain + ["--npy", ok], "--out and --npy name the same file"),
        (activations + ["--npy", tmp_path / "a folder"], "is a folder; --npy names the file to write"),
        (["dream", run_dir, "--layer", "conv1", "--out", tmp_path / "a folder"], "is a folder; --out names the file"),
    ]
    for args, message in cases:
        result = _lumen(*args)
        one_line_error(result, message)
        assert result.stdout == "", args
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder", "taken.input.npy"], args


def test_a_write_that_fails_leaves_none_of_the_files(run_dir, digit, tmp_path, capsys, monkeypatch):
    def disk_full(path, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_explain, "save_npy", disk_full)
    out, npy = tmp_path / "map.png", tmp_path / "map.npy"
    code = main.main(["explain", str(run_dir), "--image", str(digit), "--method", "saliency"] + ["--out", str(out)])
    assert code == 0 and out.is_file()  # no .npy asked for: the PNG alone
    out.unlink()
    code = main.main(
        ["explain", str(run_dir), "--image", str(digit), "--method", "saliency", "--out", str(out), "--npy", str(npy)]
    )
    assert code == 1 and "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the PNG nor a temporary file


@pytest.mark.parametrize(
    "size, grey", [(1, 128), (28, 128), (1, 255), (28, 255), (1, 0), (2, 77)], ids=lambda v: str(v)
)
def test_a_picture_of_one_colour_is_refused_whatever_its_size(run_dir, tmp_path, capsys, size, grey):
    """A uniform 1×1 PNG is refused as a blank 28×28 one is, with the same message (it was explained)."""
    picture = tmp_path / "flat.png"
    Image.fromarray(np.full((size, size), grey, np.uint8)).save(picture)
    out = tmp_path / "map.png"
    code = main.main(["explain", str(run_dir), "--image", str(picture), "--method", "saliency", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err == "lumen: the image looks blank: no ink stands out from the background\n", err
    assert not out.exists()
