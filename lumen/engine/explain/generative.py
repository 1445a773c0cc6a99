"""What autoencoders are used for: an autoencoder split at its code into ``encode`` and ``decode``, and what
that split gives — samples from a VAE's prior, a walk along one latent dimension, interpolation between two
pictures, inpainting (iterated reconstruction of the unknown pixels), nearest neighbours in latent space and
anomaly scores (reconstruction error, ranked against reference pictures).

The code is the output of the model's first ``bottleneck`` node (its activation) or ``variational_bottleneck``
node (μ: what it passes on in eval mode). Everything runs in eval mode without gradients, and the model's mode is
restored afterwards. Qt-free; the GUI and the CLI (``sample``, ``reconstruct``, ``neighbours``) share it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lumen.engine.errors import LumenError
from lumen.engine.graph.modes import evaluating
from lumen.engine.modules.autoencoder import Bottleneck, VariationalBottleneck

ENCODE_BATCH = 256  # pictures encoded at once by ``neighbours`` and ``anomaly``


class NotAnAutoencoder(LumenError):
    """A model these functions cannot split at a code, or a request it cannot answer (no prior, a bad index)."""


@dataclass(frozen=True)
class Autoencoder:
    """A model split at its code: ``encode(x)`` (N × C × H × W → N × D) and ``decode(z)`` (N × D → the model's
    output, shaped as its input), both in eval mode without gradients."""

    code_node: str
    size: int  # D, the numbers in one code
    variational: bool  # a VAE's code (μ), which has a prior N(0, I)
    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    with evaluating(model), torch.no_grad():
        yield


def _name(model: nn.Module) -> str:
    spec = getattr(model, "spec", None)
    return str(getattr(spec, "name", "") or type(model).__name__)


def split_autoencoder(model: nn.Module) -> Autoencoder:
    """``model`` (a GraphModel) split at its first bottleneck; refused when it has none, or when a node after the
    code reads a node before it (a skip connection around the code: the decoder would need more than z)."""
    order: list[str] | None = getattr(model, "order", None)
    layers: dict[str, nn.Module] | None = getattr(model, "layers", None)
    sources: dict[str, list[str]] | None = getattr(model, "sources", None)
    shapes: dict[str, tuple[int, ...]] | None = getattr(model, "shapes", None)
    if order is None or layers is None or sources is None or shapes is None:
        raise NotAnAutoencoder(f"{_name(model)} is not a model built from a spec; it cannot be split at its code")
    code = next((n for n in order if isinstance(layers[n], Bottleneck | VariationalBottleneck)), None)
    if code is None:
        raise NotAnAutoencoder(
            f"{_name(model)} has no bottleneck or variational_bottleneck node: it is not an autoencoder"
        )
    at = order.index(code)
    before, after = set(order[:at]), order[at + 1 :]
    output = getattr(model, "output_id", order[-1])
    if output not in after:
        raise NotAnAutoencoder(f"{_name(model)}'s output is not after its code {code}: nothing decodes the code")
    for node in after:
        skipped = [s for s in sources[node] if s in before]
        if skipped:
            raise NotAnAutoencoder(
                f"{_name(model)}: {node} reads {skipped[0]}, which comes before the code {code}: a skip connection "
                f"around the code, so the code alone cannot be decoded"
            )
    input_shape, code_shape = tuple(shapes[order[0]]), tuple(shapes[code])
    size = math.prod(code_shape)
    encoder, decoder = order[: at + 1], after

    def encode(x: torch.Tensor) -> torch.Tensor:
        x = _batch(x, input_shape)
        values: dict[str, torch.Tensor] = {}
        with _evaluating(model):
            for node in encoder:
                inputs = [values[s] for s in sources[node]] if sources[node] else [x]
                values[node] = layers[node](*inputs)
        return values[code].flatten(1)

    def decode(z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 1:
            z = z[None]
        if z.dim() != 2 or z.shape[1] != size:
            raise NotAnAutoencoder(f"{code} holds codes of {size} numbers; got a tensor of shape {tuple(z.shape)}")
        values = {code: z.reshape(len(z), *code_shape)}
        with _evaluating(model):
            for node in decoder:
                values[node] = layers[node](*[values[s] for s in sources[node]])
        return values[output]

    variational = isinstance(layers[code], VariationalBottleneck)
    return Autoencoder(code, size, variational, encode, decode)


def _batch(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """One picture (C × H × W) as a batch of one; a batch as it is."""
    return x[None] if input_shape and x.dim() == len(input_shape) else x


def _one(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    """A batch of one picture from one picture or a batch of one; more is refused."""
    if x.dim() >= 4 and len(x) != 1:
        raise NotAnAutoencoder(f"{what} should be one picture, not a batch of {len(x)}")
    return x if x.dim() >= 4 else x[None]


def prior_samples(model: nn.Module, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` pictures decoded from z ~ N(0, I) (``torch.randn((n, D), generator=generator)``); a VAE only."""
    ae = split_autoencoder(model)
    if not ae.variational:
        raise NotAnAutoencoder(
            f"{_name(model)} is a plain autoencoder (its code node {ae.code_node!r} is a bottleneck): it has no prior "
            f"to sample from; only a VAE (a variational_bottleneck, trained towards N(0, I)) has one"
        )
    if n < 1:
        raise NotAnAutoencoder(f"the number of samples is a whole number from 1, not {n}")
    return ae.decode(torch.randn((n, ae.size), generator=generator))


