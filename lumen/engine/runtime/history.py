"""A run's metrics kept compactly: every step's values in growing numpy columns, epochs as they came.

A ``StepMetrics`` object with its dict costs ~0.5 KB; a column costs 8 bytes per value, so a million steps of
three measures take 24 MB instead of ~500 MB. ``events()`` rebuilds the events (for ``save_run``) when asked.
"""

from __future__ import annotations

import math

import numpy as np

from lumen.engine.events import EpochMetrics, Metrics, StepMetrics


def readable(value: float, percent: bool = False) -> str:
    """A measure as people read it: 93.0 % for a share; 0.244 for a loss; 1.27e+33 for one that exploded (a fixed
    3-decimal form of that would be 37 characters wide and push the window past the screen)."""
    if percent:
        return f"{value:.1%}"
    return f"{value:.3f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.3g}"


class MetricsHistory:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._n = 0
        self._keys = np.zeros((0, 3), np.int64)  # step, total_steps, epoch
        self._rate = np.zeros(0, np.float64)  # samples per second
        self._columns: dict[str, np.ndarray] = {}  # name -> values (NaN: the step did not have it)
        self.epochs: list[EpochMetrics] = []

    def __len__(self) -> int:
        return self._n + len(self.epochs)

    @property
    def steps(self) -> int:
        return self._n

    def _grow(self) -> None:
        capacity = max(1024, 2 * len(self._rate))
        self._keys = np.resize(self._keys, (capacity, 3))
        self._rate = np.resize(self._rate, capacity)
        for name, column in self._columns.items():
            grown = np.full(capacity, math.nan)
            grown[: self._n] = column[: self._n]
            self._columns[name] = grown

    def append(self, event: Metrics) -> None:
        if isinstance(event, EpochMetrics):
            self.epochs.append(event)
            return
        if self._n == len(self._rate):
            self._grow()
        i = self._n
        self._keys[i] = (event.step, event.total_steps, event.epoch)
        self._rate[i] = event.samples_per_s
        for name, value in event.values.items():
            column = self._columns.get(name)
            if column is None:
                column = self._columns[name] = np.full(len(self._rate), math.nan)
            column[i] = value
        self._n += 1

    def step_events(self) -> list[StepMetrics]:
        names = list(self._columns)
        table = np.stack([self._columns[n][: self._n] for n in names], axis=1) if names else None
        events = []
        for i in range(self._n):
            step, total, epoch = (int(v) for v in self._keys[i])
            row = table[i].tolist() if table is not None else []
            values = {name: value for name, value in zip(names, row, strict=True) if not math.isnan(value)}
            events.append(StepMetrics(step, total, epoch, values, float(self._rate[i])))
        return events

    def events(self) -> list[Metrics]:
        """Every step's metrics, then every epoch's (each kind in its order)."""
        return [*self.step_events(), *self.epochs]
