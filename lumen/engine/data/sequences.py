"""Sequence datasets, generated from a seed (the same arguments give the same tensors on every machine).

Inputs are float32 N×T×F: real values (``sine``, ``adding``) or one-hot tokens (the rest). Each generator takes
``count``, ``steps`` and ``seed`` plus its own options, and splits off a fixed validation part.

- ``sine``: sums of two or three sine waves; forecast the next value at every step (regression, many-to-many).
  ``form="generate"``: the wave's parameters in, the wave out (one-to-many).
- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997): numbers and a marker channel; the target is
  the sum of the two marked numbers (regression, many-to-one).
- ``recall``: a flagged key letter first, then distractors from the same letters, then a query mark: name the
  key (many-to-one classes). A vanilla RNN forgets it over a long gap; an LSTM keeps it.
- ``copy`` / ``reverse``: a token string in, the same string (or reversed) out (sequence-to-sequence).
- ``brackets``: a string of ( and ); the nesting depth after each step (per-step classes).
- ``text``: windows of a bundled public-domain text (``resources/text/``), one-hot characters; the next
  character at each step (``target="per_step"``) or after the window (``target="next"``).
"""

from __future__ import annotations

import numpy as np
import torch

from lumen.engine.data.datasets import CLASSIFICATION, PER_STEP, REGRESSION, SEQ2SEQ, Dataset, split
from lumen.engine.errors import DataError
from lumen.engine.resources import resource_path

VAL_FRACTION = 0.15
TEXT_FILE = ("text", "corpus.txt")


def _check(name: str, **sizes: int) -> None:
    for key, value in sizes.items():
        if not (isinstance(value, int) and 1 <= value <= 100_000):
            raise DataError(f"{name}: {key} must be a whole number from 1 to 100,000, got {value!r}")


def _one_hot(tokens: np.ndarray, size: int) -> np.ndarray:
    return np.eye(size, dtype=np.float32)[tokens]


def _dataset(
    name: str,
    classes: tuple[str, ...],
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    description: str,
    input_tokens: tuple[str, ...] = (),
    **options: object,
) -> Dataset:
    train, val = split(x, y, VAL_FRACTION)
    tx, ty = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    return Dataset(
        name,
        classes,
        tx[train],
        ty[train],
        tx[val],
        ty[val],
        task,
        description,
        options=dict(options),
        input_tokens=input_tokens,
    )


def sine(count: int = 1200, steps: int = 40, seed: int = 0, form: str = "forecast") -> Dataset:
    """Mixed sine waves. ``forecast``: x[t] = wave(t), y[t] = wave(t + 1), both T×1. ``generate``: x is the
    first wave's (frequency, phase, amplitude), y the T×1 wave it makes alone."""
    _check("sine", count=count, steps=steps)
    rng = np.random.default_rng(seed)
    t = np.arange(steps + 1, dtype=np.float64)
    if form == "generate":
        freq, phase, amp = rng.uniform(0.05, 0.3, count), rng.uniform(0, 2 * np.pi, count), rng.uniform(0.3, 1.0, count)
        wave = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :steps] + phase[:, None])
        x = np.stack([freq / 0.3, phase / (2 * np.pi), amp], axis=1).astype(np.float32)
        y = wave[:, :, None].astype(np.float32)
        return _dataset("sine", (), x, y, REGRESSION, f"a sine wave's parameters → its {steps} values", form=form)
    if form != "forecast":
        raise DataError(f"sine: form is 'forecast' or 'generate', got {form!r}")
    waves = rng.integers(2, 4, count)
    freq = rng.uniform(0.02, 0.2, (count, 3))
    phase = rng.uniform(0, 2 * np.pi, (count, 3))
    amp = rng.uniform(0.2, 0.6, (count, 3)) * (np.arange(3)[None] < waves[:, None])
    signal = (amp[:, :, None] * np.sin(2 * np.pi * freq[:, :, None] * t[None, None] + phase[:, :, None])).sum(1)
    x = signal[:, :steps, None].astype(np.float32)
    y = signal[:, 1:, None].astype(np.float32)
    return _dataset("sine", (), x, y, REGRESSION, f"mixed sine waves, {steps} steps: forecast the next value")


def adding(count: int = 2000, steps: int = 30, seed: int = 0) -> Dataset:
    """x: T×2 (a uniform number, a marker that is 1 at two steps, one in each half); y: the marked numbers' sum."""
    _check("adding", count=count, steps=steps)
    if steps < 2:
        raise DataError("adding: steps must be at least 2")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (count, steps))
    half = steps // 2
    first, second = rng.integers(0, half, count), rng.integers(half, steps, count)
    marker = np.zeros((count, steps))
    marker[np.arange(count), first] = 1
    marker[np.arange(count), second] = 1
    x = np.stack([values, marker], axis=2).astype(np.float32)
    y = (values * marker).sum(1, keepdims=True).astype(np.float32)
    return _dataset("adding", (), x, y, REGRESSION, f"adding problem, {steps} steps: sum of the two marked numbers")


RECALL_LETTERS = "ABCDEFGHIJKLMNOP"


