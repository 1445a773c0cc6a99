"""A curve that keeps at most a fixed number of points however long the run: min/max buckets that widen.

``Decimated.add(x, y)`` costs O(1) (amortised); ``arrays()`` costs O(capacity). Until ``capacity`` points have
arrived every point is kept as it is. Then neighbouring points are merged in pairs into buckets, each kept as
its minimum and its maximum (the envelope pyqtgraph's "peak" downsampling draws), and every time the buckets
fill up they merge in pairs again, so a bucket spans 2, 4, 8, ... steps. A million-step curve is drawn from at
most ``2 × capacity`` points, and the GUI thread's work per redraw does not depend on the run's length.
"""

from __future__ import annotations

import numpy as np

CAPACITY = 1024  # buckets: ~2,000 points, a few per pixel column of a plot; more only costs painting


class Decimated:
    def __init__(self, capacity: int = CAPACITY):
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number ≥ 2")
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self.width = 1  # points per bucket
        self.n = 0  # buckets filled
        self.x = np.zeros(self.capacity, np.float64)  # each bucket's first x
        self.x_last = np.zeros(self.capacity, np.float64)  # and its last
        self.low = np.zeros(self.capacity, np.float64)
        self.high = np.zeros(self.capacity, np.float64)
        self._pending = 0  # points in the open bucket (when width > 1)
        self.count = 0  # points ever added
        self.last: tuple[float, float] | None = None

    def __len__(self) -> int:
        return self.count

    def add(self, x: float, y: float) -> None:
        self.count += 1
        self.last = (x, y)
        if self._pending:  # the open bucket takes the point
            i = self.n - 1
            self.x_last[i] = x
            if y < self.low[i]:
                self.low[i] = y
            if y > self.high[i]:
                self.high[i] = y
            self._pending += 1
            if self._pending == self.width:
                self._pending = 0
            return
        if self.n == self.capacity:
            self._halve()
        i = self.n
        self.x[i] = self.x_last[i] = x
        self.low[i] = self.high[i] = y
        self.n += 1
        self._pending = 1 if self.width > 1 else 0

    def _halve(self) -> None:
        """Merge the buckets in pairs: half as many, each twice as wide."""
        half = self.n // 2
        self.x[:half] = self.x[0 : self.n : 2]
        self.x_last[:half] = self.x_last[1 : self.n : 2]
        self.low[:half] = np.minimum(self.low[0 : self.n : 2], self.low[1 : self.n : 2])
        self.high[:half] = np.maximum(self.high[0 : self.n : 2], self.high[1 : self.n : 2])
        self.n = half
        self.width *= 2

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The points to draw: every point while they are few, else each bucket's min then max."""
        n = self.n
        if self.width == 1:
            return self.x[:n].copy(), self.low[:n].copy()
        xs = np.empty(2 * n, np.float64)
        ys = np.empty(2 * n, np.float64)
        xs[0::2], xs[1::2] = self.x[:n], self.x_last[:n]
        ys[0::2], ys[1::2] = self.low[:n], self.high[:n]
        return xs, ys


class DecimatedMean(Decimated):
    """The same buckets, each kept as its mean (for a smoothed curve, which needs no envelope)."""

    def clear(self) -> None:
        super().clear()
        self.total = np.zeros(self.capacity, np.float64)

    def add(self, x: float, y: float) -> None:
        opening = self._pending == 0
        super().add(x, y)
        i = self.n - 1
        self.total[i] = y if opening else self.total[i] + y

    def _halve(self) -> None:
        half = self.n // 2
        self.total[:half] = self.total[0 : self.n : 2] + self.total[1 : self.n : 2]
        super()._halve()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        if self.width == 1:
            return self.x[:n].copy(), self.low[:n].copy()
        sizes = np.full(n, float(self.width))
        if self._pending:
            sizes[-1] = self._pending
        return (self.x[:n] + self.x_last[:n]) / 2, self.total[:n] / sizes
