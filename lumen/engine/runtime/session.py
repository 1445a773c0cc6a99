"""The engine's session: the model, its data, the run, the probes and the recording, with no thread of its own.

``handle(command)`` obeys one command (a dataclass of ``engine.runtime.commands``), looked up in a dict from command
type to handler; ``work()`` does one unit of what is left without a command (a batch of the run, a slice of each
job, the replay asked for last) while ``busy`` says there is some. Everything it computes goes to ``sink``: light
events (metrics, status, errors) and the probes' frames. The worker (``engine.runtime.worker``) is the thread and
command queue around it; whatever drives a training loop can call it directly.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sqlite3
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lumen.engine import probes as probe_registry
from lumen.engine.data.datasets import Dataset
from lumen.engine.data.images import affine, image_input
from lumen.engine.data.preview import dataset_preview, is_one_hot, token_names
from lumen.engine.data.user_sequences import character_vocabulary, csv_sequence, one_hot_text
from lumen.engine.errors import LumenError, SpecError
from lumen.engine.events import (
    CheckpointList,
    EngineError,
    EpochMetrics,
    Event,
    Metrics,
    ModelInfo,
    ModelLoaded,
    RunOpened,
    RunState,
    StatusChanged,
    StepFailed,
)
from lumen.engine.explain.attribution import black_picture_input
from lumen.engine.explain.dream import dream_steps
from lumen.engine.explain.jobs import picture_job, with_totals
from lumen.engine.explain.maximize import maximize_steps
from lumen.engine.graph import budget
from lumen.engine.graph.model import GraphModel, build_model, input_dtype
from lumen.engine.io.runs import save_run
from lumen.engine.io.store import RunRecorder, RunStore
from lumen.engine.jobs import Job
from lumen.engine.probes.base import Probe, ProbeContext, ProbeInput
from lumen.engine.probes.runner import ProbeRunner
from lumen.engine.runtime.commands import (
    CancelJob,
    Checkpoint,
    Command,
    ConfigureProbe,
    Dream,
    ListCheckpoints,
    LoadModel,
    Maximize,
    OpenRun,
    Pause,
    ProbeChoice,
    ProbeImage,
    ProbeSample,
    ProbeSequence,
    ReplayCheckpoint,
    Resume,
    Save,
    SetCheckpointInterval,
    SetLearningRate,
    Step,
    Stop,
    Train,
    TransformProbe,
    WatchFrames,
)
from lumen.engine.runtime.history import MetricsHistory, readable
from lumen.engine.runtime.opening import Opened, open_saved
from lumen.engine.runtime.recording import CLOSE, DURING, START, Recording
from lumen.engine.runtime.replay import CheckpointReplay, checkpoint_steps
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import fmt
from lumen.engine.training.fit import FitReport, default_data, load_run_data, plan_run
from lumen.engine.training.info import model_info
from lumen.engine.training.loop import TrainConfig, Training
from lumen.engine.untrusted import printable

log = logging.getLogger(__name__)

VALIDATION_SAMPLES = 256  # what a probe may look at besides the probe input: the same validation samples all along


class Session:
    def __init__(
        self,
        sink: Callable[[Event], None],
        *,
        probes: Sequence[Probe] | None = None,
        store: Callable[[], RunStore] | None = None,
        checkpoint_every: int = 0,
    ):
        self._sink = sink
        # The run store (a factory, called on the thread that works; None: runs are not recorded).
        self._recording = Recording(store, self._report, checkpoint_every=checkpoint_every, written=self._listed)
        self._handlers: dict[type, Callable[[Any], None]] = {
            LoadModel: self._load,
            Train: self._train,
            OpenRun: self._open_run,
            Pause: self._pause,
            Resume: self._resume,
            Step: self._step,
            Stop: self._stop,
            ProbeSample: self._choose_probe_input,
            ProbeImage: self._choose_probe_input,
            ProbeSequence: self._choose_probe_input,
            Save: self._save,
            SetLearningRate: self._set_learning_rate,
            ConfigureProbe: self._configure_probe,
            TransformProbe: self._transform_probe,
            Maximize: self._maximize,
            Dream: self._dream,
            CancelJob: self._cancel_job_command,
            Checkpoint: self._checkpoint,
            SetCheckpointInterval: self._set_checkpoint_interval,
            ListCheckpoints: self._list_checkpoints,
            ReplayCheckpoint: self._want_replay,
            WatchFrames: self._watch_frames,
        }
        self._state = RunState.IDLE
        self._spec: ModelSpec | None = None
        self._model: GraphModel | None = None
        self._data: Dataset | None = None
        self._data_key: tuple[str, str] | None = None  # (model's default data or the chosen one, its options)
        self._preferred: str | None = None  # the preset's objective
        self._plan: FitReport | None = None  # the model fitted to the data; None if it cannot train on it
        self._unfit = ""  # why not
        self._info: ModelInfo | None = None  # what kind of model is loaded
        self._validation: tuple[torch.Tensor, torch.Tensor] | None = None  # a few samples for the probes' context
        self._training: Training | None = None
        self._steps: Iterator[Metrics | StepFailed] | None = None
        self._config = TrainConfig()
        self._history = MetricsHistory()  # compact: numpy columns, not one object per step
        # What the user chose to feed the probes, and that choice prepared for the current model (None if it
        # does not fit, e.g. a digit for a sequence model).
        self._probe_choice: ProbeChoice = ProbeSample(0)
        self._sample = ProbeSample(0)  # the validation sample last chosen, to go back to
        self._probe_input: ProbeInput | None = None
        # The listed probes are shared objects: each session works on copies, so one window's settings (a layer
        # picked, attribution methods) are not another's.
        self._probes = ProbeRunner([copy.copy(p) for p in probe_registry.PROBES] if probes is None else probes)
        self._transform = TransformProbe()  # the shift, rotation and scale of the probe input (invariance)
        self._job: Job | None = None  # the viewer's long job (maximize, dream), run in slices between commands
        self._replay = CheckpointReplay()  # a model of its own for replaying a run's checkpoints
        self._replay_wanted: ReplayCheckpoint | None = None  # made once no command waits: the newest wins
        self._classes: tuple[str, ...] = ()  # an opened run's output names (ImageNet's, ...); (): the data's
        self._carried: dict[str, Any] = {}  # what an opened run's run.json says that a save keeps (its classes)
        self._opened_step = 0  # the last step of the opened run whose weights the model holds
        self._opened: dict[str, Path] = {}  # runs opened by folder: their name → the folder replays read

    # ---- what the worker's thread calls -------------------------------------------------------------------
    @property
    def commands(self) -> tuple[type, ...]:
        """The command types it obeys."""
        return tuple(self._handlers)

    def handle(self, command: Command) -> None:
        """Obey ``command``; bad input is one ``EngineError`` (a run in progress ends), a bug is logged and
        reported the same way, and the session goes on."""
        self._guarded(self._handlers[type(command)], command)

    @property
    def busy(self) -> bool:
        """There is work to do without a command: a run training, a job under way, a replay asked for."""
        return (
            self._state is RunState.TRAINING
            or self._job is not None
            or self._probes.busy
            or self._replay_wanted is not None
        )

    def work(self) -> None:
        """One unit of the work ``busy`` says there is: the replay asked for last, a slice of each job, a batch."""
        self._guarded(self._work, None)

    def _work(self, _: None) -> None:
        if self._replay_wanted is not None:
            self._replay_now()
        if self._job is not None:
            self._advance_job()
        for event in self._probes.advance_jobs():
            self._emit(event)
        if self._state is RunState.TRAINING:
            self._advance()

    def close(self) -> None:
        """The end: the recorded run is marked stopped (no checkpoint: closing must be quick; the last one stays,
        and the metrics are all written) and the store closed."""
        self._recording.close(
            "stopped", f"stopped at step {self._step_count}: closed", self._training, checkpoint=False
        )
        self._recording.shut()

    @property
    def run_id(self) -> str | None:
        """The run-store id of the run in progress or last run (None when runs are not recorded)."""
        return self._recording.run_id

    def _guarded(self, action: Callable[[Any], None], argument: Any) -> None:
        try:
            action(argument)
        except LumenError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug, not bad input: report it and keep the session alive
            log.error("engine error\n%s", traceback.format_exc())
            self._fail(f"internal error: {type(exc).__name__}: {exc}")

    def _emit(self, event: Event) -> None:
        self._sink(event)

    def _set_state(self, state: RunState, message: str) -> None:
        self._state = state
        self._emit(StatusChanged(state, message))

    def _fail(self, message: str) -> None:
        self._emit(EngineError(message))
        if self._state in (RunState.TRAINING, RunState.PAUSED):
            self._end_run(f"stopped: {message}", status="failed")

    @property
    def _step_count(self) -> int:
        """The step of the weights the model holds: the run's, an opened run's last, or 0 (fresh)."""
        return self._training.step if self._training else self._opened_step

    # ---- command handlers (worker thread) ----------------------------------------------------------
    def _load(self, command: LoadModel) -> None:
        spec = command.spec
        build_model(spec)  # raises SpecError before anything changes
        data = self._dataset_for(spec, command.dataset)  # loaded or generated here, on the worker's thread
        try:
            plan: FitReport | None = plan_run(spec, data, preferred=self._preferred)
            unfit = ""
        except SpecError as exc:
            plan, unfit = None, str(exc)
        model = build_model(plan.spec) if plan is not None else build_model(spec)
        carried = _carry_weights(model, command.weights, command.weights_from) if command.weights else ""
        if self._state in (RunState.TRAINING, RunState.PAUSED):
            self._end_run("stopped: a new model was loaded")
        self._cancel_job()
        self._training, self._steps = None, None  # the last run's step count is not this model's
        self._classes, self._carried, self._opened_step = (), {}, 0
        self._spec = plan.spec if plan is not None else spec
        self._model, self._data, self._plan, self._unfit = model, data, plan, unfit
        self._history.clear()
        self._info = model_info(self._spec, data, plan.objective if plan is not None else None, model.order)
        fits = plan is not None and len(data.val_x) > 0
        self._validation = (data.val_x[:VALIDATION_SAMPLES], data.val_y[:VALIDATION_SAMPLES]) if fits else None
        self._prepare_probe_input()
        frame_types = self._probes.reset(self._info)
        if plan is not None:
            fitted = f"; {plan.line()}" if plan.changes else ""
            self._set_state(RunState.IDLE, f"{spec.name} loaded on {data.name} ({plan.objective}){fitted}{carried}")
        else:
            self._set_state(
                RunState.IDLE, f"{spec.name} loaded; it can be inspected but not trained on {data.name}: {unfit}"
            )
        self._emit(ModelLoaded(self._info, frame_types))  # before any frame of it: views of the last one clear
        self._emit(dataset_preview(data))  # a few samples of the data, drawn beside the monitor's Data choice
        self._run_probes(force=True)

    def _dataset_for(self, spec: ModelSpec, dataset: str | None) -> Dataset:
        """The data for ``spec``: the one already loaded if it is the same, else loaded now."""
        choice = default_data(spec)
        name = dataset or choice.dataset
        key = (name, repr(sorted(choice.options.items())) if name == choice.dataset else "")
        self._preferred = choice.objective
        if self._data is not None and self._data_key == key:
            return self._data
        data, _ = load_run_data(spec, dataset)
        self._data_key = key
        return data

    def _open_run(self, command: OpenRun) -> None:
        opened = open_saved(command.run, self._recording.store)  # read whole, or refused: nothing changed yet
        saved = opened.saved
        spec, data, plan, unfit = saved.spec, *self._run_data(opened)
        if self._state in (RunState.TRAINING, RunState.PAUSED):
            self._end_run("stopped: a saved run was opened")
        self._cancel_job()
        self._training, self._steps = None, None
        self._spec, self._model, self._data, self._plan, self._unfit = spec, saved.model, data, plan, unfit
        self._classes = saved.classes
        self._carried = {"classes": saved.info["classes"]} if saved.classes else {}
        self._opened[opened.run] = opened.checkpoints
        self._history.clear()
        for event in saved.history:
            self._history.append(event)
        self._opened_step = max((e.step for e in saved.history), default=0)
        info = model_info(spec, data, plan.objective if plan is not None else None, saved.model.order)
        if saved.classes:
            info = dataclasses.replace(info, classes=saved.classes)
        self._info = info
        fits = plan is not None and len(data.val_x) > 0
        self._validation = (data.val_x[:VALIDATION_SAMPLES], data.val_y[:VALIDATION_SAMPLES]) if fits else None
        self._prepare_probe_input()
        frame_types = self._probes.reset(info)
        self._set_state(RunState.IDLE, self._opened_message(opened, unfit))
        self._emit(ModelLoaded(info, frame_types))
        self._emit(dataset_preview(data))
        for event in saved.history:
            self._emit(event)
        config = saved.info.get("config")
        settings = config if isinstance(config, dict) else {}
        self._emit(RunOpened(opened.run, str(saved.folder), spec, opened.read_only, len(saved.classes), settings))
        self._emit(CheckpointList(opened.run, checkpoint_steps(opened.checkpoints)))
        self._run_probes(force=True)

    def _run_data(self, opened: Opened) -> tuple[Dataset, FitReport | None, str]:
        """The data an opened run was trained on (run.json's dataset; the model's default when it names none or
        is gone), and whether the run's model can go on training on it unchanged."""
        spec, named = opened.saved.spec, opened.saved.info.get("dataset")
        try:
            data = self._dataset_for(spec, named if isinstance(named, str) else None)
        except LumenError:
            data = self._dataset_for(spec, None)
        try:
            plan = plan_run(spec, data, preferred=self._preferred)
        except SpecError as exc:
            return data, None, str(exc)
        if plan.changes:  # its weights are the run's: a model resized to the data would not hold them
            return data, None, f"its outputs do not fit {data.name} ({plan.line()})"
        return data, plan, ""

    def _opened_message(self, opened: Opened, unfit: str) -> str:
        saved, data = opened.saved, self._data
        assert data is not None
        epochs = sum(1 for e in saved.history if isinstance(e, EpochMetrics))
        trained = f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "no metrics"
        where = printable(saved.folder.name)
        if unfit:
            return (
                f"opened {saved.spec.name} from {where} ({trained}); it can be inspected but not trained on "
                f"{data.name}: {unfit}"
            )
        return f"opened {saved.spec.name} from {where} ({trained}) on {data.name}"

    def _output_names(self) -> tuple[str, ...]:
        """What the model's outputs are called: an opened run's own names, else its data's classes."""
        if self._classes:
            return self._classes
        return self._data.classes if self._data is not None else ()

    def _data_fits(self) -> bool:
        return self._data is not None and self._spec is not None and self._plan is not None

    def _prepare_probe_input(self) -> None:
        """Turn the probe input the user chose into an input for the current model, if it can be one."""
        choice = self._probe_choice
        self._probe_input = None
        if self._spec is None or self._data is None:
            return
        if isinstance(choice, ProbeSample) and self._data_fits():
            data, index = self._data, choice.index % len(self._data.val_x)
            target = data.val_y[index]
            label = data.classes[int(target)] if target.ndim == 0 and data.classes else None
            what = self._info.sample_noun if self._info is not None else "sample"
            x = data.val_x[index : index + 1]
            tokens = token_names(data, x.shape[-1]) if is_one_hot(x.numpy()) else ()
            self._probe_input = ProbeInput(x, f"validation {what} #{index}", label, target=target, tokens=tokens)
        elif isinstance(choice, ProbeImage) and len(self._spec.input_shape) == 3:
            shape, digits = self._spec.input_shape, self._data_fits() and self._data.name == "mnist"
            prep = self._spec.preprocess

            def prepare(pixels: np.ndarray) -> torch.Tensor:
                return image_input(pixels, shape, digits=digits, preprocess=prep)

            x = prepare(choice.pixels)
            black = black_picture_input(prepare, choice.pixels)
            preparation = prep.describe() if prep is not None else ("MNIST-style digit" if digits else "")
            self._probe_input = ProbeInput(x, choice.name, black=black, prepare=prepare, preparation=preparation)
        elif isinstance(choice, ProbeSequence):
            try:
                self._probe_input = self._sequence_input(choice)
            except LumenError:  # it fits no longer (another model was loaded): back to the validation sample
                self._probe_choice = self._sample
                self._prepare_probe_input()
                return
        if self._probe_input is not None and self._transform != TransformProbe():
            t = self._transform
            moved = affine(self._probe_input.x, shift_x=t.shift_x, shift_y=t.shift_y, angle=t.angle, scale=t.scale)
            moved_by = f"shifted {t.shift_x:+g},{t.shift_y:+g} px, rotated {t.angle:+g}°, scaled ×{t.scale:g}"
            probe = self._probe_input
            self._probe_input = ProbeInput(
                moved, f"{probe.source} ({moved_by})", probe.label, target=probe.target, tokens=probe.tokens
            )

    def _train(self, command: Train) -> None:
        config = command.config
        if self._model is None or self._spec is None or self._data is None:
            raise LumenError("load a model before training")
        config.check()
        if self._plan is None:
            raise LumenError(f"{self._spec.name} cannot train on {self._data.name}: {self._unfit}")
        if config.objective and config.objective != self._plan.objective:
            plan_run(self._spec, self._data, config.objective)  # refusals leave the current run as it is
        if config.device == "auto":
            # The live views read the model on the CPU; the GUI trains there unless a device is chosen.
            config = dataclasses.replace(config, device="cpu")
        with torch.device("meta"):
            budget.check_model(build_model(self._spec), min(config.batch_size, len(self._data.train_x)), training=True)
        if self._state in (RunState.TRAINING, RunState.PAUSED):
            self._end_run("stopped: a new run began")
        torch.manual_seed(config.seed)
        self._cancel_job()  # it was looking at the weights being replaced
        if not command.keep_weights or self._model is None:
            self._model = build_model(self._spec)  # a run starts from fresh weights unless asked otherwise
        self._config = config
        objective = config.objective or self._plan.objective
        self._training = Training(self._model, self._data, config, objective)
        if self._info is not None and self._info.objective != objective:  # another objective: other views apply
            self._info = model_info(self._spec, self._data, objective, self._model.order)
            self._emit(ModelLoaded(self._info, self._probes.reset(self._info)))
        self._training.pause_on_failure = True  # a diverging run, or one out of memory, pauses (see _advance)
        self._steps = self._training.steps()
        self._history.clear()
        info = {"dataset": self._data.name, "objective": self._training.objective.name, "config": vars(config)}
        self._recording.start(self._spec, self._data.name, self._training, info)
        self._set_state(
            RunState.TRAINING,
            f"training {self._spec.name} on {self._data.name} ({self._training.objective.name}): "
            f"{config.epochs} epochs, batch {config.batch_size}, {config.optimizer} lr {config.lr:g}",
        )

    def _set_learning_rate(self, command: SetLearningRate) -> None:
        if self._training is None or self._state not in (RunState.TRAINING, RunState.PAUSED):
            raise LumenError("there is no run whose learning rate could change")
        self._training.set_lr(command.lr)
        self._emit(StatusChanged(self._state, f"learning rate {command.lr:g} from step {self._step_count + 1}"))

    def _pause(self, _: Pause) -> None:
        if self._state is RunState.TRAINING:
            self._set_state(RunState.PAUSED, f"paused at step {self._step_count}")

    def _resume(self, _: Resume) -> None:
        if self._state is RunState.PAUSED:
            self._set_state(RunState.TRAINING, f"resumed at step {self._step_count}")

    def _step(self, _: Step) -> None:
        if self._state is RunState.PAUSED:
            self._advance(force_probes=True)
            if self._state is RunState.PAUSED:
                self._emit(StatusChanged(RunState.PAUSED, f"paused at step {self._step_count}"))

    def _stop(self, _: Stop) -> None:
        if self._state in (RunState.TRAINING, RunState.PAUSED):
            self._end_run(f"stopped at step {self._step_count}")

    def _sequence_input(self, choice: ProbeSequence) -> ProbeInput:
        """The user's own sequence as the current model's probe input; refused when it cannot be one."""
        spec, data = self._spec, self._data
        assert spec is not None and data is not None
        if len(spec.input_shape) != 2 or input_dtype(spec) != torch.float32:
            raise LumenError(f"{spec.name} takes {fmt(spec.input_shape)} inputs, not sequences of feature vectors")
        features = spec.input_shape[-1]
        if choice.text is not None:
            vocabulary = character_vocabulary(data, features)
            x = one_hot_text(choice.text, vocabulary, spec.name)
            return ProbeInput(x, f"the typed text ({x.shape[1]:,} characters)", tokens=vocabulary)
        path = Path(choice.path or "")
        x = csv_sequence(path, features, spec.name)
        return ProbeInput(x, f"{printable(path.name)} ({x.shape[1]:,} steps)")

    def _choose_probe_input(self, choice: ProbeChoice) -> None:
        spec = self._spec
        if isinstance(choice, ProbeImage | ProbeSequence) and (spec is None or self._data is None):
            raise LumenError(
                f"load a model before inspecting {'an image' if isinstance(choice, ProbeImage) else 'a sequence'}"
            )
        if isinstance(choice, ProbeImage) and spec is not None and len(spec.input_shape) != 3:
            raise LumenError(f"{spec.name} takes {fmt(spec.input_shape)} inputs, not images")
        if isinstance(choice, ProbeSequence):
            self._sequence_input(choice)  # refused here, with the reason, before anything changes
        previous = self._probe_choice
        self._probe_choice = choice
        if isinstance(choice, ProbeSample):
            self._sample = choice
        try:
            self._prepare_probe_input()
        except LumenError:
            self._probe_choice = previous  # a picture that cannot be used changes nothing
            self._prepare_probe_input()
            raise
        self._run_probes(force=True)

    def _save(self, command: Save) -> None:
        if self._model is None or self._spec is None:
            raise LumenError("there is no model to save")
        save_run(
            command.run_dir,
            self._spec,
            self._model,
            self._history.events(),
            {
                "dataset": self._data.name if self._data else None,
                "config": vars(self._config),
                **self._carried,
                # the run-store run that trained these weights: its checkpoints, for replay
                **({"run_id": self.run_id} if self.run_id is not None and self._training is not None else {}),
            },
            force=command.force,
        )
        self._emit(StatusChanged(self._state, f"saved the run to {command.run_dir}"))

    def _configure_probe(self, command: ConfigureProbe) -> None:
        self._probes.configure(command.probe, command.settings)
        self._run_probes(force=True, only=command.probe)  # another probe's long job goes on

    def _watch_frames(self, command: WatchFrames) -> None:
        if self._probes.watch(command.frame_types) and self._state is not RunState.TRAINING:
            self._run_probes(force=False)  # no batch is coming soon: make the newly watched frames now

    def _transform_probe(self, command: TransformProbe) -> None:
        affine(
            torch.zeros(1, 1, 2, 2),
            shift_x=command.shift_x,
            shift_y=command.shift_y,
            angle=command.angle,
            scale=command.scale,
        )  # refuses a bad one before anything changes
        self._transform = command
        self._prepare_probe_input()
        self._run_probes(force=True)

    # ---- long jobs: activation maximization, DeepDream ------------------------------------------------
    def _maximize(self, command: Maximize) -> None:
        if self._model is None:
            raise LumenError("load a model before maximizing an activation")
        steps = with_totals(maximize_steps(self._model, command.objective, command.settings), command.settings.steps)
        class_index = command.objective.index if command.objective.kind == "class" else None
        what = command.objective.describe()
        self._start_job(
            picture_job(
                "activation maximization", what, steps, self._model, step=self._step_count, class_index=class_index
            )
        )

    def _dream(self, command: Dream) -> None:
        if self._model is None or self._spec is None:
            raise LumenError("load a model before dreaming")
        if self._probe_input is not None:
            start = self._probe_input.x.float()
        else:  # nothing to dream on: a little grey noise
            start = 0.5 + 0.1 * torch.randn(1, *self._spec.input_shape, generator=torch.Generator().manual_seed(0))
        target = f"{'channel ' + str(command.channel) + ' of ' if command.channel is not None else ''}{command.layer}"
        steps = dream_steps(self._model, start.clamp(0, 1), command.layer, command.channel, command.settings)
        self._start_job(picture_job("deepdream", target, steps, self._model, step=self._step_count))

    def _start_job(self, job: Job) -> None:
        self._cancel_job()
        self._job = job
        self._emit(StatusChanged(self._state, f"{job.name}: {job.target}…"))
        self._advance_job()  # the first slice now, so a bad objective is refused at once

    def _advance_job(self) -> None:
        job = self._job
        if job is None:
            return
        try:
            frame = job.advance()
        except Exception:
            self._job = None
            raise
        if frame is not None:
            self._emit(frame)
        if job.finished:
            self._job = None
            self._emit(StatusChanged(self._state, f"{job.name} of {job.target} finished"))

    def _cancel_job(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            frame = job.cancel()
            if frame is not None:
                self._emit(frame)
            self._emit(StatusChanged(self._state, f"{job.name} of {job.target} cancelled"))

    def _cancel_job_command(self, _: CancelJob) -> None:
        self._cancel_job()
        stopped = self._probes.cancel_jobs()
        for frame in stopped:
            self._emit(frame)
        if stopped:
            self._emit(StatusChanged(self._state, "the live view's long computation stopped"))

    # ---- training -------------------------------------------------------------------------------
    def _advance(self, force_probes: bool = False) -> None:
        """One batch (or the epoch's evaluation), then the probes that are due."""
        if self._steps is None or self._training is None:
            return
        try:
            event = next(self._steps)
        except StopIteration:
            self._end_run(self._finished_message(), status="finished")
            return
        if isinstance(event, StepFailed):
            message = (
                f"{event.reason} at step {event.step} (epoch {event.epoch}): paused with the last good weights; "
                f"{event.advice}"
            )
            self._emit(EngineError(message))
            self._state = RunState.PAUSED
            self._emit(StatusChanged(RunState.PAUSED, f"paused: {message}", cause=message))
            return
        self._history.append(event)
        self._emit(event)
        self._recording.record(event, self._training)
        self._run_probes(force=force_probes)

    def _end_run(self, message: str, status: str = "stopped") -> None:
        """The run ends: ``status`` ("finished", "stopped" or "failed") is what the run store records."""
        self._steps = None
        self._recording.close(status, message, self._training)
        self._set_state(RunState.FINISHED, message)
        self._run_probes(force=True)

    # ---- the run store ------------------------------------------------------------------------------------
    def _report(self, when: str, error: Exception) -> None:
        said = {
            START: "runs are not recorded in the run store",
            DURING: "the run store stopped recording this run",
            CLOSE: "the run store could not close this run",
        }
        self._emit(EngineError(f"{said[when]}: {error}"))

    def _listed(self, recorder: RunRecorder) -> None:
        self._emit(CheckpointList(recorder.id, checkpoint_steps(recorder.folder), live=True))

    def _checkpoint(self, _: Checkpoint) -> None:
        if self._training is None or self._state not in (RunState.TRAINING, RunState.PAUSED):
            raise LumenError("there is no recorded run in progress to checkpoint")
        path = self._recording.checkpoint(self._training)
        self._emit(StatusChanged(self._state, f"checkpoint at step {self._step_count}: {path.name}"))

    def _set_checkpoint_interval(self, command: SetCheckpointInterval) -> None:
        self._recording.set_interval(command.steps)

    # ---- replaying a run's checkpoints (its own model; the live run goes on untouched) ---------------------
    def _run_folder(self, run: str | Path | None) -> tuple[str, Path, bool]:
        """(id, folder, whether it is the worker's own run) of ``run``: an id, a folder, or None (the own run)."""
        recorder = self._recording.recorder
        if run is None or (recorder is not None and run == recorder.id):
            if recorder is None:
                raise LumenError("there is no recorded run yet: train the model to keep checkpoints")
            return recorder.id, recorder.folder, True
        if isinstance(run, Path):
            return run.name, run, False
        if run in self._opened:  # a run opened by its folder, whose checkpoints (if any) are its own
            return run, self._opened[run], False
        try:
            store = self._recording.store()
        except LumenError:
            raise LumenError("runs are not recorded here, so there are no checkpoints to replay") from None
        row = store.find(run)
        return row.id, Path(row.folder), False

    def _list_checkpoints(self, command: ListCheckpoints) -> None:
        try:
            run, folder, live = self._run_folder(command.run)
        except (LumenError, sqlite3.Error) as exc:  # the live run, if any, goes on
            self._emit(EngineError(f"cannot list the checkpoints: {exc}"))
            return
        self._emit(CheckpointList(run, checkpoint_steps(folder), live))

    def _want_replay(self, command: ReplayCheckpoint) -> None:
        self._replay_wanted = command  # made by the loop once no command waits, so a dragged slider's last wins

    def _replay_now(self) -> None:
        command, self._replay_wanted = self._replay_wanted, None
        if command is None:
            return
        try:
            run, folder, live = self._run_folder(command.run)
            self._emit(CheckpointList(run, checkpoint_steps(folder), live))
            model = self._replay.load(folder, command.step, run)
        except (LumenError, sqlite3.Error) as exc:  # one message; the live run, if any, goes on
            self._emit(EngineError(f"cannot replay checkpoint step {command.step}: {exc}"))
            return
        except Exception as exc:
            log.error("replay failed\n%s", traceback.format_exc())
            self._emit(EngineError(f"cannot replay checkpoint step {command.step}: {type(exc).__name__}: {exc}"))
            return
        probe = self._probe_input
        fits = probe is not None and tuple(probe.x.shape[1:]) == tuple(model.spec.input_shape)
        context = ProbeContext(
            model,
            probe if fits else None,
            self._output_names(),
            command.step,
            self._info,
            self._validation if fits else None,
        )
        for event in self._replay.frames(self._probes.probes, context):
            self._emit(event)

    def _finished_message(self) -> str:
        epochs = self._history.epochs
        if not epochs:
            return "finished"
        last = epochs[-1]
        headline_first = sorted(last.val.items(), key=lambda item: item[0] != "accuracy")  # accuracy leads
        measured = ", ".join(f"{name} {readable(value, percent=name == 'accuracy')}" for name, value in headline_first)
        return f"finished {last.epoch} epoch{'s' if last.epoch != 1 else ''}: validation {measured}"

    def _run_probes(self, *, force: bool, only: str | None = None) -> None:
        if self._model is None or self._data is None:
            return
        context = ProbeContext(
            self._model,
            self._probe_input,
            self._output_names(),
            self._step_count,
            self._info,
            self._validation,
        )
        interval = self._config.frame_interval_s or 0.0
        for event in self._probes.run(context, force=force, min_interval_s=interval, only=only):
            self._emit(event)


def _carry_weights(model: nn.Module, weights: Mapping[str, Any], source: str) -> str:
    """Copy into ``model`` every tensor of ``weights`` whose name and shape it has (a layer resized to the data
    keeps its fresh weights); the part of the status line that says so."""
    own = model.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    fresh = sorted({k.rsplit(".", 1)[0] for k in own if k not in fitting and not k.endswith("num_batches_tracked")})
    with torch.no_grad():
        for key, tensor in fitting.items():
            own[key].copy_(tensor)
    where = f" from {printable(source)}" if source else ""
    text = f"; weights{where}: {len(fitting)} of {len(own)} tensors"
    return text + (f", fresh for {', '.join(fresh[:4])}{' …' if len(fresh) > 4 else ''}" if fresh else "")
