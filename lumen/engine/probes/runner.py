"""Runs the probes between batches, each no more often than its interval and within its cost budget."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lumen.engine.errors import LumenError
from lumen.engine.events import EngineError, Frame, ModelInfo
from lumen.engine.jobs import Job
from lumen.engine.probes.base import Probe, ProbeContext

log = logging.getLogger(__name__)

FIRST_SLICE_S = 0.3  # a probe's job works this long at once; what is left goes on between batches


@dataclass
class _Slot:
    probe: Probe
    next_due: float = 0.0  # monotonic time at which it may run again while training
    cost_s: float = 0.0  # how long its last run took
    broken: bool = False  # it raised; skipped until the next model is loaded
    stale: bool = False  # skipped while unwatched: its last frame is out of date
    applies: bool = True  # it can say something about the loaded model (``Probe.applies``)
    job: Job | None = None  # the rest of its last frame's work, run in slices by ``advance_jobs``


class ProbeRunner:
    """``run(context)`` returns the frames (and errors) of the probes that are due.

    While training a probe is due ``max(interval_s, min_interval_s)`` after its last run, and later if its
    last run cost more than its budget allows: a probe that took ``c`` seconds with a budget share ``b``
    waits at least ``c·(1−b)/b``, so it never takes more than ``b`` of the worker's time. A forced run (after a
    load, a single step, a stop, a new probe input, new settings) runs every probe at once. A probe that raises
    is reported once and left out until ``reset()``; one that does not apply to the loaded model never runs.

    A probe may answer with a ``Job`` (work too long for the time between two batches): its first slice runs at
    once, the rest in slices through ``advance_jobs`` between the worker's commands. While it goes on the probe
    is not asked again unless forced, which drops the job under way.

    ``watch(frame_types)`` says which frames are on screen: a probe whose frames nobody sees is not run at all
    (a live attribution in a hidden tab would take the worker's time for nothing); once watched again, it is
    due at once, so its view never shows a stale frame for long.
    """

    def __init__(
        self, probes: Sequence[Probe], clock: Callable[[], float] = time.monotonic, *, budget: float | None = None
    ):
        self._slots = [_Slot(probe) for probe in probes]
        self._clock = clock
        # At most this share of the loop's time for any probe, whatever its own budget (``lumen.watch``: the probes
        # run in the user's own loop, which must keep its speed); None: each probe's own.
        self._budget = budget
        self._watched: frozenset[type[Frame]] | None = None  # None: every probe

    def watch(self, frame_types: frozenset[type[Frame]] | None) -> bool:
        """Run only the probes making these frame types (None: all). True when a probe that missed runs while
        unwatched is watched again: it is due now."""
        self._watched = frame_types
        due = False
        for slot in self._slots:
            if slot.stale and self._watching(slot):
                slot.next_due, slot.stale, due = 0.0, False, True
        return due

    def _watching(self, slot: _Slot) -> bool:
        return self._watched is None or slot.probe.frame_type in self._watched

    @property
    def probes(self) -> list[Probe]:
        """The probes that apply to the loaded model."""
        return [slot.probe for slot in self._slots if slot.applies]

    def reset(self, info: ModelInfo | None = None) -> frozenset[type[Frame]]:
        """A new model: every probe that applies to it (all, without ``info``) runs again, at once. Returns the
        frame types of those that apply."""
        self.cancel_jobs()
        for slot in self._slots:
            slot.next_due, slot.cost_s, slot.broken, slot.stale = 0.0, 0.0, False, False
            slot.applies = info is None or slot.probe.applies(info)
        return frozenset(slot.probe.frame_type for slot in self._slots if slot.applies)

    def configure(self, name: str, settings: object) -> None:
        """``ConfigureProbe``: the named probe's new settings, refused (naming the probes, or the settings type it
        takes) before anything changes."""
        probe = next((slot.probe for slot in self._slots if slot.probe.name == name), None)
        if probe is None:
            raise LumenError(f"there is no {name!r} probe (probes: {', '.join(s.probe.name for s in self._slots)})")
        probe.configure(settings)

    def run(
        self, context: ProbeContext, *, force: bool, min_interval_s: float = 0.0, only: str | None = None
    ) -> list[Frame | EngineError]:
        """``only``: force just the probe of that name (new settings); the others run when they are due."""
        events: list[Frame | EngineError] = []
        for slot in self._slots:
            forced = force and (only is None or slot.probe.name == only)
            if slot.broken or not slot.applies or not (forced or self._clock() >= slot.next_due):
                continue
            if not self._watching(slot):
                slot.stale = True
                continue
            if slot.job is not None:
                if not forced:
                    continue  # its last frame is still being made
                slot.job.cancel()
                slot.job = None
            began = self._clock()
            try:
                frame = self._first_slice(slot, slot.probe.frame(context))
            except Exception as exc:  # a probe's bug must not stop training: report it, leave the probe out
                events.append(self._failed(slot, exc))
                continue
            ended = self._clock()
            slot.cost_s = ended - began
            share = slot.probe.budget if self._budget is None else min(slot.probe.budget, self._budget)
            budget_gap = slot.cost_s * (1 - share) / share
            slot.next_due = ended + max(slot.probe.interval_s, min_interval_s, budget_gap)
            if frame is not None:
                events.append(frame)
        return events

    @staticmethod
    def _first_slice(slot: _Slot, made: Frame | Job | None) -> Frame | None:
        if not isinstance(made, Job):
            return made
        frame = made.advance(slice_s=FIRST_SLICE_S)
        if not made.finished:
            slot.job = made
        return frame

    @staticmethod
    def _failed(slot: _Slot, exc: Exception) -> EngineError:
        log.error("probe %s failed\n%s", slot.probe.name, traceback.format_exc())
        slot.broken, slot.job = True, None
        return EngineError(
            f"the {slot.probe.name} probe failed ({type(exc).__name__}: {exc}); "
            "it is off until the next model is loaded"
        )

    @property
    def busy(self) -> bool:
        """A probe's job is under way."""
        return any(slot.job is not None for slot in self._slots)

    def advance_jobs(self) -> list[Frame | EngineError]:
        """One slice of each probe's job under way (one whose frames nobody watches any more is dropped)."""
        events: list[Frame | EngineError] = []
        for slot in self._slots:
            job = slot.job
            if job is None:
                continue
            if not self._watching(slot):
                job.cancel()
                slot.job, slot.stale = None, True
                continue
            try:
                frame = job.advance()
            except Exception as exc:
                events.append(self._failed(slot, exc))
                continue
            if job.finished:
                slot.job = None
            if frame is not None:
                events.append(frame)
        return events

    def cancel_jobs(self) -> list[Frame]:
        """Stop every probe's job: the frames so far, marked stopped."""
        frames = []
        for slot in self._slots:
            if slot.job is not None:
                frame = slot.job.cancel()
                slot.job = None
                if frame is not None:
                    frames.append(frame)
        return frames
