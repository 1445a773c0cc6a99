"""What an autoencoder learns, live: validation pictures beside their reconstructions (and, for a denoising
look, the corrupted picture it was given), each one's reconstruction error, and the latent space — the code of
every validation sample, in two dimensions (the code itself when it has two, else its first two principal
components, fitted on this frame's codes), coloured by class.

The code is read from the model's first bottleneck (``Bottleneck``'s activation, or ``VariationalBottleneck``'s μ:
what it passes on in eval mode) with a forward hook, during the one eval-mode pass that also reconstructs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.graph.modes import evaluating
from lumen.engine.modules.autoencoder import Bottleneck, VariationalBottleneck
from lumen.engine.probes.base import Probe, ProbeContext

MAX_NOISE = 0.9
NEAREST = 8  # validation samples shown nearest to the probe input in latent space


@dataclass(frozen=True)
class AutoencoderSettings:
    noise: float = 0.0  # the share of input values zeroed before encoding (masking noise): the denoising look
    seed: int = 0  # which pixels the noise zeroes

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise <= MAX_NOISE:
            raise LumenError(f"the noise level is a share of the pixels from 0 to {MAX_NOISE}, not {self.noise}")


@dataclass(frozen=True, eq=False)
class AutoencoderFrame(Frame):
    inputs: np.ndarray  # N × H × W (or N × H × W × 3): the clean validation pictures, float32
    outputs: np.ndarray  # the reconstructions, same shape
    corrupted: np.ndarray | None  # what the model was given when the settings add noise; None without
    errors: np.ndarray  # N: each reconstruction's mean squared error against the clean picture
    points: np.ndarray  # N × 2: each sample's code in two dimensions
    axes: tuple[str, str]  # what the two dimensions are ("code 0", or "PC1 (41 % of the variance)")
    labels: np.ndarray  # N: each sample's class index (-1 without classes)
    classes: tuple[str, ...]
    code: str  # the bottleneck's node, and its size, for people
    settings: AutoencoderSettings = AutoencoderSettings()
    note: str = ""
    unit_means: np.ndarray | None = None  # a sparse code's mean activation per unit over the samples
    target: float | None = None  # the sparsity target ρ those means are pulled towards (None: an L1 penalty)
    jacobian: float | None = None  # a contractive code's mean ‖∂h/∂x‖_F over the samples
    # The probe input (a picture the user dropped, or a validation sample): how unusual the autoencoder finds it.
    probed: Probed | None = None


@dataclass(frozen=True)
class Probed:
    source: str  # the probe input, for people
    input: np.ndarray  # H × W (or H × W × 3)
    output: np.ndarray  # its reconstruction
    error: float  # mean squared
    point: np.ndarray  # 2: its code on the validation codes' plane
    nearest: np.ndarray  # the validation samples nearest to its code (Euclidean, in the code itself), nearest first


def code_module(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The model's first bottleneck (plain or variational), by its dotted name."""
    return next(
        ((name, m) for name, m in model.named_modules() if isinstance(m, Bottleneck | VariationalBottleneck)), None
    )


@dataclass(frozen=True)
class Plane:
    """Where codes are drawn: the code itself when it has at most two numbers, else its first two principal
    components (fitted once, on the validation codes, so other codes land on the same axes)."""

    mean: np.ndarray
    components: np.ndarray | None  # 2 × D, or None: the code's own numbers
    axes: tuple[str, str]

    def project(self, codes: np.ndarray) -> np.ndarray:
        if self.components is None:
            points = np.zeros((len(codes), 2), np.float32)
            points[:, : codes.shape[1]] = codes
            return points
        return ((codes - self.mean) @ self.components.T).astype(np.float32)


def fit_plane(codes: np.ndarray) -> Plane:
    """The plane of ``codes`` (N × D): numpy's SVD of the centred codes for D > 2."""
    if codes.shape[1] <= 2:
        return Plane(np.zeros(codes.shape[1]), None, ("code 0", "code 1" if codes.shape[1] == 2 else ""))
    mean = codes.mean(axis=0)
    _, singular, components = np.linalg.svd((codes - mean).astype(np.float64), full_matrices=False)
    share = singular**2 / max(float((singular**2).sum()), 1e-30)
    return Plane(mean, components[:2], (f"PC1 ({share[0]:.0%} of the variance)", f"PC2 ({share[1]:.0%})"))


