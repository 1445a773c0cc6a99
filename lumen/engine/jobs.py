"""The one kind of long job: work that runs in slices between the worker's commands, with progress and cancel.

A long attribution (a probe's), activation maximization and DeepDream (the viewer's commands) and a replayed
checkpoint's frames are all a ``Job``: a generator that does a little work per ``next``, is told whether a
progress frame is due (``send(True)``: the interval since the last one has passed), yields that frame (or None
when none is due or it has nothing new), and returns its last frame. ``advance`` runs it for at most
``slice_s`` seconds, so pause, stop and a new probe input take effect within one slice; ``cancel`` closes it
and returns its last frame marked stopped (``stopped``); ``run_to_end`` runs it through (a replay, the CLI).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Generic, TypeVar

from lumen.engine.events import Frame

F = TypeVar("F", bound=Frame)


class Job(Generic[F]):
    def __init__(
        self,
        name: str,
        target: str,
        work: Generator[F | None, bool, F | None],
        *,
        stopped: Callable[[F], F | None] | None = None,
        interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name, self.target = name, target  # for status lines: "deepdream", "channel 3 of conv2"
        self._work, self._stopped = work, stopped
        self._interval_s, self._clock = interval_s, clock
        self._last_emit = float("-inf")
        self.last: F | None = None  # the newest frame it made
        self.finished = False
        self._started = False

    def _next(self, due: bool) -> F | None:
        if not self._started:  # a generator's first step takes no value
            self._started = True
            return next(self._work)
        return self._work.send(due)

    def advance(self, slice_s: float = 0.05) -> F | None:
        """Work for up to ``slice_s`` seconds (one step at least). Returns its last frame when it ended within the
        slice, else a progress frame when one was due (at most one is asked for per slice), else None."""
        if self.finished:
            return None
        began = self._clock()
        newest: F | None = None
        while True:
            due = newest is None and self._clock() - self._last_emit >= self._interval_s
            try:
                frame = self._next(due)
            except StopIteration as stop:
                self.finished = True
                self.last = stop.value if stop.value is not None else self.last
                return stop.value
            except BaseException:
                self.finished = True
                raise
            if frame is not None:
                newest = self.last = frame
            if self._clock() - began >= slice_s:
                break
        if newest is not None:
            self._last_emit = self._clock()
        return newest

    def cancel(self) -> F | None:
        """Stop: the frame so far marked stopped (None when it had ended already or made none)."""
        if self.finished:
            return None
        self.finished = True
        self._work.close()
        if self.last is None:
            return None
        return self._stopped(self.last) if self._stopped is not None else self.last

    def run_to_end(self) -> F | None:
        """Its last frame, working through without slices (a replay, the command line)."""
        frame = self.advance(slice_s=float("inf"))
        return frame if frame is not None else self.last