def recall(count: int = 2000, steps: int = 20, seed: int = 0, symbols: int = 8) -> Dataset:
    """A key (one of ``symbols`` letters A, B, ...) flagged "remember this", ``steps − 2`` distractors drawn from
    the *same* letters, then a query mark ``?``; the target is the key. Features (``symbols + 2``): the letters
    one-hot, the flag (1 at the key only), the query (1 at the last step only).

    The distractors share the key's alphabet, so a model cannot learn to ignore them: it must write the flagged
    letter and refuse every later one for ``steps − 2`` steps — like "born in Japan … I speak fluent ___", where
    "born in" says what to keep. An LSTM's input gate, opened by the flag, does that; a vanilla RNN's state is
    pushed by every letter and the gradient from the query back to the key vanishes over the gap, so beyond a
    few dozen steps it mostly stays near chance (1/symbols). An LSTM learns it over 150 steps and more when its
    gates start open to keep and shut to write (``forget_bias`` 5, ``input_bias`` −5 on the lstm layer);
    ``benchmarks/recall_rnn_vs_lstm.py`` measures both."""
    _check("recall", count=count, steps=steps)
    if steps < 2:
        raise DataError("recall: steps must be at least 2 (the key and the query)")
    if not (isinstance(symbols, int) and 2 <= symbols <= len(RECALL_LETTERS)):
        raise DataError(f"recall: symbols must be a whole number from 2 to {len(RECALL_LETTERS)}, got {symbols!r}")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, symbols, (count, steps))
    keys = tokens[:, 0].copy()
    x = np.zeros((count, steps, symbols + 2), dtype=np.float32)
    x[np.arange(count)[:, None], np.arange(steps)[None], tokens] = 1
    x[:, 0, symbols] = 1  # the flag: remember this one
    x[:, -1, :] = 0
    x[:, -1, symbols + 1] = 1  # the query
    return _dataset(
        "recall",
        tuple(RECALL_LETTERS[:symbols]),
        x,
        keys.astype(np.int64),
        CLASSIFICATION,
        f"recall the flagged first of {symbols} letters after {steps - 2} distractors from the same letters",
        input_tokens=(*RECALL_LETTERS[:symbols], "!", "?"),
        symbols=symbols,
    )


SYMBOLS = ("a", "b", "c", "d", "e", "f")


def _tokens_to_tokens(name: str, count: int, steps: int, seed: int, reverse: bool) -> Dataset:
    _check(name, count=count, steps=steps)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, len(SYMBOLS), (count, steps))
    target = tokens[:, ::-1] if reverse else tokens
    return _dataset(
        name,
        SYMBOLS,
        _one_hot(tokens, len(SYMBOLS)),
        target.astype(np.int64),
        SEQ2SEQ,
        f"{'reverse' if reverse else 'copy'} a string of {steps} tokens",
    )


def copy(count: int = 2000, steps: int = 8, seed: int = 0) -> Dataset:
    return _tokens_to_tokens("copy", count, steps, seed, reverse=False)


def reverse(count: int = 2000, steps: int = 8, seed: int = 0) -> Dataset:
    return _tokens_to_tokens("reverse", count, steps, seed, reverse=True)


def brackets(count: int = 2000, steps: int = 20, seed: int = 0, max_depth: int = 4) -> Dataset:
    """Random strings of ( and ) that never close more than they opened nor nest beyond ``max_depth``; the
    target at each step is the depth after it (classes 0 … max_depth)."""
    _check("brackets", count=count, steps=steps, max_depth=max_depth)
    rng = np.random.default_rng(seed)
    depth = np.zeros(count, dtype=np.int64)
    tokens = np.zeros((count, steps), dtype=np.int64)
    depths = np.zeros((count, steps), dtype=np.int64)
    for t in range(steps):
        opening = rng.random(count) < 0.5
        opening = np.where(depth == 0, True, np.where(depth == max_depth, False, opening))
        depth = depth + np.where(opening, 1, -1)
        tokens[:, t] = np.where(opening, 0, 1)
        depths[:, t] = depth
    return _dataset(
        "brackets",
        tuple(str(d) for d in range(max_depth + 1)),
        _one_hot(tokens, 2),
        depths,
        PER_STEP,
        f"strings of {steps} brackets: the nesting depth after each",
        input_tokens=("(", ")"),
    )


def read_corpus() -> str:
    path = resource_path(*TEXT_FILE)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"the bundled text at {path} cannot be read: {exc.strerror or exc}") from None


def text(count: int = 2000, steps: int = 32, seed: int = 0, target: str = "per_step") -> Dataset:
    """``count`` windows of ``steps`` characters at seeded offsets; vocabulary: the corpus's characters."""
    _check("text", count=count, steps=steps)
    corpus = read_corpus()
    vocabulary = tuple(sorted(set(corpus)))
    ids = np.array([vocabulary.index(c) for c in corpus], dtype=np.int64)
    if len(ids) <= steps + 1:
        raise DataError(f"text: the corpus has {len(ids)} characters, too few for windows of {steps}")
    starts = np.random.default_rng(seed).integers(0, len(ids) - steps - 1, count)
    windows = ids[starts[:, None] + np.arange(steps + 1)[None]]
    x = _one_hot(windows[:, :steps], len(vocabulary))
    if target == "next":
        y, task = windows[:, steps], CLASSIFICATION
    elif target == "per_step":
        y, task = windows[:, 1:], PER_STEP
    else:
        raise DataError(f"text: target is 'per_step' or 'next', got {target!r}")
    return _dataset("text", vocabulary, x, y, task, f"{steps}-character windows of a public-domain text", target=target)
