"""The filters of one conv layer as a picture, following the weights while the model trains."""

from __future__ import annotations

from dataclasses import dataclass

from engine.explain.filters import FilterImage, conv_layers, filter_image
from engine.probes.base import LayerChoice, Probe, ProbeContext
from engine.runtime.events import Frame, ModelInfo


@dataclass(frozen=True)
class FilterFrame(Frame):
    filters: FilterImage | None  # None: the model has no 2-D convolution
    conv_layers: tuple[str, ...]  # the layers whose filters can be shown
    choice: LayerChoice = LayerChoice()  # the user's layer choice this frame follows


class Filters(Probe):
    name = "filters"
    frame_type = FilterFrame
    interval_s = 0.5  # weights move slowly; this is cheap but needs no more
    budget = 0.05
    replayable = True

    def applies(self, info: ModelInfo) -> bool:
        return "conv2d" in info.layer_types

    def frame(self, context: ProbeContext) -> FilterFrame:
        layers = tuple(conv_layers(context.model))
        if not layers:
            return FilterFrame(context.step, None, (), context.layer_choice)
        choice = context.layer_choice
        node = choice.filter_layer if choice.filter_layer in layers else layers[0]
        return FilterFrame(
            context.step, filter_image(context.model, node, colour=choice.colour_filters), layers, choice
        )
