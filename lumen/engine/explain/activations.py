"""Activations of any layer, read through forward hooks that always come off, and top-k predictions.

``record`` hooks the named submodules of any ``nn.Module`` (a ``GraphModel``'s nodes sit at their ids' dotted
paths), runs one forward pass and removes the hooks in ``finally``. Without ``grad`` the pass runs under
``torch.no_grad`` and every recorded tensor is a detached copy, so nothing keeps an autograd graph (or a
later in-place op's result) alive; with ``grad`` the tensors stay in the graph, for gradient ascent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.graph.model import GraphModel
from lumen.engine.layers import LAYERS


class UnknownLayer(LumenError):
    pass


# What the probes and explain functions need of a model is small: named submodules to hook, a forward pass, and
# (optionally) class names and a preparation of pictures, which travel beside the model. A ``GraphModel`` says
# more (its nodes' order, types and edges); any other ``nn.Module`` — a user's, a torchvision one — is read through
# its named submodules, so it is inspected the same way.
# torch's class name, lower-cased, is Lumen's layer type except for these.
TORCH_TYPES: dict[type[nn.Module], str] = {
    nn.ConvTranspose2d: "conv_transpose2d",
    nn.AdaptiveAvgPool2d: "adaptive_avgpool2d",
}


def layer_names(model: nn.Module) -> list[str]:
    """Every layer whose output can be looked at: a ``GraphModel``'s nodes in the order it runs them (the input
    left out); any other module's innermost submodules, in the order they were registered."""
    if isinstance(model, GraphModel):
        return [n for n in model.order if n != model.spec.input_node.id]
    return [name for name, module in model.named_modules() if name and next(module.children(), None) is None]


def layer_type(model: nn.Module, name: str) -> str:
    """The layer's type: a ``GraphModel`` node's Lumen type, else torch's class as Lumen calls it (``conv2d``)."""
    if isinstance(model, GraphModel):
        return model.spec.node(name).type
    module = model.get_submodule(name)
    return TORCH_TYPES.get(type(module), type(module).__name__.lower())


def activation_after(model: nn.Module, name: str) -> str | None:
    """The activation node (ReLU, ...) that is the only consumer of ``name``, if there is one: the layer's
    output *after* its non-linearity. Only a ``GraphModel`` knows its edges; for any other module, None."""
    if not isinstance(model, GraphModel):
        return None
    consumers = [n for n in model.order if name in model.sources[n]]
    if len(consumers) == 1 and LAYERS[layer_type(model, consumers[0])].family == "activation":
        return consumers[0]
    return None


def check_layers(model: nn.Module, layers: Sequence[str]) -> None:
    known = dict(model.named_modules())
    missing = [name for name in layers if not name or name not in known]
    if missing:
        sample = ", ".join(layer_names(model)[:12])
        raise UnknownLayer(
            f"the model has no layer {missing[0]!r}"
            + (f" (layers: {sample}{', …' if sample else ''})" if sample else "")
        )


def record(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str], *, grad: bool = False
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The model's output for ``x`` and the outputs of the submodules named ``layers``.

    Hooks are removed whatever happens. Without ``grad``: no autograd graph, recorded tensors are detached
    copies. The model's mode is left as it is (callers choose eval or train).
    """
    check_layers(model, layers)
    recorded: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str) -> Callable[[nn.Module, object, object], None]:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                recorded[name] = output if grad else output.detach().clone()

        return hook

    try:
        for name in dict.fromkeys(layers):
            handles.append(model.get_submodule(name).register_forward_hook(hook_for(name)))
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    if not grad:
        out = out.detach()
    return out, recorded


def activations(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """One input's activations per layer as float32 numpy arrays (batch dimension dropped), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        _, recorded = record(model, x, layers)
    finally:
        model.train(was_training)
    return {name: recorded[name][0].float().numpy() for name in layers if name in recorded}


def as_maps(activation: np.ndarray) -> np.ndarray:
    """Any activation as C×H×W maps: C×H×W stays, C×L becomes C maps of 1×L, a vector of N units one map of
    1×N (N tiles of one pixel would be unreadable)."""
    if activation.ndim == 3:
        return activation
    if activation.ndim == 2:
        return activation[:, None, :]
    if activation.ndim == 1:
        return activation[None, None, :]
    if activation.ndim == 0:
        return activation.reshape(1, 1, 1)
    return activation.reshape(-1, *activation.shape[-2:])  # C×D×H×W: depth slices as channels


def top_k(out: torch.Tensor, classes: Sequence[str], k: int = 5) -> tuple[tuple[str, float], ...]:
    """The ``k`` most probable classes of a 1×N output, best first; nothing when the output is not N classes."""
    if out.dim() != 2 or out.shape[1] != len(classes) or not classes:
        return ()
    probs = torch.softmax(out[0].detach().float(), 0)
    top = torch.topk(probs, min(k, len(classes)))
    return tuple((classes[i], float(p)) for p, i in zip(top.values, top.indices))


def mosaic_picture(mosaic: np.ndarray, reach: float | None = None, min_side: int = 400) -> np.ndarray:
    """A tiled activation (H×W, NaN gaps) as an RGB uint8 picture on a blue–white–red scale symmetric about 0
    (``reach``: the magnitude drawn fully saturated; default the largest), gaps light grey, enlarged by a
    whole factor (nearest neighbour) so the shorter side is at least ``min_side`` pixels."""
    finite = np.nan_to_num(mosaic, nan=0.0)
    reach = reach or float(np.abs(finite).max()) or 1.0
    t = np.clip(finite / reach, -1.0, 1.0)[..., None]
    white, red, blue = np.ones(3), np.array([0.80, 0.10, 0.15]), np.array([0.13, 0.30, 0.75])
    rgb = np.where(t >= 0, white + t * (red - white), white - t * (blue - white))
    rgb[np.isnan(mosaic)] = 0.85
    factor = max(1, -(-min_side // max(1, min(mosaic.shape[:2]))))
    rgb = rgb.repeat(factor, 0).repeat(factor, 1)
    return np.ascontiguousarray((rgb * 255).round().astype(np.uint8))
