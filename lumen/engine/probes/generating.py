"""What an autoencoder can make, live: inpainting of the probe input (the pixels the user masked filled in by
iterated reconstruction), interpolation in latent space between two validation pictures, and for a VAE samples
from its prior and a walk along each of its first latent dimensions from the probe input's code.

Everything goes through ``engine.explain.generative`` (the model split at its code); the prior samples use the
same seeded draws in every frame, so the same pictures can be watched forming as the model trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lumen.engine.errors import LumenError
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.explain.generative import inpaint, interpolate, prior_samples, split_autoencoder, traversal
from lumen.engine.probes.base import Probe, ProbeContext

SAMPLES = 16  # prior samples shown
WALKED = 8  # latent dimensions walked along
WALK = tuple(float(v) for v in np.linspace(-3.0, 3.0, 9))  # the values each walked dimension takes (prior σ's)
STEPS = 10  # pictures along an interpolation, ends included


@dataclass(frozen=True)
class GenerateSettings:
    mask: np.ndarray | None = None  # H × W bool: the probe input's pixels to fill in (True: unknown)
    ends: tuple[int, int] = (0, 1)  # the validation samples interpolated between
    seed: int = 0  # the prior samples' draws

    def __post_init__(self) -> None:
        if min(self.ends) < 0:
            raise LumenError(f"validation samples are numbered from 0, not {min(self.ends)}")

    def __eq__(self, other: object) -> bool:  # an array field: compared by value
        return (
            isinstance(other, GenerateSettings)
            and self.ends == other.ends
            and self.seed == other.seed
            and (
                self.mask is other.mask
                or (self.mask is not None and other.mask is not None and np.array_equal(self.mask, other.mask))
            )
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class GenerateFrame(Frame):
    source: str  # the probe input, for people
    picture: np.ndarray  # the probe input (H × W), on which the user marks the pixels to fill in
    masked: np.ndarray | None  # the probe input with its unknown pixels greyed (H × W), None without a mask
    inpainted: np.ndarray | None  # the probe input with them filled in
    ends: tuple[int, int]
    between: np.ndarray  # STEPS × H × W: the interpolation, ends included
    samples: np.ndarray | None  # SAMPLES × H × W from the prior (a VAE), else None
    walks: np.ndarray | None  # dims × len(WALK) × H × W: the probe input's code walked along each dimension (VAE)
    walk_values: tuple[float, ...] = WALK
    settings: GenerateSettings = GenerateSettings()


def _pictures(x: torch.Tensor) -> np.ndarray:
    """N × 1 × H × W → N × H × W (N × H × W × 3 for colour)."""
    array = x.detach().float().numpy()
    return array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)


class Generating(Probe):
    name = "generating"
    frame_type = GenerateFrame
    interval_s = 1.0
    budget = 0.05
    replayable = True
    Settings = GenerateSettings

    def applies(self, info: ModelInfo) -> bool:
        return info.family == "autoencoder" and info.input_kind == "image"

    def frame(self, context: ProbeContext) -> GenerateFrame | None:
        probe, validation = context.input, context.validation
        if validation is None or probe is None or tuple(probe.x.shape[1:]) != tuple(validation[0].shape[1:]):
            return None
        model = context.model
        try:
            ae = split_autoencoder(model)
        except LumenError:
            return None  # a model with no single code to split at (a skip around it): nothing to make
        x = probe.x
        masked = inpainted = None
        mask = self.settings.mask
        if mask is not None and mask.shape == tuple(x.shape[-2:]) and mask.any():
            unknown = torch.from_numpy(mask)
            inpainted = _pictures(inpaint(model, x, unknown))[0]
            masked = _pictures(torch.where(unknown, torch.full_like(x, 0.5), x))[0]
        first, second = (min(i, len(validation[0]) - 1) for i in self.settings.ends)
        between = _pictures(interpolate(model, validation[0][first], validation[0][second], STEPS))
        samples = walks = None
        if ae.variational:
            generator = torch.Generator().manual_seed(self.settings.seed)
            samples = _pictures(prior_samples(model, SAMPLES, generator))
            walks = np.stack([_pictures(traversal(model, x, d, WALK)) for d in range(min(WALKED, ae.size))])
        return GenerateFrame(
            context.step,
            probe.source,
            _pictures(x)[0],
            masked,
            inpainted,
            (first, second),
            between,
            samples,
            walks,
            settings=self.settings,
        )
