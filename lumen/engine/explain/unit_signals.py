"""Which units of a recurrent layer track what: signals worked out from the input sequence (the position, a
bracket's nesting depth, whether a token is seen, how long since it was), each unit's correlation with one, and
LSTMVis-style selection — the units high over a marked span of the input and low elsewhere, and the other spans
of the validation data where those units are high together.

Strobelt et al., "LSTMVis" (2017): a selection is the units at or above a threshold over the whole span; a match
is a stretch of another sequence where (here: at least three quarters of) those units are on together, ranked by
how close its length is to the span's. Written here, not taken from LSTMVis: its server reads HDF5 dumps, and
what it computes is a few array operations on the states the gates probe already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"))
MAX_TOKEN_SIGNALS = 40  # a larger vocabulary offers only position and depth: the list would be unreadable
MATCH_SHARE = 0.75  # a step matches when at least this share of the selected units is on


def signals(x: np.ndarray, tokens: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named signals over a batch of input sequences ``x`` (N × T × F, one-hot over ``tokens`` when given,
    values otherwise), each N × T float64: what a unit's activity may be compared with."""
    n, steps, features = x.shape
    position = np.broadcast_to(np.arange(steps, dtype=np.float64), (n, steps))
    found: dict[str, np.ndarray] = {"position": position}
    if not tokens or len(tokens) != features:
        for k in range(min(features, MAX_TOKEN_SIGNALS)):
            found[f"input {k}" if features > 1 else "input value"] = x[..., k].astype(np.float64)
        return found
    seen = x.astype(np.float64)
    index = {token: i for i, token in enumerate(tokens)}
    for opening, closing in BRACKETS:
        if opening in index and closing in index:
            depth = np.cumsum(seen[..., index[opening]] - seen[..., index[closing]], axis=1)
            found["bracket depth" if opening == "(" else f"{opening}{closing} depth"] = depth
    if len(tokens) <= MAX_TOKEN_SIGNALS:
        for token, i in index.items():
            found[f"input is {token!r}"] = seen[..., i]
        for token, i in index.items():
            found[f"steps since {token!r}"] = _steps_since(seen[..., i] > 0.5)
    return found


def _steps_since(hit: np.ndarray) -> np.ndarray:
    """Per step, how many steps ago the token was last seen (0: at this step); before its first sight, the
    number of steps so far plus one (as if seen just before the sequence began)."""
    steps = np.arange(hit.shape[1])
    last = np.maximum.accumulate(np.where(hit, steps, -1), axis=1)
    return (steps - last).astype(np.float64)


def correlations(states: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Each unit's Pearson correlation with ``signal`` (N × T) over every step of every sequence; ``states`` is
    N × T × U. A constant unit or signal correlates 0."""
    values = states.reshape(-1, states.shape[-1]).astype(np.float64)
    target = signal.reshape(-1).astype(np.float64)
    values = values - values.mean(axis=0)
    target = target - target.mean()
    scale = np.sqrt((values**2).sum(axis=0) * (target**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (values * target[:, None]).sum(axis=0) / scale
    return np.where(scale > 1e-12, r, 0.0)


def select_units(states: np.ndarray, start: int, end: int, threshold: float) -> np.ndarray:
    """The units of ``states`` (T × U, one sequence) at or above ``threshold`` at every step of ``start..end``
    (inclusive) and below it on average elsewhere, the most distinct (mean inside − mean outside) first."""
    inside = states[start : end + 1]
    outside = np.concatenate([states[:start], states[end + 1 :]])
    on = inside.min(axis=0) >= threshold
    if len(outside):
        on &= outside.mean(axis=0) < threshold
    contrast = inside.mean(axis=0) - (outside.mean(axis=0) if len(outside) else 0.0)
    units = np.flatnonzero(on)
    return units[np.argsort(-contrast[units], kind="stable")]


@dataclass(frozen=True)
class SpanMatch:
    sample: int  # which sequence of the batch searched
    start: int
    end: int  # inclusive
    share: float  # the mean share of the selected units on over the match


def find_matches(
    states: np.ndarray, units: np.ndarray, threshold: float, length: int, limit: int = 10
) -> list[SpanMatch]:
    """Stretches of the sequences of ``states`` (N × T × U) where at least ``MATCH_SHARE`` of ``units`` are at
    or above ``threshold`` together, the closest in length to ``length`` first (then the most units on)."""
    if len(units) == 0:
        return []
    share = (states[..., units] >= threshold).mean(axis=-1)  # N × T
    found = []
    for sample, row in enumerate(share >= MATCH_SHARE):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            found.append(SpanMatch(sample, int(start), int(stop - 1), float(share[sample, start:stop].mean())))
    found.sort(key=lambda m: (abs((m.end - m.start + 1) - length), -m.share, m.sample, m.start))
    return found[:limit]
