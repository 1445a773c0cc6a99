"""Attribution: which parts of the input made the model give a class its score. One verb for every method.

``attribute(model, x, "integrated-gradients", steps=64)`` returns an ``Attribution``: the map as float32 numpy
at the input's resolution (C×H×W, or H×W for Grad-CAM, as the method gives it), the target class, the input
that was used, and for integrated gradients the convergence delta. Methods are looked up by name in
``METHODS``; the GUI's attribution view, the live probe and ``python main.py explain`` all go through here.

Captum computes every map (Lumen wraps it, it does not re-derive it): Saliency, NoiseTunnel(Saliency) for
SmoothGrad, IntegratedGradients, LayerGradCam (upsampled with ``LayerAttribution.interpolate``), Occlusion
and GuidedBackprop. Captum removes its hooks in ``finally``; around it Lumen puts the model in eval mode and
restores its mode whatever happens, draws random numbers (SmoothGrad's noise, a noise baseline) from a
forked generator seeded by the ``seed`` option, so a map is reproducible and training's random stream is
untouched, and returns detached numpy arrays only, so no autograd graph outlives the call. Captum itself
is imported on first use (it costs ~0.4 s of start-up).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumen.engine.errors import LumenError

BASELINES = ("black", "blur", "noise")  # named baselines; a tensor or array shaped like the input also works


Result = tuple[torch.Tensor, float | None, str | None]  # the map, the convergence delta, the layer used
Progress = tuple[int, int]  # (done, total) of a long method's steps
STEP_ELEMENTS = 2**19  # input numbers per slice of a stepped method: ~3 IG steps at 3×224², all 50 at 1×28²


class ExplainError(LumenError):
    """An attribution that cannot be made: an unknown method or option, a model without class scores, ..."""


@dataclass(frozen=True, eq=False)
class Attribution:
    method: str  # its name in METHODS
    target: int  # the class whose score is explained
    map: np.ndarray  # float32 at input resolution: C×H×W, or H×W (Grad-CAM)
    input: np.ndarray  # float32, the model input that was explained, 1×C×H×W as the model was given it
    delta: float | None = None  # integrated gradients: completeness error, sum(map) − (F(x) − F(baseline))
    layer: str | None = None  # Grad-CAM: the layer whose activations were weighed

    def heat(self) -> np.ndarray:
        """The map as one H×W float32 picture (channels summed, sign kept), C-contiguous."""
        heat = self.map.sum(0) if self.map.ndim == 3 else self.map
        return np.ascontiguousarray(heat, dtype=np.float32)


@dataclass(frozen=True)
class Option:
    """One setting of a method, for people and for widgets: its default and its legal values."""

    name: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()


SEED = Option("seed", 0, "seed of the random numbers the method draws", 0, 2**31 - 1)


class Method:
    """One attribution method. ``compute`` calls Captum; ``attribute`` (below) does the rest."""

    name: ClassVar[str]
    title: ClassVar[str]  # for people
    signed: ClassVar[bool]  # whether the map has meaningful negative values
    options: ClassVar[tuple[Option, ...]] = ()
    random: ClassVar[bool] = False  # draws random numbers (then ``seed`` applies)

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        """The map (the batch's first item), the convergence delta or None, the layer used or None."""
        raise NotImplementedError

    def compute_steps(
        self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]
    ) -> Generator[Progress, None, Result] | None:
        """For a method that can run in slices: a generator of (done, total) that returns ``compute``'s result;
        None for methods that run in one go."""
        return None


def conv_layers(model: nn.Module) -> list[str]:
    """The dotted names of the model's 2-D conv layers, in registration order (a GraphModel's node ids)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def suggested_layer(model: nn.Module) -> str | None:
    """Grad-CAM's usual layer: the last conv layer (the deepest one that still has a spatial layout)."""
    run_order, modules = getattr(model, "order", None), getattr(model, "layers", None)
    if isinstance(run_order, list) and isinstance(modules, dict):  # a GraphModel: the last conv layer to run
        return next((n for n in reversed(run_order) if isinstance(modules.get(n), nn.Conv2d)), None)
    layers = conv_layers(model)
    return layers[-1] if layers else None


