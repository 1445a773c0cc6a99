"""A model trained by someone else's loop, looked at live: the session of ``lumen.watch``, with no thread.

``Session`` (``engine.runtime.session``) owns its loop: it loads a spec, its data, and advances ``Training`` one
batch at a time. A watched model arrives the other way round: the user's script owns the model, the data and the
loop, and calls ``step(values)`` after each of its batches. ``WatchedSession`` is the same seam for that case:
``handle(command)`` through a dict from command type to handler (the commands a window can send: which frames are
on screen, a probe's settings, which of the probe inputs to look at), ``step`` in place of ``work``, every event to
``sink``. It reuses what ``Session`` is made of: the probes (``ProbeRunner``, capped at ``WATCH_BUDGET`` of the
loop's time each and run no more often than ``WATCH_INTERVAL_S``: they run in the user's own thread), the compact
metrics history, the run folder and the run store.

Nothing here imports Qt, and frames hold numpy arrays only (they cross a process boundary pickled).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lumen.engine import probes as probe_registry
from lumen.engine.errors import LumenError
from lumen.engine.events import (
    EngineError,
    EpochMetrics,
    Event,
    ModelInfo,
    ModelLoaded,
    RunState,
    StatusChanged,
    StepMetrics,
)
from lumen.engine.explain.activations import layer_names, layer_type
from lumen.engine.graph.model import GraphModel
from lumen.engine.graph.modes import evaluating
from lumen.engine.io.python_import import lumen_id, trace_to_spec
from lumen.engine.io.runs import save_run
from lumen.engine.layers import LAYERS
from lumen.engine.probes.base import Probe, ProbeContext, ProbeInput
from lumen.engine.probes.runner import ProbeRunner
from lumen.engine.runtime.commands import Command, ConfigureProbe, ProbeSample, WatchFrames
from lumen.engine.runtime.history import MetricsHistory
from lumen.engine.spec.model_spec import MAX_TEXT, ModelSpec, Node
from lumen.engine.spec.shapes import fmt
from lumen.engine.training.info import family_of

# The probes run in the user's thread, between its batches: each may take at most this share of the loop's time
# (the window's own engine allows 5–25 %), and none runs more often than every WATCH_INTERVAL_S. Measured in
# benchmarks/watch_overhead.py (docs/PERFORMANCE.md).
WATCH_BUDGET = 0.005
WATCH_INTERVAL_S = 1.0
PROBE_CHECK_S = 0.1  # how often ``step`` looks at the probes' due times at all (a step of a small model is ~1 ms)
MAX_PROBE_INPUTS = 256  # what the window can step through (and what probes that look at samples see)
WATCHED_DATA = "your loop"  # the data's name in the store and the window: Lumen does not know it


@dataclass(frozen=True)
class LayerRow:
    """One layer of a watched model, for the window's layer table."""

    name: str  # its dotted name in the model (a GraphModel's node id)
    type: str  # Lumen's layer type, or torch's class name lower-cased ("conv2d", "lstm", "mymodule")
    parameters: int  # its own parameters
    output: str  # its output's shape for one probe input ("6×28×28"); "" when it gave no tensor


@dataclass(frozen=True)
class WatchStarted:
    """The watched model (light): what the window names and lists before any frame."""

    name: str  # the model's class name (a GraphModel's spec name)
    layers: tuple[LayerRow, ...]
    parameters: int
    pid: int  # the script's process
    inputs: int  # how many probe inputs can be chosen (``ProbeSample`` indices)
    source: str  # what the probe inputs are, for people


@dataclass(frozen=True)
class WeightsSnapshot:
    """The weights at ``step`` as numpy arrays, with the spec and run.json's info a run folder needs: the window
    keeps the newest, so *Save run…* works after the script has ended (or was killed)."""

    step: int
    spec_json: str
    tensors: Mapping[str, np.ndarray]
    info: Mapping[str, Any]
    dtypes: Mapping[str, str] = field(default_factory=dict)  # tensors numpy cannot hold (bfloat16): torch's name


