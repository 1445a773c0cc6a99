"""Time left in a run, from the steps done over the last few seconds of wall-clock time (probes and pauses
included, so the estimate is what the user will wait, not what one batch costs)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 15.0  # the rate is measured over this much recent time


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Eta:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._points: deque[tuple[float, int]] = deque()

    def reset(self) -> None:
        self._points.clear()

    def update(self, step: int, total: int, samples_per_step: float = 0.0) -> str:
        """``ETA m:ss · N samples/s`` once the rate is known, else an empty string."""
        now = self._clock()
        if self._points and step < self._points[-1][1]:
            self._points.clear()  # a new run
        self._points.append((now, step))
        while len(self._points) > 2 and now - self._points[0][0] > WINDOW_S:
            self._points.popleft()
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        if t1 - t0 < 0.5 or s1 <= s0:
            return ""
        rate = (s1 - s0) / (t1 - t0)  # steps per second
        text = f"ETA {clock_text((total - step) / rate)}"
        if samples_per_step > 0:
            text += f" · {rate * samples_per_step:,.0f} samples/s"
        return text
