"""Live attribution: which pixels of the probe input make the model give its class, one or two methods side by
side, refreshed while the model trains.

What it computes (methods, target class, their options) is the worker's ``AttributionSettings``, set by the
``SetAttribution`` command and handed over in the ``ProbeContext``. Each method goes through
``engine.explain.attribution.attribute`` (Captum underneath; hooks off, mode restored, no graph kept). A method
that cannot explain this model (Grad-CAM without a conv layer, say) gives a map with its message instead, and
the other one still shows. At most 10 frames a second, and at most ``budget`` of the worker's time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import LumenError
from engine.explain.attribution import METHODS, attribute, options_for
from engine.probes.base import Probe, ProbeContext
from engine.runtime.events import Frame

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

    @property
    def target_name(self) -> str:
        if self.target is None:
            return ""
        return self.classes[self.target] if self.target < len(self.classes) else str(self.target)


def display_image(x: torch.Tensor) -> np.ndarray:
    """One 1×C×H×W input as a picture in [0, 1]: RGB for 3 channels, grey otherwise (channels averaged)."""
    planes = x[0].detach().float()
    image = planes.permute(1, 2, 0) if planes.shape[0] == 3 else planes.mean(0)
    array = image.numpy()
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:  # a normalised input: stretched to be seen
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return np.ascontiguousarray(array, dtype=np.float32)


def method_map(name: str, result_heat: np.ndarray, delta: float | None, layer: str | None) -> MethodMap:
    m = METHODS[name]
    reach = float(np.abs(result_heat).max()) if result_heat.size else 0.0
    reach = reach if reach > 0 and np.isfinite(reach) else 1.0
    levels = (-reach, reach) if m.signed else (0.0, reach)
    return MethodMap(name, m.title, result_heat, levels, m.signed, delta, layer)


class AttributionProbe(Probe):
    name = "attribution"
    frame_type = AttributionFrame
    interval_s = 0.1  # at most 10 frames a second
    budget = 0.15  # of the worker's time while training

    def frame(self, context: ProbeContext) -> AttributionFrame:
        settings = context.attribution
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
        maps = []
        for name in settings.methods:
            options = options_for(METHODS[name], settings.options)
            if probe.black is not None:
                options["black"] = probe.black
            try:
                result = attribute(model, probe.x, name, target, **options)
            except LumenError as exc:
                m = METHODS[name]
                maps.append(
                    MethodMap(name, m.title, np.zeros((0, 0), np.float32), (0.0, 1.0), m.signed, error=str(exc))
                )
                continue
            maps.append(method_map(name, result.heat(), result.delta, result.layer))
        return AttributionFrame(
            context.step, probe.source, image, target, predictions, tuple(maps), classes, probe.label
        )
