"""How likely an RBM finds its data: log p(v) = −F(v) − log Z, in nats.

The free energy F(v) is the RBM's own (``engine.modules.boltzmann.RBM.free_energy``); the hard part is the
partition function Z = Σ_v Σ_h exp(−E(v, h)).

- ``exact_log_partition``: for ≤ ``MAX_EXACT_HIDDEN`` hidden units, summed over all 2^H hidden states, the
  visible units marginalised in closed form: log Z = logsumexp_h [cᵀh + Σ_i softplus(b_i + (Wᵀh)_i)] for
  Bernoulli visible units, and D/2·log 2π + logsumexp_h [cᵀh + bᵀa + ½‖a‖²] with a = Wᵀh for Gaussian visible
  units of unit variance (the Gaussian integral of exp(−½‖v − b‖² + aᵀv)). The states go through in chunks, so
  2^20 of them need a few tens of MB.
- ``ais_log_partition``: annealed importance sampling (Salakhutdinov & Murray 2008) for larger RBMs. It anneals
  from a base-rate RBM with no weights (its visible biases fitted to the data's mean, or zero) to the RBM through
  p*_β(v) = exp((1−β)·b_Aᵀv + β·b_Bᵀv + Σ_j softplus(β(c_j + W_j·v))) (Bernoulli; the Gaussian case mixes the two
  quadratic terms instead), one Gibbs step per β, on M independent chains. It returns log Ẑ = log Z_A + log of
  the chains' mean importance weight (Z_A: the base rate's visible units times 2 per hidden unit), and the range
  log(mean ± 3 standard errors of the weights).

All sums are in float64, whatever the RBM's dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lumen.engine.errors import LumenError
from lumen.engine.graph.model import GraphModel
from lumen.engine.modules.boltzmann import RBM

MAX_EXACT_HIDDEN = 20  # 2^20 hidden states: about a second per 100 visible units on two cores
CHUNK = 4096  # hidden states at a time: 4096 × visible float64s (25 MB for 784 visible units)


@dataclass(frozen=True)
class AisEstimate:
    """``log_z``: the estimate of log Z; ``low``/``high``: log(mean weight ∓ 3 standard errors) (``low`` is −inf
    when the spread reaches zero); ``log_weights``: each chain's log importance weight, for a closer look."""

    log_z: float
    low: float
    high: float
    chains: int
    betas: int
    log_weights: torch.Tensor


def single_rbm(model: GraphModel, name: str = "the model") -> tuple[str, RBM]:
    """The node id and module of the model's one RBM; refused (one line) for none or a stack of them."""
    ids = model.nodes_of_type("rbm")
    if not ids:
        raise LumenError(f"{name} has no rbm layer: the log-likelihood here is a restricted Boltzmann machine's")
    if len(ids) > 1:
        raise LumenError(
            f"{name} stacks {len(ids)} RBMs ({', '.join(ids)}): the log-likelihood here is a single RBM's, "
            "not a DBN's or DBM's"
        )
    rbm = model.layers[ids[0]]
    assert isinstance(rbm, RBM)
    return ids[0], rbm


@torch.no_grad()
def visible_data(model: GraphModel, node: str, x: torch.Tensor) -> torch.Tensor:
    """What the RBM at ``node`` reads when the model runs on ``x`` (e.g. flattened digits), in float64."""
    (source,) = model.sources[node]
    _, recorded = model.forward_recording(x, [source])
    return recorded[source].double()


