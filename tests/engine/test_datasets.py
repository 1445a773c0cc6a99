"""Datasets: the registry, what each generator makes, and a user's files (folders, IDX, CSV)."""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lumen.engine.data import sequences
from lumen.engine.data.datasets import DATASETS, TASKS, load_dataset
from lumen.engine.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_is_made_the_same_way_twice_and_says_what_it_holds(name):
    first, second = load_dataset(name), load_dataset(name)
    for a, b in ((first.train_x, second.train_x), (first.train_y, second.train_y), (first.val_x, second.val_x)):
        assert torch.equal(a, b)
    assert first.name == name and first.task in TASKS
    assert first.train_x.dtype == torch.float32 and len(first.train_x) == len(first.train_y) > 0
    assert len(first.val_x) == len(first.val_y) > 0
    assert torch.isfinite(first.train_x).all()
    if first.task in ("classification", "per_step", "seq2seq"):
        assert first.train_y.dtype == torch.int64 and int(first.train_y.max()) < len(first.classes)
    preview = first.preview(4)
    assert preview.dtype == np.float32 and preview.ndim in (2, 3)


def test_seeds_change_generated_data():
    assert not torch.equal(sequences.sine(seed=1).train_x, sequences.sine(seed=2).train_x)


def test_the_dataset_list_answers_without_torch():
    code = "import sys, main; main.main(['datasets']); assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["mnist", "shapes", "sine", "adding", "recall", "copy", "reverse", "brackets", "text"]


def test_recall_asks_for_the_flagged_first_token_among_distractors_of_the_same_letters():
    data = sequences.recall(count=200, steps=12)
    assert data.input_shape == (12, 10) and data.classes == tuple("ABCDEFGH")
    x = data.train_x
    assert torch.equal(x[:, 0, :8].argmax(1), data.train_y)
    assert (x[:, 0, 8] == 1).all() and x[:, 1:, 8].sum() == 0  # the flag marks the key only
    assert (x[:, -1, 9] == 1).all() and x[:, -1, :9].sum() == 0  # the query
    assert (x[:, 1:-1, :8].sum(2) == 1).all()  # every distractor is one of the key's letters ...
    assert len(set(x[:, 1:-1, :8].argmax(2).flatten().tolist())) == 8  # ... all of them
    assert sequences.recall(count=20, steps=5, symbols=3).input_shape == (5, 5)
    with pytest.raises(DataError, match="symbols"):
        sequences.recall(count=20, symbols=1)


def test_adding_sums_the_two_marked_numbers():
    data = sequences.adding(count=50, steps=10)
    x, y = data.train_x, data.train_y
    assert (x[:, :, 1].sum(1) == 2).all()
    assert torch.allclose((x[:, :, 0] * x[:, :, 1]).sum(1, keepdim=True), y)


def test_brackets_targets_are_the_depth_after_each_step():
    data = sequences.brackets(count=30, steps=16, max_depth=3)
    step = 1 - 2 * data.train_x[:, :, 1]  # ( → +1, ) → −1
    assert torch.equal(step.cumsum(1).long(), data.train_y)
    assert data.train_y.min() >= 0 and data.train_y.max() <= 3


def test_copy_reverse_and_sine_targets():
    tokens = sequences.reverse(count=20, steps=5)
    assert torch.equal(tokens.train_x.argmax(-1).flip(1), tokens.train_y)
    copied = sequences.copy(count=20, steps=5)
    assert torch.equal(copied.train_x.argmax(-1), copied.train_y)
    waves = sequences.sine(count=20, steps=30)
    assert torch.allclose(waves.train_x[:, 1:], waves.train_y[:, :-1])  # the target is the next value


def test_text_windows_predict_the_next_character():
    data = sequences.text(count=20, steps=10)
    corpus = sequences.read_corpus()
    first = "".join(data.classes[i] for i in data.train_x[0].argmax(-1))
    assert first in corpus
    assert "".join(data.classes[i] for i in data.train_y[0]) == first[1:] + corpus[corpus.index(first) + 10]
    nxt = sequences.text(count=20, steps=1, target="next")
    assert nxt.task == "classification" and nxt.input_shape == (1, len(nxt.classes))


def test_the_bundled_text_says_its_licence():
    attribution = (ROOT / "lumen" / "resources" / "ATTRIBUTION.md").read_text()
    assert "text/corpus.txt" in attribution and "public domain" in attribution


def test_unknown_names_and_options_are_refused_in_one_line():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="steps must be a whole number"):
        load_dataset("recall", steps=0)
    with pytest.raises(DataError, match="sine:"):
        load_dataset("sine", colour="red")


# ---- a user's files --------------------------------------------------------------------------------------------


def write_idx(path, array, type_code):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(array.dtype.newbyteorder(">")).tobytes())
    return path


def test_idx_files_load_with_the_labels_beside_them(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 7, 7)).astype(np.uint8)
    labels = rng.integers(0, 3, 30).astype(np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", images, 0x08)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    data = load_dataset(str(path))
    assert data.input_shape == (1, 7, 7) and data.classes == ("0", "1", "2")
    assert len(data.train_x) + len(data.val_x) == 30 and float(data.train_x.max()) <= 1.0
    packed = tmp_path / "t10k-images-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 0x08)  # not gzipped: both are accepted
    assert load_dataset(str(packed)).input_shape == (1, 7, 7)


def test_bad_idx_files_are_refused(tmp_path):
    (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", 10, 28, 28) + b"\0" * 5)
    with pytest.raises(DataError, match="the header says"):
        load_dataset(str(tmp_path / "x-images-idx3-ubyte"))
    (tmp_path / "junk.idx").write_bytes(b"PK\3\4 not idx")
    with pytest.raises(DataError, match="is not an IDX file"):
        load_dataset(str(tmp_path / "junk.idx"))


def test_an_image_folder_has_one_sub_folder_per_class(tmp_path):
    from PIL import Image

    for k, name in enumerate(["cats", "dogs"]):
        (tmp_path / name).mkdir()
        for i in range(6):
            Image.new("RGB", (20, 12), (40 * i, 200 * k, 90)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "cats" / "notes.txt").write_text("not a picture")
    data = load_dataset(str(tmp_path), size=16)
    assert data.classes == ("cats", "dogs") and data.input_shape == (3, 16, 16)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match="broken.png is not an image Lumen can read"):
        load_dataset(str(tmp_path))


def test_a_csv_series_is_windowed_and_its_end_held_out(tmp_path):
    t = np.arange(200)
    rows = "\n".join(f"{np.sin(0.1 * i):.5f},{np.cos(0.1 * i):.5f}" for i in t)
    (tmp_path / "waves.csv").write_text("sin,cos\n" + rows + "\n")
    data = load_dataset(str(tmp_path / "waves.csv"))
    assert data.task == "regression" and data.input_shape == (32, 2) and data.target_shape == (32, 2)
    assert torch.allclose(data.train_x[0, 1:], data.train_y[0, :-1])
    assert torch.equal(data.val_x[-1, 1:], data.val_y[-1, :-1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3\n", "row 3 has 1 values, not 2"),
        ("a,b\n1,nan\n", "is not a finite number"),
        ("a,b\n1,x\n", "'x' is not a finite number"),
        ("", "holds no rows"),
    ],
)
def test_bad_csv_files_are_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(str(tmp_path / "bad.csv"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_as_csv_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset(str(tmp_path / "pipe.csv"))
