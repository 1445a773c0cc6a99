"""The engine's worker thread: owns the model, runs training batch by batch, obeys commands.

Commands are queued and handled between batches, so pause, stop and probe changes take effect within one
batch. Nothing here is shared with the caller except the command queue and the ``sink`` callback, which
receives every event on the worker thread (the GUI's bridge keeps the newest heavy frame and hands the
rest to Qt). Shutdown stops and joins the thread; nothing is ever killed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.data.datasets import Dataset, load_dataset
from engine.errors import LumenError
from engine.runtime.events import EngineError, EpochMetrics, Event, FeatureMapFrame, State, StatusChanged, StepMetrics
from engine.graph.model import GraphModel, build_model
from engine.data.images import image_input
from engine.layers import fmt
from engine.probes.feature_maps import feature_map_frame
from engine.io.runs import save_run
from engine.spec.model_spec import ModelSpec
from engine.training.loop import TrainConfig, Training

log = logging.getLogger(__name__)


class EngineWorker:
    def __init__(self, sink: Callable[[Event], None], *, torch_threads: int | None = None):
        self._sink = sink
        self._torch_threads = torch_threads
        self._commands: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="lumen-engine", daemon=True)
        # Everything below is touched only on the worker thread.
        self._state = State.IDLE
        self._spec: ModelSpec | None = None
        self._model: GraphModel | None = None
        self._data: Dataset | None = None
        self._training: Training | None = None
        self._steps = None
        self._config = TrainConfig()
        self._history: list[StepMetrics | EpochMetrics] = []
        # What the user chose to look at, and that choice prepared for the current model (None if it
        # does not fit, e.g. a digit for a sequence model).
        self._probe_choice: tuple[str, object, str] = ("sample", 0, "")
        self._probe: tuple[torch.Tensor, str, str | None] | None = None
        self._last_frame = 0.0

    # ---- commands: safe to call from any thread, they return at once ------------------------------
    def start(self) -> None:
        self._thread.start()

    def load_model(self, spec: ModelSpec, dataset: str = "mnist") -> None:
        self._commands.put(("load", (spec, dataset)))

    def train(self, config: TrainConfig) -> None:
        self._commands.put(("train", config))

    def pause(self) -> None:
        self._commands.put(("pause", None))

    def resume(self) -> None:
        self._commands.put(("resume", None))

    def step_once(self) -> None:
        self._commands.put(("step", None))

    def stop(self) -> None:
        self._commands.put(("stop", None))

    def probe_sample(self, index: int) -> None:
        """Show the feature maps of validation sample ``index``."""
        self._commands.put(("probe_sample", index))

    def probe_image(self, pixels: np.ndarray, name: str) -> None:
        """Show the feature maps of a user's picture (decoded pixels, H×W[×C] uint8)."""
        self._commands.put(("probe_image", (pixels, name)))

    def save(self, run_dir: str | Path) -> None:
        self._commands.put(("save", Path(run_dir)))

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop any run and end the thread; True if it ended within ``timeout`` seconds."""
        if self._thread.is_alive():
            self._commands.put(("quit", None))
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        while True:
            running = self._state is State.TRAINING
            try:
                name, arg = self._commands.get_nowait() if running else self._commands.get()
            except queue.Empty:
                name, arg = None, None
            if name == "quit":
                return
            try:
                if name is not None:
                    getattr(self, f"_on_{name}")(arg)
                elif running:
                    self._advance()
            except LumenError as exc:
                self._fail(str(exc))
            except Exception as exc:  # a bug, not bad input: report it and keep the worker alive
                log.error("engine error\n%s", traceback.format_exc())
                self._fail(f"internal error: {type(exc).__name__}: {exc}")

    def _emit(self, event: Event) -> None:
        self._sink(event)

    def _set_state(self, state: State, message: str) -> None:
        self._state = state
        self._emit(StatusChanged(state, message))

    def _fail(self, message: str) -> None:
        self._emit(EngineError(message))
        if self._state in (State.TRAINING, State.PAUSED):
            self._end_run(f"stopped: {message}")

    # ---- command handlers (worker thread) ----------------------------------------------------------
    def _on_load(self, arg: tuple[ModelSpec, str]) -> None:
        spec, dataset = arg
        model = build_model(spec)  # raises SpecError before anything changes
        data = self._data if self._data and self._data.name == dataset else load_dataset(dataset)
        if self._state in (State.TRAINING, State.PAUSED):
            self._end_run("stopped: a new model was loaded")
        self._spec, self._model, self._data = spec, model, data
        self._history = []
        self._prepare_probe()
        if self._data_fits():
            self._set_state(State.IDLE, f"{spec.name} loaded on {data.name}")
        else:
            self._set_state(State.IDLE, f"{spec.name} loaded; it takes {fmt(spec.input_shape)} inputs, which the "
                                        f"bundled {data.name} samples ({fmt(data.input_shape)}) do not fit: "
                                        f"it can be inspected but not trained on them")
        self._frame()

    def _data_fits(self) -> bool:
        return self._data is not None and self._spec is not None and \
            tuple(self._data.input_shape) == tuple(self._spec.input_shape)

    def _prepare_probe(self) -> None:
        """Turn the user's probe choice into an input for the current model, if it can be one."""
        kind, value, name = self._probe_choice
        self._probe = None
        if self._spec is None or self._data is None:
            return
        if kind == "sample" and self._data_fits():
            data, index = self._data, int(value) % len(self._data.val_x)
            self._probe = (data.val_x[index:index + 1], f"validation digit #{index}", data.classes[data.val_y[index]])
        elif kind == "image" and len(self._spec.input_shape) == 3:
            x = image_input(value, self._spec.input_shape, digits=self._data_fits() and self._data.name == "mnist")
            self._probe = (x, name, None)

    def _on_train(self, config: TrainConfig) -> None:
        if self._model is None or self._spec is None or self._data is None:
            raise LumenError("load a model before training")
        config.check()
        if not self._data_fits():
            raise LumenError(f"{self._spec.name} takes {fmt(self._spec.input_shape)} inputs; the bundled "
                             f"{self._data.name} samples are {fmt(self._data.input_shape)}, so it cannot train on them")
        if self._state in (State.TRAINING, State.PAUSED):
            self._end_run("stopped: a new run began")
        torch.manual_seed(config.seed)
        self._model = build_model(self._spec)  # a run starts from fresh weights
        self._config = config
        self._training = Training(self._model, self._data, config)
        self._steps = self._training.steps()
        self._history = []
        self._set_state(State.TRAINING, f"training {self._spec.name}: {config.epochs} epochs, "
                                        f"batch {config.batch_size}, lr {config.lr:g}")

    def _on_pause(self, _: object) -> None:
        if self._state is State.TRAINING:
            self._set_state(State.PAUSED, f"paused at step {self._training.step}")

    def _on_resume(self, _: object) -> None:
        if self._state is State.PAUSED:
            self._set_state(State.TRAINING, f"resumed at step {self._training.step}")

    def _on_step(self, _: object) -> None:
        if self._state is State.PAUSED:
            self._advance(force_frame=True)
            if self._state is State.PAUSED:
                self._emit(StatusChanged(State.PAUSED, f"paused at step {self._training.step}"))

    def _on_stop(self, _: object) -> None:
        if self._state in (State.TRAINING, State.PAUSED):
            self._end_run(f"stopped at step {self._training.step}")

    def _on_probe_sample(self, index: int) -> None:
        self._probe_choice = ("sample", int(index), "")
        self._prepare_probe()
        self._frame()

    def _on_probe_image(self, arg: tuple[np.ndarray, str]) -> None:
        pixels, name = arg
        if self._spec is None:
            raise LumenError("load a model before inspecting an image")
        if len(self._spec.input_shape) != 3:
            raise LumenError(f"{self._spec.name} takes {fmt(self._spec.input_shape)} inputs, not images")
        previous = self._probe_choice
        self._probe_choice = ("image", pixels, name)
        try:
            self._prepare_probe()
        except LumenError:
            self._probe_choice = previous  # a picture that cannot be used changes nothing
            self._prepare_probe()
            raise
        self._frame()

    def _on_save(self, run_dir: Path) -> None:
        if self._model is None or self._spec is None:
            raise LumenError("there is no model to save")
        save_run(run_dir, self._spec, self._model, self._history,
                 {"dataset": self._data.name if self._data else None, "config": vars(self._config)})
        self._emit(StatusChanged(self._state, f"saved the run to {run_dir}"))

    # ---- training -------------------------------------------------------------------------------
    def _advance(self, force_frame: bool = False) -> None:
        """One batch (or the epoch's evaluation), then a frame if one is due."""
        try:
            event = next(self._steps)
        except StopIteration:
            self._end_run(self._finished_message())
            return
        self._history.append(event)
        self._emit(event)
        if force_frame or time.monotonic() - self._last_frame >= self._config.frame_interval_s:
            self._frame()

    def _end_run(self, message: str) -> None:
        self._steps = None
        self._set_state(State.FINISHED, message)
        self._frame()

    def _finished_message(self) -> str:
        epochs = [e for e in self._history if isinstance(e, EpochMetrics)]
        if not epochs:
            return "finished"
        last = epochs[-1]
        return f"finished {last.epoch} epochs: validation accuracy {last.val_accuracy:.1%}, loss {last.val_loss:.3f}"

    def _frame(self) -> None:
        if self._model is None or self._data is None:
            return
        step = self._training.step if self._training else 0
        if self._probe is None:  # nothing fits this model: an empty frame, so the viewer shows no stale maps
            self._emit(FeatureMapFrame(step, "no input: drop a picture if the model takes images",
                                       np.zeros((1, 1), np.float32), (), ()))
            return
        x, source, label = self._probe
        self._emit(feature_map_frame(self._model, x, self._data.classes, step=step, source=source, label=label))
        self._last_frame = time.monotonic()