def two_dimensions(codes: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """``codes`` (N × D) as N × 2 points on their own plane, and the plane's axes."""
    plane = fit_plane(codes)
    return plane.project(codes), plane.axes


def _pictures(x: torch.Tensor) -> np.ndarray:
    """N × C × H × W → N × H × W (one channel) or N × H × W × 3; other shapes flattened to N × 1 × D."""
    array = x.detach().float().cpu().numpy()
    if array.ndim == 4 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim == 4 and array.shape[1] == 3:
        return array.transpose(0, 2, 3, 1)
    return array.reshape(len(array), 1, -1)


class Autoencoding(Probe):
    name = "autoencoder"
    frame_type = AutoencoderFrame
    interval_s = 1.0  # 256 samples through the model and a PCA: the pictures change slowly
    budget = 0.05
    replayable = True
    Settings = AutoencoderSettings

    def applies(self, info: ModelInfo) -> bool:
        return info.family == "autoencoder"

    @staticmethod
    def _run(model: nn.Module, module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model's eval-mode output for ``x`` and the code its bottleneck made on the way (N × D)."""
        kept: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda _m, _a, out: kept.append(out))
        try:
            with evaluating(model), torch.no_grad():
                out = model(x)
        finally:
            handle.remove()
        return out, kept[0].flatten(1) if kept else None

    def frame(self, context: ProbeContext) -> AutoencoderFrame | None:
        found = code_module(context.model)
        if context.validation is None or found is None:
            return None
        x, y = context.validation
        name, module = found
        corrupted = None
        given = x
        if self.settings.noise > 0:
            generator = torch.Generator().manual_seed(self.settings.seed)
            keep = torch.rand(x.shape, generator=generator) >= self.settings.noise
            given = corrupted = x * keep.to(x.dtype)
        out, code = self._run(context.model, module, given)
        if out.shape != x.shape or code is None:
            return None
        errors = ((out - x) ** 2).flatten(1).mean(1).numpy().astype(np.float32)
        plane = fit_plane(code.numpy())
        points, axes = plane.project(code.numpy()), plane.axes
        labels = y.numpy().astype(np.int64) if y.dim() == 1 else np.full(len(x), -1, np.int64)
        plain = module if isinstance(module, Bottleneck) else None  # a VAE's code has neither penalty
        sparse = plain is not None and plain.sparsity_weight > 0
        return AutoencoderFrame(
            context.step,
            _pictures(x),
            _pictures(out),
            _pictures(corrupted) if corrupted is not None else None,
            errors,
            points,
            axes,
            labels,
            context.classes,
            f"{name} ({code.shape[1]} numbers)",
            self.settings,
            unit_means=code.mean(0).numpy().astype(np.float32) if sparse else None,
            target=float(plain.sparsity_target) if plain is not None and sparse and plain.sparsity_target else None,
            jacobian=_jacobian_norm(plain, code) if plain is not None and plain.contractive_weight > 0 else None,
            probed=self._probed(context, module, code, plane),
        )

    def _probed(self, context: ProbeContext, module: nn.Module, codes: torch.Tensor, plane: Plane) -> Probed | None:
        """The probe input's reconstruction, error, place in the latent space and nearest validation samples."""
        probe, validation = context.input, context.validation
        if probe is None or validation is None or tuple(probe.x.shape[1:]) != tuple(validation[0].shape[1:]):
            return None
        out, code = self._run(context.model, module, probe.x)
        if code is None or out.shape != probe.x.shape:
            return None
        distances = torch.cdist(code, codes)[0]
        return Probed(
            probe.source,
            _pictures(probe.x)[0],
            _pictures(out)[0],
            float(((out - probe.x) ** 2).mean()),
            plane.project(code.numpy())[0],
            torch.argsort(distances)[:NEAREST].numpy(),
        )


def _jacobian_norm(module: Bottleneck, code: torch.Tensor) -> float:
    """The mean over samples of ‖∂h/∂x‖_F for h = a(Wx + b): ‖J‖²_F = Σ_j a′(h_j)² Σ_i W_ji², a′ read off h (the
    contractive penalty's own formula, ``Bottleneck.penalty``)."""
    slope = {"none": torch.ones_like(code), "relu": (code > 0).to(code.dtype), "sigmoid": code * (1 - code)}.get(
        module.activation, 1 - code * code
    )
    squared = (slope**2) @ (module.linear.weight.detach() ** 2).sum(dim=1)
    return float(squared.sqrt().mean())
