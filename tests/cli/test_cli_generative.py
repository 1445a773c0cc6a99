"""``python main.py sample``, ``reconstruct`` and ``neighbours``: what autoencoders (and Boltzmann machines) are used
for, on run folders written with save_run; the pictures checked against the engine computed here, bad input refused
in one line with exit 1."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lumen.engine.data.images import image_input
from lumen.engine.explain.generative import prior_samples
from lumen.engine.graph.model import build_model
from lumen.engine.io.image_files import read_image
from lumen.engine.io.runs import open_run, save_run
from lumen.engine.presets import get_preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.fit import load_run_data
from tests.support import lumen, one_line_error

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generative")
    paths = {}
    for name in ("vae", "ae_undercomplete", "rbm", "dbn", "dbm"):
        torch.manual_seed(0)
        spec = get_preset(name)
        paths[name] = save_run(folder / name, spec, build_model(spec), [], {"dataset": "mnist"})
    return paths


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """A dark "1" on white paper, in a folder whose name has a space and a non-ASCII letter."""
    pixels = np.full((64, 48), 255, np.uint8)
    pixels[8:56, 20:28] = 0
    path = tmp_path_factory.mktemp("pictures") / "mes chiffres é" / "one.png"
    path.parent.mkdir()
    Image.fromarray(pixels).save(path)
    return path


def prepared(path: Path) -> torch.Tensor:
    return image_input(read_image(path), (1, 28, 28), digits=True)


def panels(path: Path, count: int, side: int) -> list[np.ndarray]:
    """A one-row grid of ``count`` pictures ``side`` pixels square, 1-pixel gaps, as float arrays."""
    pixels = np.asarray(Image.open(path), dtype=np.float32)
    assert pixels.shape == (side, count * (side + 1) - 1)
    return [pixels[:, i * (side + 1) : i * (side + 1) + side] for i in range(count)]


def shrunk(panel: np.ndarray, scale: int) -> np.ndarray:
    return panel[::scale, ::scale] / 255.0


def test_sample_a_vae_writes_its_prior_samples(runs, tmp_path):
    out, npy = tmp_path / "grid é.png", tmp_path / "s.npy"
    result = lumen("sample", runs["vae"], "--n", 6, "--seed", 3, "--out", out, "--npy", npy)
    assert result.returncode == 0, result.stderr
    assert "6 samples of Variational autoencoder, decoded from z ~ N(0, I)" in result.stdout
    expected = prior_samples(open_run(runs["vae"]), 6, torch.Generator().manual_seed(3))
    saved = np.load(npy)
    assert saved.shape == (6, 1, 28, 28) and saved.dtype == np.float32
    np.testing.assert_allclose(saved, expected.numpy(), atol=1e-6)
    grid = np.asarray(Image.open(out), dtype=np.float32)
    assert grid.shape == (2 * 57 - 1, 3 * 57 - 1)  # 2 rows of 3, each picture doubled to 56
    np.testing.assert_allclose(grid[:56:2, :56:2] / 255, saved[0, 0], atol=1 / 255 + 1e-6)


def test_sample_an_rbm_runs_its_gibbs_chain_from_noise(runs, tmp_path):
    npy = tmp_path / "s.npy"
    result = lumen("sample", runs["rbm"], "--n", 4, "--steps", 7, "--out", tmp_path / "g.png", "--npy", npy)
    assert result.returncode == 0, result.stderr
    assert "7 Gibbs steps from noise in rbm1" in result.stdout
    rbm = open_run(runs["rbm"]).layers["rbm1"]
    generator = torch.Generator().manual_seed(0)
    v = torch.bernoulli(torch.full((4, 784), 0.5), generator=generator)
    with torch.no_grad():
        for _ in range(7):
            h = torch.bernoulli(torch.sigmoid(v @ rbm.weight.T + rbm.hidden_bias), generator=generator)
            mean = torch.sigmoid(h @ rbm.weight + rbm.visible_bias)
            v = torch.bernoulli(mean, generator=generator)
    np.testing.assert_allclose(np.load(npy), mean.reshape(4, 1, 28, 28).numpy(), atol=1e-6)


def test_sample_a_dbn_samples_its_top_rbm_and_carries_it_down(runs, tmp_path):
    npy = tmp_path / "s.npy"
    result = lumen("sample", runs["dbn"], "--n", 3, "--steps", 2, "--out", tmp_path / "g.png", "--npy", npy)
    assert result.returncode == 0, result.stderr
    assert "2 Gibbs steps from noise in rbm2, carried down through rbm1" in result.stdout
    saved = np.load(npy)
    assert saved.shape == (3, 1, 28, 28) and 0 <= saved.min() and saved.max() <= 1


def test_reconstruct_puts_the_input_beside_the_models_output(runs, digit, tmp_path):
    out = tmp_path / "r.png"
    result = lumen("reconstruct", runs["ae_undercomplete"], "--image", digit, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "code code (32 numbers): reconstruction error" in result.stdout
    x = prepared(digit)
    model = open_run(runs["ae_undercomplete"]).eval()
    with torch.no_grad():
        expected = model(x)
    given, output = panels(out, 2, 112)
    np.testing.assert_allclose(shrunk(given, 4), x[0, 0].numpy(), atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(shrunk(output, 4), expected[0, 0].numpy(), atol=1 / 255 + 1e-6)
    error = float(((expected - x) ** 2).mean())
    assert f"reconstruction error {error:.4g}" in result.stdout


def test_reconstruct_with_a_mask_inpaints_only_the_unknown_pixels(runs, digit, tmp_path):
    mask = np.zeros((28, 28), np.uint8)
    mask[14:, :] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "r.png"
    result = lumen("reconstruct", runs["vae"], "--image", digit, "--mask", tmp_path / "mask.png", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "inpainted in 20 rounds (392 of 784 pixels unknown;" in result.stdout
    given, masked, filled = (shrunk(p, 4) for p in panels(out, 3, 112))
    unknown = mask > 0
    np.testing.assert_array_equal(filled[~unknown], given[~unknown])
    assert np.all(np.abs(masked[unknown] - 0.5) < 0.003)
    x = prepared(digit)
    assert not np.allclose(filled[unknown], x[0, 0].numpy()[unknown], atol=0.01)  # made up, not copied


def test_neighbours_are_the_nearest_training_codes_the_query_first(runs, digit, tmp_path):
    out = tmp_path / "n.png"
    result = lumen("neighbours", runs["ae_undercomplete"], "--image", digit, "--k", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    model = open_run(runs["ae_undercomplete"]).eval()
    data, _ = load_run_data(ModelSpec.load(runs["ae_undercomplete"] / "model.json"), "mnist")
    with torch.no_grad():
        codes = model.forward_recording(data.train_x, ["code"])[1]["code"]
        query = model.forward_recording(prepared(digit), ["code"])[1]["code"]
    ranking = torch.cdist(query, codes, compute_mode="donot_use_mm_for_euclid_dist")[0].argsort()[:3]
    assert f"3 nearest of {len(data.train_x):,} training pictures of mnist" in result.stdout
    assert f"#{int(ranking[0])} (" in result.stdout
    shown = [shrunk(p, 2) for p in panels(out, 4, 56)]
    np.testing.assert_allclose(shown[0], prepared(digit)[0, 0].numpy(), atol=1 / 255 + 1e-6)
    for panel, index in zip(shown[1:], ranking):
        np.testing.assert_allclose(panel, data.train_x[index, 0].numpy(), atol=1 / 255 + 1e-6)


def ten_channel_tiff(path: Path) -> Path:
    """An uncompressed 8×8 TIFF with 10 samples per pixel (Pillow reads at most 6)."""
    width = height = 8
    samples = 10
    data = bytes(width * height * samples)
    bits = struct.pack(f"<{samples}H", *[8] * samples)
    extra = struct.pack(f"<{samples - 1}H", *[0] * (samples - 1))
    bits_at, extra_at = 8 + len(data), 8 + len(data) + len(bits)
    ifd_at = extra_at + len(extra)
    entries = [
        struct.pack("<HHIHH", 256, 3, 1, width, 0),
        struct.pack("<HHIHH", 257, 3, 1, height, 0),
        struct.pack("<HHII", 258, 3, samples, bits_at),
        struct.pack("<HHIHH", 259, 3, 1, 1, 0),
        struct.pack("<HHIHH", 262, 3, 1, 1, 0),
        struct.pack("<HHII", 273, 4, 1, 8),
        struct.pack("<HHIHH", 277, 3, 1, samples, 0),
        struct.pack("<HHIHH", 278, 3, 1, height, 0),
        struct.pack("<HHII", 279, 4, 1, len(data)),
        struct.pack("<HHIHH", 284, 3, 1, 1, 0),
        struct.pack("<HHII", 338, 3, samples - 1, extra_at),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", ifd_at) + data + bits + extra + ifd)
    return path


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        (
            ["reconstruct", "{rbm}", "--image", "{digit}", "--out", "{out}"],
            ["RBM has no bottleneck", "not an autoencoder"],
        ),
        (["neighbours", "{rbm}", "--image", "{digit}", "--out", "{out}"], ["not an autoencoder"]),
        (
            ["reconstruct", "{ae}", "--image", "{digit}", "--mask", "{small}", "--out", "{out}"],
            ["the mask small.png is 10×10 pixels; it must be 28×28, the model's input"],
        ),
        (["neighbours", "{ae}", "--image", "{digit}", "--k", "0", "--out", "{out}"], ["--k takes 1 to 4,500", "not 0"]),
        (["neighbours", "{ae}", "--image", "{digit}", "--k", "4501", "--out", "{out}"], ["not 4,501"]),
        (["sample", "{ae}", "--n", "4", "--out", "{out}"], ["plain autoencoder", "no prior to sample from"]),
        (["sample", "{dbm}", "--n", "4", "--out", "{out}"], ["a DBM is one undirected machine"]),
        (["sample", "{vae}", "--n", "4", "--steps", "3", "--out", "{out}"], ["--steps counts Gibbs steps"]),
    ],
)
def test_bad_input_is_one_line_and_exit_1(runs, digit, tmp_path, args, messages):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    names = {
        "rbm": runs["rbm"],
        "ae": runs["ae_undercomplete"],
        "vae": runs["vae"],
        "dbm": runs["dbm"],
        "digit": digit,
        "small": tmp_path / "small.png",
        "out": tmp_path / "out.png",
    }
    result = lumen(*[a.format(**{k: str(v) for k, v in names.items()}) for a in args])
    one_line_error(result, *messages)
    assert not (tmp_path / "out.png").exists()


def test_a_ten_channel_picture_is_refused(runs, tmp_path):
    picture = ten_channel_tiff(tmp_path / "ten.tif")
    result = lumen("reconstruct", runs["vae"], "--image", picture, "--out", tmp_path / "out.png")
    assert result.returncode == 1 and not (tmp_path / "out.png").exists()
    last = result.stderr.splitlines()[-1]
    assert last.startswith("lumen: ") and "ten.tif is not an image Lumen can read" in last
    assert "Traceback" not in result.stderr


def test_a_ten_channel_picture_is_refused_in_one_line(runs, tmp_path):
    picture = ten_channel_tiff(tmp_path / "ten.tif")
    one_line_error(lumen("reconstruct", runs["vae"], "--image", picture, "--out", tmp_path / "out.png"))