def default_window(x: torch.Tensor) -> int:
    """Occlusion's window side: about a seventh of the picture, at least 2 pixels."""
    return max(2, min(x.shape[-2:]) // 7)


def blurred(x: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """A Gaussian blur of a 1×C×H×W input (σ: an eighth of its larger side), edges reflected."""
    h, w = x.shape[-2:]
    sigma = sigma or max(h, w) / 8
    radius = max(1, min(int(math.ceil(2.5 * sigma)), min(h, w) - 1))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def baseline_for(x: torch.Tensor, baseline: Any, black: torch.Tensor | None = None) -> torch.Tensor:
    """The baseline tensor a named baseline (or a user's array) stands for. ``black`` is the model input of
    an all-black picture prepared like ``x`` (zeros when not given); ``noise`` is uniform over x's range and
    drawn from the global generator (``attribute`` seeds a forked one)."""
    if isinstance(baseline, str):
        if baseline == "black":
            return torch.zeros_like(x) if black is None else black.to(x.dtype).reshape(x.shape)
        if baseline == "blur":
            return blurred(x)
        if baseline == "noise":
            low, high = float(x.min()), float(x.max())
            return torch.rand_like(x) * (high - low if high > low else 1.0) + low
        raise ExplainError(f"unknown baseline {baseline!r} (known: {', '.join(BASELINES)}, or an image)")
    tensor = torch.as_tensor(np.asarray(baseline) if not isinstance(baseline, torch.Tensor) else baseline)
    if tensor.numel() != x.numel():
        raise ExplainError(
            f"the baseline image has shape {tuple(tensor.shape)}; it must be prepared as the input, {tuple(x.shape)}"
        )
    return tensor.to(x.dtype).reshape(x.shape)


class Saliency(Method):
    name = "saliency"
    title = "Saliency (vanilla gradients)"
    signed = False

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import Saliency as CaptumSaliency

        x.requires_grad_()  # our own copy (attribute clones it); Captum would warn and do the same
        return CaptumSaliency(model).attribute(x, target=target, abs=True)[0], None, None


class SmoothGrad(Method):
    name = "smoothgrad"
    title = "SmoothGrad (noisy saliency, averaged)"
    signed = False
    random = True
    options = (
        Option("samples", 16, "noisy copies averaged", 1, 512),
        Option("noise", 0.15, "noise standard deviation, in input units", 0.0, 10.0),
        SEED,
    )

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import NoiseTunnel
        from captum.attr import Saliency as CaptumSaliency

        tunnel = NoiseTunnel(CaptumSaliency(model))
        samples = int(options["samples"])
        result = tunnel.attribute(
            x, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=min(samples, 32),
            stdevs=float(options["noise"]), target=target, abs=True,
        )  # fmt: skip
        return result[0], None, None


class IntegratedGradients(Method):
    name = "integrated-gradients"
    title = "Integrated gradients"
    signed = True
    options = (
        Option("steps", 50, "points on the path from the baseline to the input", 1, 4096),
        Option("baseline", "black", "where the path starts", choices=BASELINES),
        SEED,
    )

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import IntegratedGradients as CaptumIG

        steps = int(options["steps"])
        baseline = baseline_for(x, options["baseline"], options.get("black"))
        result, delta = CaptumIG(model).attribute(
            x, baselines=baseline, target=target, n_steps=steps, internal_batch_size=min(steps, 64),
            return_convergence_delta=True,
        )  # fmt: skip
        return result[0], float(delta.reshape(-1)[0]), None

    def compute_steps(
        self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]
    ) -> Generator[Progress, None, Result]:
        """The same sum in slices of ``chunk`` steps, as Captum's own internal batching does it (its
        ``_batch_attribution``: the Gauss–Legendre points and weights for all steps, cut into runs, each run's
        ``_attribute`` added up); equal to ``IntegratedGradients.attribute(internal_batch_size=chunk)``."""
        from captum.attr import IntegratedGradients as CaptumIG
        from captum.attr._utils.approximation_methods import approximation_parameters

        steps = int(options["steps"])
        chunk = int(options.get("chunk") or step_chunk(x, steps))
        baseline = baseline_for(x, options["baseline"], options.get("black"))
        ig = CaptumIG(model)
        sizes_of, alphas_of = approximation_parameters("gausslegendre")
        sizes, alphas = sizes_of(steps), alphas_of(steps)
        total: torch.Tensor | None = None
        for start in range(0, steps, chunk):
            end = min(start + chunk, steps)
            (part,) = ig._attribute(
                inputs=(x,), baselines=(baseline,), target=target, n_steps=end - start,
                step_sizes_and_alphas=(sizes[start:end], alphas[start:end]),
            )  # fmt: skip
            total = part.detach() if total is None else total + part.detach()
            yield end, steps
        assert total is not None
        delta = ig.compute_convergence_delta((total,), (baseline,), (x,), target=target)
        return total[0], float(delta.reshape(-1)[0]), None


def step_chunk(x: torch.Tensor, steps: int) -> int:
    """How many IG steps one slice takes: ~``STEP_ELEMENTS`` input numbers (a slice of a full-size model takes
    a fraction of a second on a CPU), at most 64 (Captum's internal batch here), at least 1."""
    return max(1, min(steps, 64, STEP_ELEMENTS // max(1, x[0].numel())))


class GradCam(Method):
    name = "gradcam"
    title = "Grad-CAM"
    signed = False  # ReLU'd, as Selvaraju et al. define it
    options = (Option("layer", None, "conv layer whose activations are weighed (default: the last one)"),)

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import LayerAttribution, LayerGradCam

        layer = options["layer"] or suggested_layer(model)
        if layer is None:
            raise ExplainError("Grad-CAM needs a conv layer, and this model has none")
        try:
            module = model.get_submodule(layer)
        except AttributeError:
            raise ExplainError(
                f"the model has no layer {layer!r} (conv layers: {', '.join(conv_layers(model))})"
            ) from None
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=True)
        if cam.dim() != 4:
            raise ExplainError(f"Grad-CAM needs a layer with a spatial output; {layer} gives {tuple(cam.shape)}")
        up = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
        return up[0, 0], None, layer


class Occlusion(Method):
    name = "occlusion"
    title = "Occlusion"
    signed = True
    options = (
        Option("window", None, "side of the square patch that is blacked out (default: a seventh)", 1, 4096),
        Option("stride", None, "pixels the patch moves each time (default: half the window)", 1, 4096),
    )

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import Occlusion as CaptumOcclusion

        window, stride = occlusion_geometry(x, options)
        baseline = baseline_for(x, "black", options.get("black"))
        c = x.shape[1]
        result = CaptumOcclusion(model).attribute(
            x, sliding_window_shapes=(c, window, window), strides=(c, stride, stride), baselines=baseline,
            target=target, perturbations_per_eval=64,
        )  # fmt: skip
        return result[0], None, None


def occlusion_geometry(x: torch.Tensor, options: Mapping[str, Any]) -> tuple[int, int]:
    """The window and stride occlusion uses for ``x`` with these options (defaults filled in, window ≤ image)."""
    window = int(options.get("window") or default_window(x))
    window = min(window, *x.shape[-2:])
    stride = int(options.get("stride") or max(1, window // 2))
    return window, stride


class GuidedBackprop(Method):
    name = "guided-backprop"
    title = "Guided backpropagation"
    signed = True

    def compute(self, model: nn.Module, x: torch.Tensor, target: int, options: Mapping[str, Any]) -> Result:
        from captum.attr import GuidedBackprop as CaptumGuidedBackprop

        x.requires_grad_()
        with warnings.catch_warnings():  # Captum says each time that it hooks the ReLUs (and unhooks them after)
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return CaptumGuidedBackprop(model).attribute(x, target=target)[0], None, None


METHODS: dict[str, Method] = {
    m.name: m for m in [Saliency(), SmoothGrad(), IntegratedGradients(), GradCam(), Occlusion(), GuidedBackprop()]
}
INTERNAL_OPTIONS = ("black", "chunk")  # the prepared black picture (callers that prepare images); IG steps a slice


def method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ExplainError(f"unknown attribution method {name!r} (known: {', '.join(METHODS)})") from None


def resolved_options(m: Method, options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's defaults updated by ``options``; an option the method does not take is refused."""
    known = {o.name: o for o in m.options}
    unknown = [k for k in options if k not in known and k not in INTERNAL_OPTIONS]
    if unknown:
        takes = ", ".join(known) or "no options"
        raise ExplainError(f"{m.name} does not take {', '.join(unknown)} (it takes {takes})")
    resolved = {name: o.default for name, o in known.items()}
    for name, value in options.items():
        o = known.get(name)
        if o is not None and value is not None and o.low is not None and not isinstance(value, str):
            if not o.low <= float(value) <= (o.high if o.high is not None else math.inf):
                raise ExplainError(f"{m.name}: {name} must be between {o.low:g} and {o.high:g}, got {value}")
        if o is not None and o.choices and isinstance(value, str) and value not in o.choices:
            raise ExplainError(f"{m.name}: {name} must be one of {', '.join(o.choices)}, got {value!r}")
        resolved[name] = value
    return resolved


def class_count(model: nn.Module, x: torch.Tensor) -> int:
    """How many class scores the model gives (from a GraphModel's shapes, else one forward pass)."""
    shapes = getattr(model, "shapes", None)
    output_id = getattr(model, "output_id", None)
    if isinstance(shapes, dict) and output_id in shapes:
        shape = tuple(shapes[output_id])
    else:
        with torch.no_grad():
            shape = tuple(model(x).shape[1:])
    if len(shape) != 1:
        raise ExplainError(
            f"attribution explains class scores; this model's output is {shape}, not one score per class"
        )
    return int(shape[0])


def predicted_class(model: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        out = model(x)
    if out.dim() != 2:
        raise ExplainError(
            f"attribution explains class scores; this model's output is {tuple(out.shape[1:])}, not one per class"
        )
    return int(out[0].argmax())


def attribute(
    model: nn.Module, x: torch.Tensor, method_name: str, target: int | None = None, **options: Any
) -> Attribution:
    """Explain the model's score for class ``target`` (default: the predicted class) on ``x`` (1×C×H×W).

    ``options`` are the method's (``METHODS[name].options``); ``black=`` may carry the model input of an
    all-black picture prepared like ``x`` (integrated gradients' ``black`` baseline, occlusion's patch).
    """
    steps = attribute_steps(model, x, method_name, target, **options)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            result: Attribution = stop.value
            return result


def attribute_steps(
    model: nn.Module, x: torch.Tensor, method_name: str, target: int | None = None, **options: Any
) -> Generator[Progress, None, Attribution]:
    """``attribute`` in slices: yields (done, total) between slices of a long method (integrated gradients'
    steps, ``step_chunk`` at a time) and returns the ``Attribution``; closing it stops the work. Other methods
    run in one go. The model is in eval mode only while a slice runs (a model that trains between slices gets
    its mode back), and random numbers are drawn before the first slice, from the forked generator."""
    m = method(method_name)
    settings = resolved_options(m, options)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ExplainError(f"attribution takes one image as a 1×C×H×W tensor, got {tuple(x.shape)}")
    x = x.detach().float().clone()
    was_training = model.training
    if was_training:  # (switching costs a walk over every module: only when needed)
        model.eval()
    try:
        classes = class_count(model, x)
        if target is None:
            target = predicted_class(model, x)
        elif not 0 <= int(target) < classes:
            raise ExplainError(f"target class {target} does not exist (the model has classes 0 to {classes - 1})")
        target = int(target)
        noise_baseline = isinstance(settings.get("baseline"), str) and settings["baseline"] == "noise"
        stepped = m.compute_steps(model, x, target, settings) if not m.random else None
        if stepped is None:
            if m.random or noise_baseline:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(settings.get("seed") or 0))
                    result, delta, layer = m.compute(model, x, target, settings)
            else:
                result, delta, layer = m.compute(model, x, target, settings)
    finally:
        if was_training:
            model.train()
    if stepped is not None:
        if noise_baseline:  # drawn now, so no slice touches the random stream
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(settings.get("seed") or 0))
                settings["baseline"] = baseline_for(x, "noise")
            stepped = m.compute_steps(model, x, target, settings)
        assert stepped is not None
        while True:
            was_training = model.training
            if was_training:
                model.eval()
            try:
                progress = next(stepped)
            except StopIteration as stop:
                result, delta, layer = stop.value
                break
            finally:
                if was_training:
                    model.train()
            yield progress
    array = np.ascontiguousarray(result.detach().float().numpy(), dtype=np.float32)
    return Attribution(m.name, target, array, x.detach().numpy(), delta, layer)


def options_for(m: Method, options: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a shared set of options (the GUI's: steps, baseline, samples, window, ...) a method takes."""
    names = {o.name for o in m.options} | set(INTERNAL_OPTIONS)
    return {k: v for k, v in options.items() if k in names}


@dataclass(frozen=True)
class AttributionSettings:
    """What the live attribution probe computes: one or two methods side by side, the class explained (None:
    the predicted one), and options shared by the methods (each takes the ones it knows, ``options_for``).
    Checked when made, so a bad choice is refused in the caller's thread."""

    methods: tuple[str, ...] = ("saliency", "gradcam")
    target: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= len(self.methods) <= 2:
            raise ExplainError(f"choose one or two attribution methods, not {len(self.methods)}")
        if self.target is not None and self.target < 0:
            raise ExplainError(f"target class {self.target} does not exist")
        for name in self.methods:
            resolved_options(method(name), options_for(method(name), self.options))
        unknown = set(self.options) - {o.name for m in METHODS.values() for o in m.options} - {"chunk"}
        if unknown:
            raise ExplainError(f"no attribution method takes {', '.join(sorted(unknown))}")


def black_picture_input(prepare: Callable[[np.ndarray], torch.Tensor], pixels: np.ndarray) -> torch.Tensor | None:
    """The model input of an all-black picture shaped like ``pixels``, prepared by ``prepare`` exactly as the
    picture is; None when the preparation refuses it (MNIST-style preparation finds no ink in black), and
    then a zero input stands for it."""
    try:
        return prepare(np.zeros_like(pixels))
    except LumenError:
        return None