@dataclass(frozen=True)
class ScriptEnded:
    """The script closed its watch (``w.close()``, the end of a ``with`` block or of the process): light."""

    step: int
    message: str


def run_spec(model: nn.Module, name: str, input_shape: Sequence[int]) -> ModelSpec:
    """The spec a watched model's run folder holds: a Lumen-built model's own; a module that ``torch.fx`` traces
    into Lumen layers whose state dict is the module's own, key for key (``engine.io.python_import``), as that
    spec, so the run opens in the window and replays like any other; else ``describe_spec``'s description."""
    if isinstance(model, GraphModel):
        return model.spec
    if not input_shape:  # no probe input: nothing to trace with
        return describe_spec(model, name, input_shape)
    try:
        with evaluating(model), torch.no_grad():  # the trace runs one forward: no batch-norm statistics move
            opened = trace_to_spec(model, tuple(int(s) for s in input_shape), name[:200] or "model")
    except Exception:  # the user's module: anything may fail in its forward or its trace; it is then described
        return describe_spec(model, name, input_shape)
    state = model.state_dict()
    same = set(opened.weights) == {lumen_id(k) for k in state} and all(
        torch.equal(opened.weights[lumen_id(k)], v) for k, v in state.items()
    )
    return opened.spec if same else describe_spec(model, name, input_shape)


