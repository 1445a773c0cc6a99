"""The engine's worker: a thread and a command queue around a ``Session`` (``engine.runtime.session``).

Commands (dataclasses from ``engine.runtime.commands``) are queued from any thread and handed to the session one
at a time, between batches, so pause, stop and probe changes take effect within one batch; while the session is
busy (training, a job, a replay) the thread does one unit of its work whenever no command waits. Nothing is
shared with the caller except the queue and the ``sink`` callback, which receives every event on the worker's
thread (the GUI's bridge keeps the newest frame of each type and hands the rest to Qt). Shutdown stops and joins
the thread; nothing is ever killed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lumen.engine.events import Event
from lumen.engine.io.store import RunStore
from lumen.engine.probes.base import Probe
from lumen.engine.runtime.commands import (
    Checkpoint,
    Command,
    ListCheckpoints,
    LoadModel,
    Pause,
    ProbeImage,
    ProbeSample,
    Quit,
    Resume,
    Save,
    SetLearningRate,
    Step,
    Stop,
    Train,
)
from lumen.engine.runtime.session import Session
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.training.loop import TrainConfig


class EngineWorker:
    def __init__(
        self,
        sink: Callable[[Event], None],
        *,
        torch_threads: int | None = None,
        probes: Sequence[Probe] | None = None,
        store: Callable[[], RunStore] | None = None,
        checkpoint_every: int = 0,
    ):
        # ``store``: a RunStore factory, called on the worker's thread (which then owns the connection).
        self._session = Session(sink, probes=probes, store=store, checkpoint_every=checkpoint_every)
        self._torch_threads = torch_threads
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="lumen-engine", daemon=True)

    # ---- commands: safe to call from any thread, they return at once ------------------------------
    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Command) -> None:
        """Queue a command; one the session has no handler for is refused here, in the caller's thread."""
        known = self._session.commands
        if not isinstance(command, Quit) and type(command) not in known:
            raise TypeError(
                f"the engine has no command {command!r}; commands are the dataclasses in "
                f"lumen.engine.runtime.commands ({', '.join(t.__name__ for t in known)}, Quit)"
            )
        self._commands.put(command)

    def load_model(
        self,
        spec: ModelSpec,
        dataset: str | None = None,
        weights: Mapping[str, Any] | None = None,
        weights_from: str = "",
    ) -> None:
        """Load ``spec`` on ``dataset`` (a built-in name or a path; None: the preset's default data), with the
        ``weights`` that fit it (an opened ONNX model's), else fresh ones."""
        self.submit(LoadModel(spec, dataset, weights, weights_from))

    def train(self, config: TrainConfig) -> None:
        self.submit(Train(config))

    def pause(self) -> None:
        self.submit(Pause())

    def resume(self) -> None:
        self.submit(Resume())

    def step_once(self) -> None:
        self.submit(Step())

    def stop(self) -> None:
        self.submit(Stop())

    def probe_sample(self, index: int) -> None:
        """Feed the probes validation sample ``index``."""
        self.submit(ProbeSample(int(index)))

    def probe_image(self, pixels: np.ndarray, name: str) -> None:
        """Feed the probes a user's picture (decoded pixels, H×W[×C] uint8)."""
        self.submit(ProbeImage(pixels, name))

    def set_learning_rate(self, lr: float) -> None:
        self.submit(SetLearningRate(float(lr)))

    def save(self, run_dir: str | Path, force: bool = False) -> None:
        self.submit(Save(Path(run_dir), force))

    def checkpoint(self) -> None:
        """Write a checkpoint of the run in progress now (into its run-store folder)."""
        self.submit(Checkpoint())

    def list_checkpoints(self, run: str | Path | None = None) -> None:
        """Send the ``CheckpointList`` of ``run`` (a run-store id or a run folder; None: the worker's own run)."""
        self.submit(ListCheckpoints(run))

    @property
    def run_id(self) -> str | None:
        """The run-store id of the run in progress or last run (None when runs are not recorded)."""
        return self._session.run_id

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop any run and end the thread; True if it ended within ``timeout`` seconds."""
        if self._thread.is_alive():
            self.submit(Quit())
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the loop (the worker's thread) -------------------------------------------------------------
    def _loop(self) -> None:
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        session = self._session
        while True:
            busy = session.busy
            command: Command | None
            try:
                command = self._commands.get_nowait() if busy else self._commands.get()
            except queue.Empty:
                command = None
            if isinstance(command, Quit):
                session.close()
                return
            if command is not None:
                session.handle(command)
            elif busy:
                session.work()
