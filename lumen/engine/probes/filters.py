"""The filters of one conv layer as a picture, following the weights while the model trains."""

from __future__ import annotations

from dataclasses import dataclass

from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.filters import FilterImage, conv_layers, filter_image
from lumen.engine.probes.base import Probe, ProbeContext


@dataclass(frozen=True)
class FilterSettings:
    """The conv layer whose filters are drawn (None: the first), and a first layer reading RGB in colour."""

    layer: str | None = None
    colour: bool = True


@dataclass(frozen=True)
class FilterFrame(Frame):
    filters: FilterImage | None  # None: the model has no 2-D convolution
    conv_layers: tuple[str, ...]  # the layers whose filters can be shown
    choice: FilterSettings = FilterSettings()  # the settings this frame follows


class Filters(Probe):
    name = "filters"
    frame_type = FilterFrame
    interval_s = 0.5  # weights move slowly; this is cheap but needs no more
    budget = 0.05
    replayable = True
    Settings = FilterSettings

    def applies(self, info: ModelInfo) -> bool:
        return "conv2d" in info.layer_types

    def frame(self, context: ProbeContext) -> FilterFrame:
        layers = tuple(conv_layers(context.model))
        if not layers:
            return FilterFrame(context.step, None, (), self.settings)
        choice = self.settings
        node = choice.layer if choice.layer in layers else layers[0]
        return FilterFrame(context.step, filter_image(context.model, node, colour=choice.colour), layers, choice)