def describe_spec(model: nn.Module, name: str, input_shape: Sequence[int]) -> ModelSpec:
    """A spec that *describes* a module Lumen cannot express: its innermost modules in the order they were
    registered, each typed by its torch class (``torch.nn.Conv2d``), so a run folder can say what was trained.
    Such a spec does not build (no Lumen layer type is named so): the weights load into the user's own class."""
    nodes = [Node("input", "input", {"shape": [int(s) for s in input_shape]})]
    used = {"input"}
    for layer in layer_names(model):
        module = model.get_submodule(layer)
        node_id = layer if layer[0].isalpha() or layer[0] == "_" else f"m{layer}"
        node_id = "".join(c if c.isalnum() or c in "._" else "_" for c in node_id)
        while node_id in used:
            node_id += "_"
        used.add(node_id)
        kind = f"{type(module).__module__}.{type(module).__qualname__}"
        nodes.append(Node(node_id, kind[:200], {"module": " ".join(repr(module).split())[: MAX_TEXT // 2]}))
    edges = tuple((a.id, b.id) for a, b in zip(nodes, nodes[1:]))
    description = (
        f"{name} as lumen.watch saw it: its innermost modules in the order they were registered (the data flow is "
        "the module's forward). Load weights.safetensors into your own class: model.load_state_dict(...)."
    )
    return ModelSpec(name[:200] or "model", tuple(nodes), edges, description)


def _family(model: nn.Module, types: set[str]) -> str:
    if isinstance(model, GraphModel):
        return family_of(model.spec, None)
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        return "recurrent"
    return "cnn" if "conv2d" in types else "dense"


def module_info(
    model: nn.Module, x: torch.Tensor, out: torch.Tensor | None, classes: Sequence[str], name: str
) -> ModelInfo:
    """What kind of model a watched one is, from its modules and one forward pass: a classifier when it gives one
    score per class (``classes``, or an N×K output with K > 1), so attribution and gradient views apply."""
    names = layer_names(model)
    types = {layer_type(model, n) for n in names}
    scores = out is not None and out.dim() == 2 and out.shape[1] > 1 and out.is_floating_point()
    classifier = scores and (not classes or out is not None and out.shape[1] == len(classes))
    return ModelInfo(
        name=name,
        family=_family(model, types),
        input_shape=tuple(int(s) for s in x.shape[1:]),
        layer_types=frozenset(types),
        data=WATCHED_DATA,
        task="classification" if classifier else "regression",
        objective="classification" if classifier else "watched",
        loss_name="",
        classes=tuple(classes),
        layers=tuple((n, layer_type(model, n)) for n in names),
    )


def _device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise LumenError(f"{what} must be a torch tensor or a numpy array, not {type(value).__name__}")


class WatchedSession:
    def __init__(
        self,
        model: nn.Module,
        sink: Callable[[Event | WatchStarted | ScriptEnded | WeightsSnapshot], None],
        probe_input: Any = None,
        *,
        classes: Sequence[str] | None = None,
        name: str | None = None,
        probes: Sequence[Probe] | None = None,
        budget: float = WATCH_BUDGET,
        interval_s: float = WATCH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        frames: bool = True,
    ):
        if not isinstance(model, nn.Module):
            raise LumenError(f"lumen.watch looks at a torch.nn.Module, not {type(model).__name__}")
        self.model = model
        self._sink = sink
        self._clock = clock
        self._interval_s = interval_s
        self.name = name or (model.spec.name if isinstance(model, GraphModel) else type(model).__name__)
        self._inputs, self._targets = self._probe_batch(probe_input)
        self.classes = tuple(str(c) for c in classes) if classes is not None else ()
        self._handlers: dict[type, Callable[[Any], None]] = {
            WatchFrames: self._watch_frames,
            ConfigureProbe: self._configure_probe,
            ProbeSample: self._choose_sample,
        }
        self._history = MetricsHistory()
        self.step_count = 0
        self._started_at = clock()
        self._due = -math.inf  # when ``step`` next asks the runner (it checks each probe's own due time)
        self._index = 0  # which probe input the probes look at
        listed = probe_registry.PROBES if probes is None else probes
        self._runner = ProbeRunner([copy.copy(p) for p in listed], clock, budget=budget)
        out = self._look() if self._inputs is not None else None
        x = self._inputs if self._inputs is not None else torch.zeros(1, 0)
        self.info = module_info(model, x, out, self.classes, self.name)
        if not self.classes and out is not None and self.info.classifier:
            self.classes = tuple(str(i) for i in range(out.shape[1]))
            self.info = module_info(model, x, out, self.classes, self.name)
        self.layers = self._layer_rows()
        self.frame_types = self._runner.reset(self.info)
        self._spec: ModelSpec | None = None  # traced when first asked for, not while lumen.watch must return
        self.epoch = 1  # the epoch the steps belong to: ``end_epoch`` closes one
        self._epoch_sums: dict[str, float] = {}
        self._epoch_counts: dict[str, int] = {}
        # Without a window (a recorded run) nobody sees a frame: none is made. With one, every probe that applies runs
        # (within the budget) until the window says which frames it shows (``WatchFrames``).
        if not frames:
            self._runner.watch(frozenset())

    # ---- what the user's thread calls --------------------------------------------------------------------
    @property
    def commands(self) -> tuple[type, ...]:
        return tuple(self._handlers)

    def start(self) -> None:
        """The first events: the model, its layers, and every probe's first frame."""
        parameters = sum(p.numel() for p in self.model.parameters())
        inputs = 0 if self._inputs is None else len(self._inputs)
        self._sink(WatchStarted(self.name, self.layers, parameters, os.getpid(), inputs, self._source(0)))
        self._sink(ModelLoaded(self.info, self.frame_types))
        self._sink(StatusChanged(RunState.TRAINING, f"watching {self.name} in process {os.getpid()}"))
        self._run_probes(force=True)

    def step(self, values: Mapping[str, float]) -> StepMetrics:
        """One step of the user's loop: its named values, then the probes that are due (at most every
        ``PROBE_CHECK_S`` does it even look)."""
        self.step_count += 1
        event = StepMetrics(self.step_count, 0, self.epoch, values, 0.0)
        for name, value in values.items():
            if math.isfinite(value):
                self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + value
                self._epoch_counts[name] = self._epoch_counts.get(name, 0) + 1
        self._history.append(event)
        self._sink(event)
        if self._clock() >= self._due:
            self._run_probes(force=False)
        return event

    def end_epoch(self, validation: Mapping[str, float]) -> EpochMetrics:
        """The end of an epoch of the user's loop: the means of its steps' values, beside the ``validation`` values
        the user measured (named like the steps': ``loss``, ``accuracy``), drawn as the monitor draws Lumen's own
        epochs."""
        train = {name: total / self._epoch_counts[name] for name, total in self._epoch_sums.items()}
        event = EpochMetrics(self.epoch, self.step_count, train, dict(validation))
        self._history.append(event)
        self._sink(event)
        self.epoch += 1
        self._epoch_sums, self._epoch_counts = {}, {}
        return event

    def handle(self, command: Command) -> None:
        """A command from the window; one the watch cannot obey is one ``EngineError``, and the session goes on."""
        handler = self._handlers.get(type(command))
        if handler is None:
            self._sink(
                EngineError(f"a watched script's window cannot {type(command).__name__} (Lumen does not run the loop)")
            )
            return
        try:
            handler(command)
        except LumenError as exc:
            self._sink(EngineError(str(exc)))

    def finish(self, message: str) -> ScriptEnded:
        """The final probes (forced: the window shows the last weights) and the end, as an event."""
        self._run_probes(force=True)
        return ScriptEnded(self.step_count, message)

    # ---- the run: weights, folder ------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        return {
            "watched": True,
            "model": self.name,
            "module": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "dataset": WATCHED_DATA,
            "classes": list(self.classes),
            "steps_watched": self.step_count,
            "seconds": round(self._clock() - self._started_at, 3),
        }

    def spec(self) -> ModelSpec:
        if self._spec is None:
            self._spec = run_spec(self.model, self.name, self.info.input_shape)
        return self._spec

    def snapshot(self) -> WeightsSnapshot:
        """The weights now, as numpy (copied: the loop goes on changing them)."""
        tensors: dict[str, np.ndarray] = {}
        dtypes: dict[str, str] = {}
        with torch.no_grad():
            # A traced module's spec names its nodes with lumen_id (nn.Sequential's "0" is "m0"): so do its weights.
            traced = not isinstance(self.model, GraphModel) and self.spec().nodes[1].type in LAYERS
            for key, value in self.model.state_dict().items():
                key = lumen_id(key) if traced else key
                value = value.detach().cpu()
                if value.dtype == torch.bfloat16:
                    dtypes[key] = "bfloat16"
                    value = value.float()
                tensors[key] = value.numpy().copy()
        return WeightsSnapshot(self.step_count, self.spec().to_json(), tensors, self.run_info(), dtypes)

    def save(self, run_dir: str | os.PathLike[str], force: bool = False) -> Path:
        """A run folder of what was watched: the spec (``run_spec``), the weights now, every step's values."""
        return save_watched_run(run_dir, self.snapshot(), self._history.events(), force=force)

    # ---- commands ---------------------------------------------------------------------------------------
    def _watch_frames(self, command: WatchFrames) -> None:
        if self._runner.watch(command.frame_types):
            self._due = -math.inf

    def _configure_probe(self, command: ConfigureProbe) -> None:
        self._runner.configure(command.probe, command.settings)
        self._run_probes(force=True, only=command.probe)

    def _choose_sample(self, command: ProbeSample) -> None:
        if self._inputs is None:
            raise LumenError("the script gave lumen.watch no probe_input to choose from")
        self._index = command.index % len(self._inputs)
        self._run_probes(force=True)

    # ---- probes -----------------------------------------------------------------------------------------
    def _probe_batch(self, probe_input: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``probe_input``: a batch of inputs, or (inputs, targets); kept on the model's device, at most
        ``MAX_PROBE_INPUTS``."""
        if probe_input is None:
            return None, None
        targets = None
        if isinstance(probe_input, tuple | list) and len(probe_input) == 2:
            probe_input, targets = probe_input
            targets = _as_tensor(targets, "the probe input's targets")[:MAX_PROBE_INPUTS]
        x = _as_tensor(probe_input, "probe_input")
        if x.dim() == 0:
            raise LumenError("probe_input must be a batch of inputs (its first dimension counts them)")
        x = x[:MAX_PROBE_INPUTS].to(_device(self.model)).clone()
        if targets is not None and len(targets) != len(x):
            raise LumenError(f"the probe input has {len(x)} samples but {len(targets)} targets")
        return x, targets

    def _source(self, index: int) -> str:
        if self._inputs is None:
            return "no probe input (lumen.watch(model, probe_input=x) shows what the model makes of x)"
        return f"probe input #{index}" + (f" of {len(self._inputs)}" if len(self._inputs) > 1 else "")

    def _probe_input(self) -> ProbeInput | None:
        if self._inputs is None:
            return None
        i = self._index
        target = self._targets[i] if self._targets is not None else None
        label = None
        if target is not None and target.dim() == 0 and self.classes and 0 <= int(target) < len(self.classes):
            label = self.classes[int(target)]
        return ProbeInput(self._inputs[i : i + 1], self._source(i), label, target=target)

    def _look(self) -> torch.Tensor | None:
        """The model's output for the first probe input, in eval mode (its mode restored), or None if it fails."""
        assert self._inputs is not None
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(self._inputs[:1])
        except Exception:
            return None
        finally:
            self.model.train(was_training)
        return out if isinstance(out, torch.Tensor) else None

    def _layer_rows(self) -> tuple[LayerRow, ...]:
        names = layer_names(self.model)
        shapes: dict[str, str] = {}
        if self._inputs is not None:
            handles = []

            def keep(name: str) -> Callable[[nn.Module, object, object], None]:
                def hook(_module: nn.Module, _inputs: object, output: object) -> None:
                    if isinstance(output, torch.Tensor) and name not in shapes:
                        shapes[name] = fmt(tuple(output.shape[1:]))

                return hook

            was_training = self.model.training
            self.model.eval()
            try:
                for name in names:
                    handles.append(self.model.get_submodule(name).register_forward_hook(keep(name)))
                with torch.no_grad():
                    self.model(self._inputs[:1])
            except Exception:
                pass  # the table shows no shapes; the probes say what fails
            finally:
                for handle in handles:
                    handle.remove()
                self.model.train(was_training)
        rows = []
        for name in names:
            module = self.model.get_submodule(name)
            count = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerRow(name, layer_type(self.model, name), count, shapes.get(name, "")))
        return tuple(rows)

    def _run_probes(self, *, force: bool, only: str | None = None) -> None:
        context = ProbeContext(
            self.model,
            self._probe_input(),
            self.classes,
            self.step_count,
            self.info,
            (self._inputs, self._targets) if self._inputs is not None and self._targets is not None else None,
        )
        for event in self._runner.run(context, force=force, min_interval_s=self._interval_s, only=only):
            self._sink(event)
        self._due = self._clock() + PROBE_CHECK_S


def save_watched_run(
    run_dir: str | os.PathLike[str], weights: WeightsSnapshot, history: list, force: bool = False
) -> Path:
    """A normal run folder (``engine.io.runs.save_run``) from a watched script's weights and metrics."""
    spec = ModelSpec.from_json(weights.spec_json)
    tensors = {}
    for key, array in weights.tensors.items():
        tensor = torch.from_numpy(np.array(array, order="C"))  # ascontiguousarray would make a 0-d array 1-d
        tensors[key] = tensor.to(torch.bfloat16) if weights.dtypes.get(key) == "bfloat16" else tensor
    info = {**weights.info, "weights_step": weights.step}
    return save_run(Path(run_dir), spec, tensors, history, info, force=force)
