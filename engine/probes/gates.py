"""Inside a recurrent layer, live: every gate and state of one LSTM, GRU or RNN module over the probe input's time
steps (forget/input/output gates, candidate, cell and hidden state; GRU reset/update/candidate; an RNN's
pre-activation), both directions of a bidirectional one, and how much of the loss reaches each step
(‖∂L/∂h_t‖, the vanishing-gradient picture).

The module runs as it is (torch's fused kernel) and the gates are recovered from its weights with batched products
(``engine.explain.gates``); the input it receives is recorded with a hook while the whole model runs, so layers
before it apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import LumenError
from engine.events import Frame, ModelInfo
from engine.explain.gates import capture_gates, hidden_gradients, received_inputs, recurrent_modules
from engine.probes.base import Probe, ProbeContext

NO_INPUT = "no validation sequence fits this model"
SORTS = ("unit", "saturation")  # units in their own order, or the most saturated (gates near 0 or 1) first


@dataclass(frozen=True)
class GateSettings:
    layer: str | None = None  # the recurrent module's dotted name; None (or one the model lacks): the first
    sort: str = "unit"  # one of SORTS

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise LumenError(f"units are sorted by {' or '.join(SORTS)}, not {self.sort!r}")


@dataclass(frozen=True, eq=False)
class GateFrame(Frame):
    source: str  # the probe input, for people
    layer: str  # the module shown ("" when none)
    layers: tuple[str, ...]  # every recurrent module of the model, in order
    kind: str  # "lstm", "gru" or "rnn"
    gates: tuple[str, ...]  # the names of its gates and states, in the order they are offered
    directions: tuple[str, ...]  # ("fwd",) or ("fwd", "bwd")
    num_layers: int  # the module's stacked layers
    maps: Mapping[str, np.ndarray] = field(default_factory=dict)  # "l0.fwd.f" → time × units (float32)
    steps: tuple[str, ...] = ()  # each time step's input as text (a token), or "" for real values
    order: Mapping[str, np.ndarray] = field(default_factory=dict)  # "l0.fwd" → unit order (the settings' sort)
    gradients: np.ndarray | None = None  # time × layers × directions: ‖∂L/∂h_t‖; None without a target
    settings: GateSettings = GateSettings()
    note: str = ""


def _saturation_order(forget: np.ndarray) -> np.ndarray:
    """Units by how often their gate is saturated (below 0.1 or above 0.9), most first."""
    saturated = ((forget < 0.1) | (forget > 0.9)).mean(axis=0)
    return np.argsort(-saturated, kind="stable")


class Gates(Probe):
    name = "gates"
    frame_type = GateFrame
    interval_s = 0.25
    budget = 0.1
    replayable = True
    Settings = GateSettings

    def applies(self, info: ModelInfo) -> bool:
        return info.family == "recurrent"

    def frame(self, context: ProbeContext) -> GateFrame:
        modules = recurrent_modules(context.model)
        names = tuple(name for name, _ in modules)
        chosen = next(((n, m) for n, m in modules if n == self.settings.layer), modules[0] if modules else None)
        probe = context.input
        if chosen is None or probe is None:
            note = NO_INPUT if probe is None else "this model has no LSTM, GRU or RNN layer"
            source = probe.source if probe is not None else NO_INPUT
            return GateFrame(context.step, source, "", names, "", (), (), 0, settings=self.settings, note=note)
        name, module = chosen
        model = context.model
        was_training = model.training
        model.eval()
        try:
            received = received_inputs(model, [chosen], probe.x)
        finally:
            model.train(was_training)
        if name not in received:
            note = f"{name} does not run on the way from the input to the output"
            return GateFrame(context.step, probe.source, "", names, "", (), (), 0, settings=self.settings, note=note)
        x, hx = received[name]
        trace = capture_gates(module, x, hx)
        maps = {key: np.ascontiguousarray(array[:, 0], dtype=np.float32) for key, array in trace.arrays.items()}
        order = {}
        for k in range(trace.num_layers):
            for d in trace.directions:
                key = f"l{k}.{d}"
                saturating = maps.get(f"{key}.f", maps.get(f"{key}.z"))
                units = maps[f"{key}.h"].shape[1]
                if self.settings.sort == "saturation" and saturating is not None:
                    order[key] = _saturation_order(saturating)
                else:
                    order[key] = np.arange(units)
        steps = probe.x[0]
        tokens = tuple(probe.tokens[int(i)] for i in steps.argmax(-1)) if probe.tokens else ()
        return GateFrame(
            context.step,
            probe.source,
            name,
            names,
            trace.kind,
            trace.gates,
            trace.directions,
            trace.num_layers,
            maps,
            tokens,
            order,
            self._gradients(model, module, x, hx, probe.target, context),
            self.settings,
        )

    @staticmethod
    def _gradients(
        model: nn.Module,
        module: nn.Module,
        x: torch.Tensor,
        hx: object,
        target: torch.Tensor | None,
        context: ProbeContext,
    ) -> np.ndarray | None:
        """‖∂L/∂h_t‖ of the model's loss for the probe input (cross-entropy against a class target, mean squared
        error against values), its other layers as they are; None without a target."""
        probe = context.input
        if target is None or probe is None:
            return None
        target = target.unsqueeze(0)
        loss_of: Callable[[torch.Tensor], torch.Tensor]
        if torch.is_floating_point(target):

            def loss_of(out: torch.Tensor) -> torch.Tensor:
                return F.mse_loss(out, target.reshape(out.shape).to(out.dtype))

        else:

            def loss_of(out: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1))

        def loss(output: torch.Tensor) -> torch.Tensor:
            # The rest of the model runs on this output of the module (its state as the module gave it).
            def swap(_module: nn.Module, _args: tuple, given: object) -> object:
                return (output, given[1]) if isinstance(given, tuple) else output

            handle = module.register_forward_hook(swap)
            try:
                return loss_of(model(probe.x))
            finally:
                handle.remove()

        was_training = model.training
        model.eval()
        try:
            return hidden_gradients(module, x, loss, hx)  # type: ignore[arg-type]
        except (RuntimeError, ValueError):  # an output the loss cannot compare with the target: no curve
            return None
        finally:
            model.train(was_training)
