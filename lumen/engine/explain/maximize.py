"""Activation maximization: the input that most excites a class, a channel or one neuron, found by gradient
ascent on the input (written here: no well-kept PyTorch library does it).

The picture is parameterised either as plain pixels or, by default, in a decorrelated Fourier basis (Olah et
al., *Feature Visualization*, 2017): a spectrum scaled by 1/frequency, so every frequency learns at the same
pace and the result is not high-frequency noise; an RGB picture's channels are also decorrelated with
ImageNet's colour correlation. Regularisers: random jitter (a roll of a few pixels each step), a Gaussian
blur of what the model sees, and an L2 penalty pulling pixels to grey; for the pixel parameterisation
the pixels are also blurred every few steps (Yosinski et al., 2015). A sigmoid keeps pixels in [0, 1], the
range the model's inputs have. Works for 1-channel and small inputs (28×28) as for 3×224×224.

``maximize_steps`` is a generator, one optimiser step per ``next()``, so the worker runs it in slices
between other commands and can cancel it; ``maximize`` runs it to the end.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.explain.activations import check_layers, record

OBJECTIVE_KINDS = ("class", "channel", "neuron", "layer")
PARAMETERISATIONS = ("fourier", "pixel")

# The square root of ImageNet's colour correlation (Lucid's), columns normalised by the largest norm.
_COLOUR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
COLOUR_DECORRELATION = _COLOUR_SQRT / np.max(np.linalg.norm(_COLOUR_SQRT, axis=0))


@dataclass(frozen=True)
class MaximizeTarget:
    """What to excite. ``class``: the output unit ``index`` (a class's logit). ``channel``: the mean of channel
    ``index`` of ``layer``. ``neuron``: channel ``index`` of ``layer`` at one position (``y``, ``x``; the
    centre when None). ``layer``: the mean square of the whole layer (DeepDream's objective)."""

    kind: str = "class"
    index: int = 0
    layer: str | None = None
    y: int | None = None
    x: int | None = None

    def check(self, model: nn.Module) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise LumenError(f"unknown objective {self.kind!r} (known: {', '.join(OBJECTIVE_KINDS)})")
        if self.index < 0:
            raise LumenError(f"the {self.kind} index must be ≥ 0, got {self.index}")
        if any(v is not None and v < 0 for v in (self.y, self.x)):
            raise LumenError(f"a neuron's position must be ≥ 0, got ({self.y}, {self.x})")
        if self.kind != "class":
            if self.layer is None:
                raise LumenError(f"a {self.kind} objective needs a layer")
            check_layers(model, [self.layer])

    def describe(self) -> str:
        if self.kind == "class":
            return f"class {self.index}"
        if self.kind == "layer":
            return f"layer {self.layer}"
        if self.kind == "neuron" and (self.y is not None or self.x is not None):
            at = ", ".join("centre" if v is None else str(v) for v in (self.y, self.x))
            return f"neuron {self.index} at ({at}) of {self.layer}"
        return f"{self.kind} {self.index} of {self.layer}"


def objective_value(model: nn.Module, x: torch.Tensor, objective: MaximizeTarget) -> torch.Tensor:
    """The scalar to ascend, for a batch ``x`` (averaged over it), in the graph."""
    if objective.kind == "class":
        out = model(x)
        if out.dim() != 2:
            raise LumenError(f"the model's output is {tuple(out.shape[1:])} per sample, not one score per class")
        if objective.index >= out.shape[1]:
            raise LumenError(f"class {objective.index} is out of range: the model has {out.shape[1]} outputs")
        return out[:, objective.index].mean()
    assert objective.layer is not None
    _, recorded = record(model, x, [objective.layer], grad=True)
    if objective.layer not in recorded:
        raise LumenError(f"layer {objective.layer} gives no tensor output to maximise")
    act = recorded[objective.layer]
    if objective.kind == "layer":
        return act.pow(2).mean()
    if act.dim() < 2 or objective.index >= act.shape[1]:
        size = act.shape[1] if act.dim() >= 2 else 0
        raise LumenError(f"{objective.layer} has {size} channels; channel {objective.index} does not exist")
    channel = act[:, objective.index]
    if objective.kind == "channel" or channel.dim() == 1:
        return channel.mean()
    # A neuron: one position of the channel (its centre unless given); 1-D maps take y only.
    if channel.dim() == 2:
        pos = objective.x if objective.x is not None else channel.shape[1] // 2
        return channel[:, min(pos, channel.shape[1] - 1)].mean()
    h, w = channel.shape[-2:]
    y = min(objective.y if objective.y is not None else h // 2, h - 1)
    x_ = min(objective.x if objective.x is not None else w // 2, w - 1)
    return channel[:, y, x_].mean()


@dataclass(frozen=True)
class MaximizeSettings:
    steps: int = 256
    lr: float = 0.05
    parameterisation: str = "fourier"
    jitter: int = 2  # pixels, at most an eighth of the picture's side
    blur_sigma: float = 0.5  # of the Gaussian blur applied to what the model sees; 0: none
    blur_every: int = 4  # pixel parameterisation: blur the pixels themselves every this many steps
    l2: float = 1e-3  # weight of the penalty on (pixel − grey)²
    seed: int = 0

    def check(self) -> None:
        if self.parameterisation not in PARAMETERISATIONS:
            raise LumenError(
                f"unknown parameterisation {self.parameterisation!r} (known: {', '.join(PARAMETERISATIONS)})"
            )
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 100_000):
            raise LumenError(f"steps must be a whole number from 1 to 100,000, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LumenError(f"the step size must be a positive number, got {self.lr}")
        if self.jitter < 0 or self.blur_sigma < 0 or self.l2 < 0 or self.blur_every < 1:
            raise LumenError("jitter, blur and L2 weights must be ≥ 0 (and blur_every ≥ 1)")


class ImageParameters(nn.Module):
    """A C×H×W picture in [0, 1] as learnable parameters: pixels, or a 1/f-scaled decorrelated spectrum."""

    scale: torch.Tensor  # the Fourier parameterisation's 1/frequency per coefficient (a buffer)

    def __init__(self, shape: tuple[int, int, int], parameterisation: str, generator: torch.Generator):
        super().__init__()
        channels, h, w = shape
        self.shape = shape
        self.fourier = parameterisation == "fourier"
        if self.fourier:
            fy = torch.fft.fftfreq(h)[:, None]
            fx = torch.fft.rfftfreq(w)[None, :]
            freqs = torch.sqrt(fx**2 + fy**2)
            self.register_buffer("scale", 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)))
            spectrum = torch.randn(channels, h, w // 2 + 1, 2, generator=generator) * 0.01
            self.raw = nn.Parameter(spectrum)
        else:
            self.raw = nn.Parameter(torch.randn(channels, h, w, generator=generator) * 0.01)

    def forward(self) -> torch.Tensor:
        channels, h, w = self.shape
        if self.fourier:
            spectrum = torch.view_as_complex(self.raw) * self.scale
            planes = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / 4.0
        else:
            planes = self.raw
        if channels == 3:
            planes = torch.einsum("ij,jhw->ihw", torch.from_numpy(COLOUR_DECORRELATION), planes)
        return torch.sigmoid(planes)[None]

    @torch.no_grad()
    def blur_pixels(self, sigma: float) -> None:
        if not self.fourier and sigma > 0:
            self.raw.copy_(gaussian_blur(self.raw[None], sigma)[0])


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """N×C×H×W blurred per channel with a Gaussian of ``sigma`` pixels (reflect padding)."""
    if sigma <= 0:
        return x
    radius = max(1, min(int(math.ceil(2 * sigma)), (min(x.shape[-2:]) - 1) // 2 or 1))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def jitter(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    if pixels <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(-pixels, pixels + 1, (2,), generator=generator))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def input_shape_of(model: nn.Module, shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    if shape is None:
        spec = getattr(model, "spec", None)
        shape = tuple(spec.input_shape) if spec is not None else None
    if shape is None or len(shape) != 3:
        raise LumenError(f"activation maximisation needs a model that takes images (C×H×W), not {shape}")
    c, h, w = (int(v) for v in shape)
    return c, h, w


def maximize_steps(
    model: nn.Module,
    objective: MaximizeTarget,
    settings: MaximizeSettings = MaximizeSettings(),
    *,
    input_shape: tuple[int, ...] | None = None,
) -> Generator[tuple[int, torch.Tensor], None, None]:
    """Yields ``(steps done, picture)`` after each optimiser step; the picture is 1×C×H×W in [0, 1], detached.

    The model is in eval mode while the generator runs a step and gets its mode back after each; its weights
    get no gradients (only the picture's parameters are differentiated)."""
    settings.check()
    objective.check(model)
    shape = input_shape_of(model, input_shape)
    generator = torch.Generator().manual_seed(settings.seed)
    params = ImageParameters(shape, settings.parameterisation, generator)
    optimiser = torch.optim.Adam(params.parameters(), lr=settings.lr)
    shift = min(settings.jitter, max(shape[1], shape[2]) // 8)
    for step in range(1, settings.steps + 1):
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                image = params()
                seen = gaussian_blur(jitter(image, shift, generator), settings.blur_sigma)
                loss = -objective_value(model, seen, objective) + settings.l2 * (image - 0.5).pow(2).sum()
                (grad,) = torch.autograd.grad(loss, [params.raw])
        finally:
            model.train(was_training)
        params.raw.grad = grad
        optimiser.step()
        if step % settings.blur_every == 0:
            params.blur_pixels(settings.blur_sigma)
        with torch.no_grad():
            picture = params().detach()
        yield step, picture


def maximize(
    model: nn.Module,
    objective: MaximizeTarget,
    settings: MaximizeSettings = MaximizeSettings(),
    *,
    input_shape: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """The picture (1×C×H×W in [0, 1]) after ``settings.steps`` steps."""
    picture = torch.empty(0)
    for _, latest in maximize_steps(model, objective, settings, input_shape=input_shape):
        picture = latest
    return picture
