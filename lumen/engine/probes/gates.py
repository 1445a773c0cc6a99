"""Inside a recurrent layer, live: every gate and state of one LSTM, GRU or RNN module over the probe input's time
steps (forget/input/output gates, candidate, cell and hidden state; GRU reset/update/candidate; an RNN's
pre-activation), both directions of a bidirectional one, and how much of the loss reaches each step
(‖∂L/∂h_t‖, the vanishing-gradient picture).

Asked to (its settings), it also orders units by how closely they follow a signal of the input (bracket depth,
position, a token; ``engine.explain.unit_signals``) and selects the units on over a span of the probe input with
the places they are on together elsewhere (LSTMVis): both over the context's validation sequences, captured the
same way.

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

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.gates import capture_gates, hidden_gradients, received_inputs, recurrent_modules
from lumen.engine.explain.unit_signals import SpanMatch, correlations, find_matches, select_units, signals
from lumen.engine.graph.modes import evaluating
from lumen.engine.probes.base import Probe, ProbeContext, ProbeInput

NO_INPUT = "no validation sequence fits this model"
# Units in their own order, the most saturated (gates near 0 or 1) first, or the most correlated with a signal first
SORTS = ("unit", "saturation", "signal")


@dataclass(frozen=True)
class SpanSelection:
    """LSTMVis-style: the units of map ``map`` (e.g. "l0.fwd.h") high over steps ``start..end`` of the probe input."""

    map: str
    start: int
    end: int  # inclusive
    threshold: float = 0.3


@dataclass(frozen=True)
class GateSettings:
    layer: str | None = None  # the recurrent module's dotted name; None (or one the model lacks): the first
    sort: str = "unit"  # one of SORTS
    signal: str = "position"  # what units are correlated with (engine.explain.unit_signals.signals)
    selection: SpanSelection | None = None

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise LumenError(f"units are sorted by {' or '.join(SORTS)}, not {self.sort!r}")
        if self.selection is not None and not 0 <= self.selection.start <= self.selection.end:
            raise LumenError(
                f"a span runs from a step to one no earlier, not {self.selection.start}…{self.selection.end}"
            )


@dataclass(frozen=True)
class Selected:
    """What a span selection found: the units, and stretches of the validation data where they are high too."""

    map: str
    start: int
    end: int
    units: tuple[int, ...]  # high over the span and low elsewhere, the most distinct first
    matches: tuple[SpanMatch, ...] = ()  # in the validation sequences (the frame's ``searched``)
    texts: tuple[str, ...] = ()  # each match's input as text, with the matched steps in ⟦ ⟧


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
    order: Mapping[str, np.ndarray] = field(default_factory=dict)  # "l0.fwd.f" → unit order (the settings' sort)
    gradients: np.ndarray | None = None  # time × layers × directions: ‖∂L/∂h_t‖; None without a target
    settings: GateSettings = GateSettings()
    note: str = ""
    signals: tuple[str, ...] = ()  # what units can be correlated with, for this input
    signal: np.ndarray | None = None  # the chosen signal over the probe input's steps (sort "signal")
    correlation: Mapping[str, np.ndarray] = field(default_factory=dict)  # "l0.fwd.h" → each unit's r (sort "signal")
    searched: str = ""  # the sequences the correlations and matches were computed on, for people
    selected: Selected | None = None


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
        with evaluating(model):
            received = received_inputs(model, [chosen], probe.x)
        if name not in received:
            note = f"{name} does not run on the way from the input to the output"
            return GateFrame(context.step, probe.source, "", names, "", (), (), 0, settings=self.settings, note=note)
        x, hx = received[name]
        trace = capture_gates(module, x, hx)
        maps = {key: np.ascontiguousarray(array[:, 0], dtype=np.float32) for key, array in trace.arrays.items()}
        steps = probe.x[0]
        tokens = tuple(step_tokens(steps.numpy(), probe.tokens)) if probe.tokens else ()
        named = signals(probe.x.numpy(), probe.tokens) if probe.x.dim() == 3 else {}
        signal = self.settings.signal if self.settings.signal in named else "position"
        wanted = self.settings.sort == "signal" or self.settings.selection is not None
        batch, searched = self._searched(model, chosen, probe, context) if wanted and named else (None, "")
        correlation, selected = {}, None
        if batch is not None and self.settings.sort == "signal":
            reference = signals(batch[0], probe.tokens)[signal]
            correlation = {key: correlations(array, reference) for key, array in batch[1].items()}
        if self.settings.selection is not None:
            selected = self._select(self.settings.selection, maps, batch, probe.tokens)
        order = {key: self._order(key, maps, correlation) for key in maps}
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
            signals=tuple(named),
            signal=named[signal][0].astype(np.float32) if self.settings.sort == "signal" else None,
            correlation=correlation,
            searched=searched,
            selected=selected,
        )

    def _order(self, key: str, maps: Mapping[str, np.ndarray], correlation: Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows of map ``key`` as the settings sort them."""
        units = maps[key].shape[1]
        if self.settings.sort == "signal" and key in correlation:
            return np.argsort(-np.abs(correlation[key]), kind="stable")
        layer = key.rsplit(".", 1)[0]
        saturating = maps.get(f"{layer}.f", maps.get(f"{layer}.z"))
        if self.settings.sort == "saturation" and saturating is not None:
            return _saturation_order(saturating)
        return np.arange(units)

    @staticmethod
    def _searched(
        model: nn.Module, chosen: tuple[str, nn.Module], probe: ProbeInput, context: ProbeContext
    ) -> tuple[tuple[np.ndarray, dict[str, np.ndarray]] | None, str]:
        """The sequences correlations and matches are computed on — the validation samples of the context, or
        the probe input alone — as (inputs N × T × F, maps "l0.fwd.h" → N × T × U), and their name."""
        x, searched = probe.x, "the probe input"
        if context.validation is not None and context.validation[0].dim() == 3:
            x, searched = context.validation[0], f"{len(context.validation[0])} validation sequences"
        with evaluating(model):
            received = received_inputs(model, [chosen], x)  # type: ignore[list-item]
        if chosen[0] not in received:
            return None, ""
        trace = capture_gates(chosen[1], *received[chosen[0]])
        maps = {key: np.swapaxes(array, 0, 1) for key, array in trace.arrays.items()}  # batch first
        return (x.numpy(), maps), searched

    @staticmethod
    def _select(
        selection: SpanSelection,
        maps: Mapping[str, np.ndarray],
        batch: tuple[np.ndarray, dict[str, np.ndarray]] | None,
        tokens: tuple[str, ...],
    ) -> Selected | None:
        states = maps.get(selection.map)
        if states is None or selection.end >= len(states):
            return None
        units = select_units(states, selection.start, selection.end, selection.threshold)
        if batch is None or selection.map not in batch[1]:
            return Selected(selection.map, selection.start, selection.end, tuple(int(u) for u in units))
        length = selection.end - selection.start + 1
        matches = find_matches(batch[1][selection.map], units, selection.threshold, length)
        texts = tuple(_span_text(batch[0][m.sample], tokens, m.start, m.end) for m in matches)
        return Selected(
            selection.map, selection.start, selection.end, tuple(int(u) for u in units), tuple(matches), texts
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

        try:
            with evaluating(model):
                return hidden_gradients(module, x, loss, hx)  # type: ignore[arg-type]
        except (RuntimeError, ValueError):  # an output the loss cannot compare with the target: no curve
            return None


def _span_text(x: np.ndarray, tokens: tuple[str, ...], start: int, end: int, context: int = 8) -> str:
    """Steps ``start..end`` of one input sequence as text, in ⟦ ⟧ (not in brackets: they may be the tokens), with a
    few steps either side."""
    if not tokens or len(tokens) != x.shape[-1]:
        return f"steps {start}–{end}"
    shown = [t if len(t) <= 1 else f" {t} " for t in step_tokens(x, tokens)]
    shown = [t.replace("\n", "⏎") for t in shown]
    before = "".join(shown[max(0, start - context) : start])
    after = "".join(shown[end + 1 : end + 1 + context])
    return f"{'…' if start > context else ''}{before}⟦{''.join(shown[start : end + 1])}⟧{after}"


def step_tokens(x: np.ndarray, tokens: tuple[str, ...]) -> list[str]:
    """Each step of one sequence (T × F, one-hot or several features on) as the names of its features that are on,
    joined: recall's key step is its letter and the flag ("A!"), not the letter alone as argmax would say."""
    if len(tokens) != x.shape[-1]:
        return [""] * len(x)
    return ["".join(tokens[j] for j in np.flatnonzero(row > 0.5)) or tokens[int(row.argmax())] for row in x]
