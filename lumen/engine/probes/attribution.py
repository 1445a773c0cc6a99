"""Live attribution: which pixels of the probe input make the model give its class, one or two methods side by
side, refreshed while the model trains.

What it computes (methods, target class, their options) is its ``Settings``, ``AttributionSettings``, set with
``ConfigureProbe``. Each method goes through ``engine.explain.attribution.attribute`` (Captum underneath; hooks
off, mode restored, no graph kept). A method that cannot explain this model (Grad-CAM without a conv layer, say)
gives a map with its message instead, and the other one still shows. At most 10 frames a second, and at most
``budget`` of the worker's time.

Every frame is made by a ``Job`` (``engine.jobs``): a short one ends within its first slice; a long one
(integrated gradients on a full-size model) goes on in slices between the worker's commands, with progress
frames, until it ends or ``CancelJob`` stops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from lumen.engine.data.images import display_image
from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.attribution import METHODS, AttributionSettings, attribute_steps, conv_layers, options_for
from lumen.engine.jobs import Job
from lumen.engine.probes.base import Probe, ProbeContext

NO_INPUT = "no input: drop a picture if the model takes images"
TOP_K = 5


@dataclass(frozen=True, eq=False)
class MethodMap:
    method: str  # its name in engine.explain.attribution.METHODS
    title: str  # for people
    heat: np.ndarray  # H×W float32, C-contiguous: the map with channels summed (empty when ``error``)
    levels: tuple[float, float]  # for the colour scale: (−r, r) for signed maps, (0, r) for the others
    signed: bool
    delta: float | None = None  # integrated gradients' convergence delta
    layer: str | None = None  # Grad-CAM's layer
    error: str | None = None  # why there is no map


@dataclass(frozen=True, eq=False)
class AttributionFrame(Frame):
    source: str  # what was fed in
    image: np.ndarray  # the model input for display, float32 in [0, 1]: H×W, or H×W×3 for RGB models
    target: int | None  # the class explained (None: nothing to explain)
    predictions: tuple[tuple[str, float], ...]  # top classes with probabilities, best first
    maps: tuple[MethodMap, ...]
    classes: tuple[str, ...] = ()  # every class name, for the target picker
    label: str | None = None  # the true class, when known
    note: str = ""  # why there are no maps, when there are none
    progress: float | None = None  # a long computation under way: the share done (maps so far); None: finished
    layers: tuple[str, ...] = ()  # the model's conv layers (Grad-CAM's choices), deepest last
    preparation: str = ""  # how the picture was prepared for the model, for people

    @property
    def target_name(self) -> str:
        if self.target is None:
            return ""
        return self.classes[self.target] if self.target < len(self.classes) else str(self.target)


@dataclass(frozen=True, eq=False)
class BaselinePicture:
    """Integrated gradients' baseline as a picture the user chose (decoded pixels); the probe prepares it
    exactly as the probe input was prepared."""

    pixels: np.ndarray
    name: str


def method_map(name: str, result_heat: np.ndarray, delta: float | None, layer: str | None) -> MethodMap:
    m = METHODS[name]
    reach = float(np.abs(result_heat).max()) if result_heat.size else 0.0
    reach = reach if reach > 0 and np.isfinite(reach) else 1.0
    levels = (-reach, reach) if m.signed else (0.0, reach)
    return MethodMap(name, m.title, result_heat, levels, m.signed, delta, layer)


FrameSteps = Generator[AttributionFrame, None, AttributionFrame]


class AttributionProbe(Probe):
    name = "attribution"
    frame_type = AttributionFrame
    interval_s = 0.1  # at most 10 frames a second
    budget = 0.15  # of the worker's time while training
    replayable = True
    Settings = AttributionSettings

    def applies(self, info: ModelInfo) -> bool:
        """It explains a picture's class scores."""
        return info.classifier

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock  # its jobs' clock (tests tick it by hand)

    def frame(self, context: ProbeContext) -> Job[AttributionFrame]:
        target = "the probe input" if context.input is None else context.input.source
        return Job("attribution", target, _when_due(self.frame_steps(context)), stopped=_stopped, clock=self._clock)

    def frame_steps(self, context: ProbeContext) -> FrameSteps:
        """Yields progress frames (``progress`` set, the maps done so far) between slices; returns the frame."""
        settings = self.settings
        if context.input is None:
            return AttributionFrame(context.step, NO_INPUT, np.zeros((1, 1), np.float32), None, (), (), note=NO_INPUT)
        probe, model = context.input, context.model
        image = display_image(probe.x)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(probe.x)
        finally:
            model.train(was_training)
        if out.dim() != 2:
            note = f"attribution explains class scores; this model's output is {tuple(out.shape[1:])}"
            return AttributionFrame(context.step, probe.source, image, None, (), (), label=probe.label, note=note)
        probs = torch.softmax(out[0].float(), 0)
        classes = context.classes if len(context.classes) == out.shape[1] else tuple(map(str, range(out.shape[1])))
        top = torch.topk(probs, min(TOP_K, len(classes)))
        predictions = tuple((classes[i], float(p)) for p, i in zip(top.values, top.indices))
        target = settings.target if settings.target is not None and settings.target < out.shape[1] else None
        target = int(probs.argmax()) if target is None else target
        layers = tuple(conv_layers(model))
        preparation = probe.preparation
        maps: list[MethodMap] = []
        base = AttributionFrame(
            context.step, probe.source, image, target, predictions, (), classes, probe.label,
            progress=0.0, layers=layers, preparation=preparation,
        )  # fmt: skip
        for index, name in enumerate(settings.methods):
            options: dict[str, Any] = options_for(METHODS[name], settings.options)
            if probe.black is not None:
                options["black"] = probe.black
            try:
                if isinstance(options.get("baseline"), BaselinePicture):
                    options["baseline"] = prepared_baseline(options["baseline"], probe.prepare)
                steps = attribute_steps(model, probe.x, name, target, **options)
                try:
                    while True:
                        done, total = next(steps)
                        share = (index + done / max(1, total)) / len(settings.methods)
                        yield replace(base, maps=tuple(maps), progress=share)
                except StopIteration as stop:
                    result = stop.value
                finally:
                    steps.close()
            except LumenError as exc:
                m = METHODS[name]
                maps.append(
                    MethodMap(name, m.title, np.zeros((0, 0), np.float32), (0.0, 1.0), m.signed, error=str(exc))
                )
                continue
            maps.append(method_map(name, result.heat(), result.delta, result.layer))
        return replace(base, maps=tuple(maps), progress=None)


def _when_due(steps: FrameSteps) -> Generator[AttributionFrame | None, bool, AttributionFrame]:
    """``frame_steps`` as a job's work: its progress frames handed on only when one is due."""
    due = True
    while True:
        try:
            frame = next(steps)
        except StopIteration as stop:
            done: AttributionFrame = stop.value
            return done
        due = yield (frame if due else None)


def _stopped(frame: AttributionFrame) -> AttributionFrame:
    """The frame so far (the maps that were done), marked stopped."""
    share = f"{frame.progress:.0%}" if frame.progress is not None else "part"
    return replace(frame, progress=None, note=f"stopped at {share}; change a setting to start again")


def prepared_baseline(picture: BaselinePicture, prepare: Callable[[np.ndarray], torch.Tensor] | None) -> torch.Tensor:
    """A user's baseline picture as a model input, prepared as the probe input was."""
    if prepare is None:
        raise LumenError(f"cannot use {picture.name} as a baseline: this input was not prepared from a picture")
    try:
        return prepare(picture.pixels)
    except LumenError as exc:
        raise LumenError(f"cannot use {picture.name} as a baseline: {exc}") from None
