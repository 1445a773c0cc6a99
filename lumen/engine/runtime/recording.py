"""Recording a run in the run store: its row, folder, metrics and checkpoints, for the window's session and the
command line alike. A store that cannot be opened, or that fails mid-run, is reported once through
``report(when, error)`` — ``when`` is ``START``, ``DURING`` or ``CLOSE`` — and the run goes on unrecorded: training
never stops because of the store. Each caller words the report its own way."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumen.engine.errors import LumenError
from lumen.engine.events import Metrics, StepMetrics
from lumen.engine.io.store import RunRecorder, RunStore
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import Training
from lumen.engine.training.resume import training_state

StoreErrors = (LumenError, sqlite3.Error)
START, DURING, CLOSE = "start", "during", "close"  # when the store failed: the run is then not recorded at all,
# no longer recorded, or recorded but not marked ended
# The least time between two automatic epoch-end checkpoints. A checkpoint (weights and optimiser state) costs a few
# milliseconds: at each end of an epoch of 27 batches of ~2 ms (``recall``) that was ~7 % of the worker's time. An
# epoch's end is kept when no checkpoint was written for this long (so a run's first one is); checkpoints every N
# steps that the user asked for, ``checkpoint()`` ("Checkpoint now") and the last one (``close``) are never held back.
CHECKPOINT_FLOOR_S = 5.0


class Recording:
    def __init__(
        self,
        store: Callable[[], RunStore] | None,
        report: Callable[[str, Exception], None],
        *,
        checkpoint_every: int = 0,
        written: Callable[[RunRecorder], None] | None = None,
        floor_s: float = CHECKPOINT_FLOOR_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        # ``store``: a factory, called on the thread that records (which then owns the connection); None: runs are
        # not recorded. ``checkpoint_every``: steps between checkpoints (0: at epochs' ends and when asked).
        # ``written(recorder)``: after each checkpoint (the window lists them for its replay slider). ``floor_s``:
        # an epoch's end is checkpointed only this long after the last checkpoint (``clock`` tells the time).
        self._factory, self._report, self._written = store, report, written
        self._store: RunStore | None = None
        self.checkpoint_every = checkpoint_every
        self.floor_s, self._clock = floor_s, clock
        self._checkpointed_at = -math.inf  # when the run in progress last wrote a checkpoint
        self.recorder: RunRecorder | None = None

    @property
    def run_id(self) -> str | None:
        return self.recorder.id if self.recorder is not None else None

    def store(self) -> RunStore:
        """The store, opened the first time (``LumenError`` when runs are not recorded here)."""
        if self._store is None:
            if self._factory is None:
                raise LumenError("runs are not recorded here")
            self._store = self._factory()
        return self._store

    def start(self, spec: ModelSpec, data: str, training: Training, info: dict[str, Any]) -> None:
        """A new run's row and folder (spec, settings); a store that fails is reported once, and never asked again."""
        self.recorder = None
        self._checkpointed_at = -math.inf
        if self._factory is None:
            return
        try:
            self.recorder = RunRecorder.start(
                self.store(),
                spec,
                data,
                training.objective.name,
                training.total_steps,
                info,
                checkpoint_every=self.checkpoint_every,
            )
        except StoreErrors as exc:
            self._factory = None
            self._report(START, exc)

    def follow(self, recorder: RunRecorder) -> None:
        """Go on recording a run already in the store (a resumed one)."""
        recorder.checkpoint_every = self.checkpoint_every
        self.recorder = recorder
        self._checkpointed_at = -math.inf

    def record(self, event: Metrics, training: Training) -> None:
        """A step's or an epoch's metrics, and a checkpoint when one is due: every ``checkpoint_every`` steps, and
        at an epoch's end when none was written for ``floor_s`` seconds."""
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder.record(event)
            if isinstance(event, StepMetrics) and self._due(recorder, event.step, training.steps_per_epoch):
                self.checkpoint(training)
        except StoreErrors as exc:
            self.recorder = None
            self._report(DURING, exc)

    def _due(self, recorder: RunRecorder, step: int, steps_per_epoch: int) -> bool:
        every = recorder.checkpoint_every
        if every > 0 and step % every == 0:  # asked for: always kept
            return True
        epoch_end = steps_per_epoch > 0 and step % steps_per_epoch == 0
        return epoch_end and self._clock() - self._checkpointed_at >= self.floor_s

    def checkpoint(self, training: Training) -> Path:
        """A checkpoint of the run's whole state now (``LumenError`` when no run is being recorded)."""
        recorder = self.recorder
        if recorder is None or recorder.closed:
            raise LumenError("there is no recorded run in progress to checkpoint")
        path = recorder.checkpoint(*training_state(training))
        self._checkpointed_at = self._clock()
        if self._written is not None:
            self._written(recorder)
        return path

    def close(self, status: str, message: str, training: Training | None, checkpoint: bool = True) -> None:
        """Mark the recorded run ended; a finished or stopped run's weights are checkpointed (a failed run keeps
        its last good checkpoint)."""
        recorder = self.recorder
        if recorder is None or recorder.closed:
            return
        try:
            if checkpoint and training is not None and status in ("finished", "stopped"):
                self.checkpoint(training)
            recorder.close(status, message)
        except StoreErrors as exc:
            self._report(CLOSE, exc)

    def set_interval(self, steps: int) -> None:
        """Checkpoints every ``steps`` steps from now on, the run in progress too (from its next step)."""
        self.checkpoint_every = steps
        if self.recorder is not None and not self.recorder.closed:
            self.recorder.checkpoint_every = steps

    def shut(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