def _params(rbm: RBM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return rbm.weight.detach().double(), rbm.visible_bias.detach().double(), rbm.hidden_bias.detach().double()


def check_exact(rbm: RBM, name: str = "the RBM") -> None:
    hidden = rbm.hidden_bias.numel()
    if hidden > MAX_EXACT_HIDDEN:
        raise LumenError(
            f"the exact log-likelihood sums over all 2^H hidden states: {name} has {hidden:,} hidden units, "
            f"more than {MAX_EXACT_HIDDEN} (2^{hidden} states); use annealed importance sampling (ais) instead"
        )


@torch.no_grad()
def exact_log_partition(rbm: RBM, chunk: int = CHUNK) -> float:
    """log Z, summed over every hidden state in float64 (``RBM.log_partition``; refused beyond
    ``MAX_EXACT_HIDDEN`` hidden units)."""
    check_exact(rbm)
    return rbm.log_partition(chunk, torch.float64)


@torch.no_grad()
def log_likelihood(rbm: RBM, v: torch.Tensor, log_z: float) -> torch.Tensor:
    """log p(v) = −F(v) − log Z per example (float64); a density for Gaussian visible units."""
    weight, b, c = _params(rbm)
    v = v.double()
    visible_term = v @ b if rbm.visible == "bernoulli" else -0.5 * ((v - b) ** 2).sum(-1)
    return visible_term + F.softplus(F.linear(v, weight, c)).sum(-1) - log_z


def exact_log_likelihood(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """log p(v) per example, with log Z summed exactly."""
    return log_likelihood(rbm, v, exact_log_partition(rbm))


def base_rate_bias(rbm: RBM, data: torch.Tensor | None) -> torch.Tensor:
    """The base-rate RBM's visible biases: the data's log-odds per pixel (smoothed, so a pixel never on gets a
    finite bias), its mean for Gaussian units; zero without data."""
    size = rbm.visible_bias.numel()
    if data is None or len(data) == 0:
        return torch.zeros(size, dtype=torch.float64)
    data = data.double().reshape(len(data), size)
    if rbm.visible != "bernoulli":
        return data.mean(0)
    p = (data.sum(0) + 0.05) / (len(data) + 0.1)
    return torch.log(p) - torch.log1p(-p)


def beta_schedule(count: int) -> list[float]:
    """``count`` inverse temperatures from 0 to 1, spaced as Salakhutdinov & Murray's 500 + 4,000 + 10,000: evenly
    within [0, ½], [½, 0.9] and [0.9, 1] in those shares, so the steps are finest where the RBM's own terms weigh
    most."""
    if count < 4:
        return torch.linspace(0.0, 1.0, count, dtype=torch.float64).tolist()
    shares = (500, 4000, 10000)
    edges = (0.0, 0.5, 0.9, 1.0)
    counts = [max(1, round((count - 1) * s / sum(shares))) for s in shares[:2]]
    counts.append(max(1, count - 1 - sum(counts)))
    schedule = [0.0]
    for (low, high), n in zip(zip(edges, edges[1:], strict=False), counts, strict=True):
        schedule += [low + (high - low) * (i + 1) / n for i in range(n)]
    return schedule


@torch.no_grad()
def ais_log_partition(
    rbm: RBM,
    chains: int = 100,
    betas: int = 10_000,
    data: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> AisEstimate:
    """log Z by annealed importance sampling over ``betas`` inverse temperatures from 0 to 1 (``beta_schedule``),
    ``chains`` chains, from the base-rate RBM fitted to ``data`` (the visible units' values, N × visible; None:
    zero biases). ``generator``: the chains' random numbers (a fresh one seeded 0 when None). On one thread."""
    with _one_thread():
        return _ais(rbm, chains, betas, data, generator)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """AIS's products (chains × visible by hidden) are too small to split: with two threads on a 2-core machine it
    ran about 19× slower than with one (docs/PERFORMANCE.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _ais(
    rbm: RBM, chains: int, betas: int, data: torch.Tensor | None, generator: torch.Generator | None
) -> AisEstimate:
    if chains < 2 or betas < 2:
        raise LumenError(f"AIS needs at least 2 chains and 2 inverse temperatures, got {chains} and {betas}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    weight, b, c = _params(rbm)
    base = base_rate_bias(rbm, data)
    bernoulli = rbm.visible == "bernoulli"
    schedule = beta_schedule(betas)
    # log p*_β(v) = β·(vᵀ(b − b_A) − k) + (terms without β) + Σ_j softplus(β·a_j(v)), a(v) = c + Wv, with
    # k = 0 (Bernoulli) or ½(‖b‖² − ‖b_A‖²) (Gaussian): each step's weight needs a(v) once, as does its Gibbs step.
    toward = b - base
    offset = 0.0 if bernoulli else 0.5 * float(b @ b - base @ base)

    def sample_v(mean_input: torch.Tensor) -> torch.Tensor:
        if bernoulli:
            return torch.bernoulli(torch.sigmoid(mean_input), generator=generator)
        return mean_input + torch.randn(mean_input.shape, generator=generator, dtype=torch.float64)

    v = sample_v(base.expand(chains, -1))  # exact samples of the base-rate model (β = 0)
    log_w = torch.zeros(chains, dtype=torch.float64)
    for previous, beta in zip(schedule, schedule[1:], strict=False):
        a = F.linear(v, weight, c)
        log_w += (beta - previous) * (v @ toward - offset)
        log_w += (F.softplus(beta * a) - F.softplus(previous * a)).sum(-1)
        if beta < 1.0:  # one Gibbs step that leaves p_β unchanged: h ~ p_β(h | v), v ~ p_β(v | h)
            h = torch.bernoulli(torch.sigmoid(beta * a), generator=generator)
            v = sample_v((1 - beta) * base + beta * (b + h @ weight))
    # The base-rate RBM: its visible units independent, each hidden unit a free coin (a factor 2).
    log_z_base = c.numel() * math.log(2) + (
        float(F.softplus(base).sum()) if bernoulli else 0.5 * base.numel() * math.log(2 * math.pi)
    )
    top = float(log_w.max())
    ratios = torch.exp(log_w - top)
    mean, spread = float(ratios.mean()), 3 * float(ratios.std()) / math.sqrt(chains)
    shift = log_z_base + top
    low = shift + math.log(mean - spread) if mean > spread else -math.inf
    return AisEstimate(shift + math.log(mean), low, shift + math.log(mean + spread), chains, betas, log_w)