def traversal(model: nn.Module, x: torch.Tensor, dim: int, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """x's code with latent dimension ``dim`` set to each of ``values`` in turn, the rest held; decoded
    (len(values) × the input's shape)."""
    ae = split_autoencoder(model)
    if not 0 <= dim < ae.size:
        raise NotAnAutoencoder(f"the code {ae.code_node} has dimensions 0 to {ae.size - 1}, not {dim}")
    z = ae.encode(_one(x))[0]
    steps = torch.as_tensor(values, dtype=z.dtype).flatten()
    codes = z.repeat(len(steps), 1)
    codes[:, dim] = steps
    return ae.decode(codes)


def interpolate(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` pictures decoded along the straight line from x0's code to x1's, both ends included."""
    if steps < 2:
        raise NotAnAutoencoder(f"an interpolation has at least 2 steps (its two ends), not {steps}")
    ae = split_autoencoder(model)
    z0, z1 = ae.encode(_one(x0, "x0"))[0], ae.encode(_one(x1, "x1"))[0]
    t = torch.linspace(0.0, 1.0, steps, dtype=z0.dtype)[:, None]
    return ae.decode((1 - t) * z0 + t * z1)


def inpaint(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """x with its unknown pixels (``mask`` True) filled in: they start at the mean of the picture's known pixels
    (0.5 when none is known), then ``iterations`` times the picture is reconstructed and only the unknown pixels
    take the reconstruction's values. Known pixels come back untouched. ``x``: N × C × H × W (or one picture,
    C × H × W); ``mask`` broadcasts to it (H × W, say). Returns N × C × H × W."""
    ae = split_autoencoder(model)
    x = x[None] if x.dim() == 3 else x
    try:
        unknown = torch.broadcast_to(mask.to(torch.bool), x.shape)
    except RuntimeError:
        raise NotAnAutoencoder(
            f"the mask's shape {tuple(mask.shape)} does not fit the picture's {tuple(x.shape)}"
        ) from None
    known = (~unknown).to(x.dtype)
    counts = known.flatten(1).sum(1)
    means = (x * known).flatten(1).sum(1) / counts.clamp(min=1)
    fill = torch.where(counts > 0, means, torch.full_like(means, 0.5))
    filled = torch.where(unknown, fill.reshape(-1, *[1] * (x.dim() - 1)).expand_as(x), x)
    for _ in range(iterations):
        filled = torch.where(unknown, ae.reconstruct(filled), x)
    return filled


def _encode_all(ae: Autoencoder, pictures: torch.Tensor) -> torch.Tensor:
    return torch.cat([ae.encode(pictures[i : i + ENCODE_BATCH]) for i in range(0, len(pictures), ENCODE_BATCH)])


def neighbours(model: nn.Module, x: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` pictures of ``pool`` (N × C × H × W) whose codes are nearest x's (Euclidean), nearest first:
    (their indices into ``pool``, their distances)."""
    if not 1 <= k <= len(pool):
        raise NotAnAutoencoder(f"k is the number of neighbours, from 1 to the {len(pool):,} pictures given, not {k}")
    ae = split_autoencoder(model)
    z = ae.encode(_one(x))
    distances = torch.linalg.vector_norm(_encode_all(ae, pool) - z, dim=1)
    nearest, indices = torch.topk(distances, k, largest=False, sorted=True)
    return indices, nearest


def reconstruction_errors(model: nn.Module, pictures: torch.Tensor) -> torch.Tensor:
    """Each picture's reconstruction error: the mean squared difference from its reconstruction (N)."""
    ae = split_autoencoder(model)
    return torch.cat(
        [
            ((ae.reconstruct(chunk) - chunk) ** 2).flatten(1).mean(1)
            for chunk in (pictures[i : i + ENCODE_BATCH] for i in range(0, len(pictures), ENCODE_BATCH))
        ]
    )


def anomaly(model: nn.Module, x: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """x's reconstruction error (mean squared) and the share of ``reference``'s pictures whose error is lower, in
    percent: near 100, x is reconstructed worse than almost all of them."""
    if len(reference) == 0:
        raise NotAnAutoencoder("anomaly needs reference pictures to rank x's reconstruction error against")
    error = float(reconstruction_errors(model, _one(x))[0])
    lower = int((reconstruction_errors(model, reference) < error).sum())
    return error, 100.0 * lower / len(reference)


def grid(pictures: torch.Tensor | np.ndarray, columns: int | None = None, scale: int = 1) -> np.ndarray:
    """N × C × H × W pictures (C 1 or 3, values in [0, 1]) as one uint8 picture: rows of ``columns`` (default
    near-square) with 1-pixel grey gaps, each pixel ``scale`` × ``scale``; H × W, or H × W × 3 for colour."""
    array = np.clip(np.asarray(torch.as_tensor(pictures).detach().float().cpu()), 0.0, 1.0)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] not in (1, 3):
        raise NotAnAutoencoder(f"a grid takes grey or RGB pictures, not an array of shape {array.shape}")
    n, channels, h, w = array.shape
    cols = max(1, min(columns or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    h, w = h * scale, w * scale
    out = np.full((channels, rows * (h + 1) - 1, cols * (w + 1) - 1), 0.5, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        big = array[i].repeat(scale, axis=1).repeat(scale, axis=2)
        out[:, r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = big
    pixels = (out * 255.0 + 0.5).astype(np.uint8)
    return pixels[0] if channels == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0))
