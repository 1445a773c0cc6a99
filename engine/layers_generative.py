"""Autoencoder parts (bottleneck, variational bottleneck, noise) and Boltzmann parts (rbm).

Forward passes compute only what the next node needs. What the training loss adds on top — the sparsity
and contractive penalties, the VAE's KL divergence — is stored on the modules (the weights in the params,
the last code or μ/log σ² after each forward) with a method computing it, for training to add.

Boltzmann machines: an ``rbm`` node maps visible units to p(h = 1 | v); a DBN or DBM is a chain of rbm
nodes, each reading the previous one's hidden probabilities. The chain's ``stack`` parameter says how it
is trained as a whole ("dbn": greedy layer by layer, directed top-down; "dbm": jointly, undirected);
``boltzmann_stack`` checks a spec's chain is consistent.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import SpecError
from engine.layers import InputShapeError, LayerType, Shape, ShapeError, fmt, register
from engine.spec.model_spec import ModelSpec

_ACTIVATIONS = {"none": lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


# ---- helpers (LayerType.resolve has checked each parameter's kind before the shape rules run) -----

def _nonnegative(p: dict, key: str, below: float | None = None) -> None:
    if p[key] < 0 or (below is not None and p[key] >= below):
        raise ShapeError(f"{key} must be ≥ 0{f' and below {below:g}' if below is not None else ''}, got {p[key]!r}")


def _vector(shape: Shape, layer: str, what: str = "a flat vector") -> Shape:
    if len(shape) != 1:
        raise InputShapeError(f"{layer} expects {what}, got {fmt(shape)}; put a flatten node before it")
    return shape


class _Transient(nn.Module):
    """A module that keeps tensors from its last forward; they are dropped when it is copied or pickled
    (a non-leaf tensor cannot be deep-copied, and they are not weights)."""

    _transient: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update({name: None for name in self._transient})
        return state


# ---- autoencoder parts ----------------------------------------------------------------------------

class Bottleneck(_Transient):
    """Linear map to the code, an activation, and the regularisers a sparse or contractive AE adds."""

    _transient = ("code",)

    def __init__(self, in_features: int, p: dict):
        super().__init__()
        self.linear = nn.Linear(in_features, p["code_size"])
        self.activation = p["activation"]
        self.sparsity_weight, self.contractive_weight = p["sparsity_weight"], p["contractive_weight"]
        self.code: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.code = _ACTIVATIONS[self.activation](self.linear(x))
        return self.code

    def penalty(self, code: torch.Tensor | None = None) -> torch.Tensor:
        """sparsity_weight·‖h‖₁ + contractive_weight·‖∂h/∂x‖²_F, averaged over the batch.

        For h = a(Wx + b) the Jacobian is diag(a′)·W, so ‖J‖²_F = Σ_j a′_j² Σ_i W_ji², with a′ read off
        the code itself (σ′ = h(1 − h), tanh′ = 1 − h², relu′ = [h > 0]).
        """
        h = self.code if code is None else code
        if h is None:
            raise RuntimeError("penalty() needs a code: run a forward pass first or pass one")
        slope = {"none": torch.ones_like(h), "relu": (h > 0).to(h.dtype), "sigmoid": h * (1 - h),
                 "tanh": 1 - h * h}[self.activation]
        sparsity = h.abs().sum(dim=-1)
        contractive = (slope ** 2) @ (self.linear.weight ** 2).sum(dim=1)
        return (self.sparsity_weight * sparsity + self.contractive_weight * contractive).mean()

    def extra_repr(self) -> str:
        return (f"activation={self.activation}, sparsity_weight={self.sparsity_weight}, "
                f"contractive_weight={self.contractive_weight}")


class VariationalBottleneck(_Transient):
    """μ and log σ² heads; z = μ + exp(½ log σ²)·ε with ε ~ N(0, I) while training, z = μ in eval mode."""

    _transient = ("mu", "log_var")

    def __init__(self, in_features: int, latent_size: int):
        super().__init__()
        self.mu_head = nn.Linear(in_features, latent_size)
        self.log_var_head = nn.Linear(in_features, latent_size)
        self.mu: torch.Tensor | None = None
        self.log_var: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mu, self.log_var = self.mu_head(x), self.log_var_head(x)
        if not self.training:
            return self.mu
        return self.mu + torch.exp(0.5 * self.log_var) * torch.randn_like(self.mu)

    def kl(self) -> torch.Tensor:
        """KL(N(μ, σ²) ‖ N(0, I)) of the last forward, summed over the latent units, averaged over the batch."""
        if self.mu is None or self.log_var is None:
            raise RuntimeError("kl() needs a forward pass first")
        return (-0.5 * (1 + self.log_var - self.mu ** 2 - self.log_var.exp()).sum(dim=-1)).mean()


class Noise(nn.Module):
    """Corrupts its input while training (denoising autoencoders); the identity in eval mode.

    "gaussian" adds amount·N(0, 1); "masking" zeroes each value with probability ``amount`` and, unlike
    dropout, does not rescale the rest (Vincent et al. 2008).
    """

    def __init__(self, kind: str, amount: float):
        super().__init__()
        self.kind, self.amount = kind, amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.amount == 0:
            return x
        if self.kind == "gaussian":
            return x + self.amount * torch.randn_like(x)
        return x * (torch.rand_like(x) >= self.amount).to(x.dtype)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, amount={self.amount}"


def _bottleneck_infer(p: dict, ins: list[Shape]) -> Shape:
    _nonnegative(p, "sparsity_weight")
    _nonnegative(p, "contractive_weight")
    _vector(ins[0], "bottleneck")
    return (p["code_size"],)


def _variational_infer(p: dict, ins: list[Shape]) -> Shape:
    _vector(ins[0], "variational_bottleneck")
    return (p["latent_size"],)


def _noise_infer(p: dict, ins: list[Shape]) -> Shape:
    _nonnegative(p, "amount", 1 if p["kind"] == "masking" else None)
    return ins[0]


# ---- Boltzmann parts ------------------------------------------------------------------------------

class RBM(nn.Module):
    """A restricted Boltzmann machine with Bernoulli hidden units; forward gives p(h = 1 | v).

    Energy: E(v, h) = −vᵀb_v − hᵀb_h − hᵀWv for Bernoulli visible units, and
    ½‖v − b_v‖² − hᵀb_h − hᵀWv for Gaussian visible units of unit variance (standardise the data).
    ``weight`` is hidden×visible, as nn.Linear's is, so forward is linear(v, W, b_h) then a sigmoid.
    """

    def __init__(self, visible_size: int, hidden_size: int, visible: str, stack: str):
        super().__init__()
        self.visible, self.stack = visible, stack
        self.weight = nn.Parameter(torch.empty(hidden_size, visible_size))
        self.visible_bias = nn.Parameter(torch.zeros(visible_size))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden_size))
        nn.init.normal_(self.weight, std=0.01)  # small random weights, zero biases (Hinton's practical guide)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.hidden_probs(v)

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h]: p(v = 1 | h) for Bernoulli visible units, the Gaussian's mean otherwise."""
        activation = h @ self.weight + self.visible_bias
        return torch.sigmoid(activation) if self.visible == "bernoulli" else activation

    def sample_h(self, v: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(p(h = 1 | v), a binary sample of h)."""
        probs = self.hidden_probs(v)
        return probs, torch.bernoulli(probs, generator=generator)

    def sample_v(self, h: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[v | h], a sample of v: binary, or the mean plus unit Gaussian noise)."""
        mean = self.visible_mean(h)
        if self.visible == "bernoulli":
            return mean, torch.bernoulli(mean, generator=generator)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean, mean + noise

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = −log Σ_h exp(−E(v, h)), per sample; p(v) ∝ exp(−F(v))."""
        visible_term = (-(v @ self.visible_bias) if self.visible == "bernoulli"
                        else 0.5 * ((v - self.visible_bias) ** 2).sum(dim=-1))
        return visible_term - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(dim=-1)

    def extra_repr(self) -> str:
        return f"visible={self.visible}, hidden={self.hidden_bias.shape[0]}, stack={self.stack}"


def _rbm_infer(p: dict, ins: list[Shape]) -> Shape:
    _vector(ins[0], "rbm", "a flat vector of visible units")
    return (p["hidden_size"],)


def boltzmann_stack(spec: ModelSpec) -> tuple[str, list[str]]:
    """The kind ("dbn" or "dbm") and rbm node ids, bottom to top, of a spec's Boltzmann chain.

    Checks what a single node cannot: the rbm nodes form one chain (each reads the one below), agree on
    ``stack``, and only the bottom one has Gaussian visible units (the others see hidden probabilities).
    """
    ids = [n for n in spec.topological_order() if spec.node(n).type == "rbm"]
    if not ids:
        raise SpecError("the model has no rbm node")
    params = {n: {"visible": "bernoulli", "stack": "dbn", **spec.node(n).params} for n in ids}
    kind = params[ids[0]]["stack"]
    for below, node in zip(ids, ids[1:]):
        if spec.inputs_of(node) != [below]:
            raise SpecError(f"rbm nodes must form one chain; this one does not read from {below}", node)
        if params[node]["stack"] != kind:
            raise SpecError(f"stack is {params[node]['stack']!r} but the chain below is {kind!r}", node)
        if params[node]["visible"] != "bernoulli":
            raise SpecError(f"only the bottom rbm may have {params[node]['visible']} visible units; "
                            f"this one's visible units are {below}'s hidden probabilities", node)
    return kind, ids


GENERATIVE_LAYERS = [
    LayerType("bottleneck", "An autoencoder's code: linear to code_size, an activation, optional "
              "sparsity (L1) and contractive penalties for the loss",
              {"code_size": None, "activation": "none", "sparsity_weight": 0.0, "contractive_weight": 0.0},
              _bottleneck_infer, lambda p, ins: Bottleneck(ins[0][0], p),
              kinds={"code_size": "posint", "activation": "choice:" + "|".join(_ACTIVATIONS),
                     "sparsity_weight": "float", "contractive_weight": "float"},
              docs={"code_size": "units in the code",
                    "activation": "none, relu, sigmoid or tanh, applied to the code",
                    "sparsity_weight": "weight of the L1 norm of the code in the loss (sparse autoencoder)",
                    "contractive_weight": "weight of ‖∂code/∂input‖² in the loss (contractive autoencoder)"},
              macs=lambda p, ins, out: ins[0][0] * out[0]),
    LayerType("variational_bottleneck", "A VAE's latent code: μ and log σ² heads, z = μ + σ·ε while "
              "training, z = μ in eval mode", {"latent_size": None},
              _variational_infer, lambda p, ins: VariationalBottleneck(ins[0][0], p["latent_size"]),
              kinds={"latent_size": "posint"},
              docs={"latent_size": "dimensions of z (and of μ and log σ²)"},
              macs=lambda p, ins, out: 2 * ins[0][0] * out[0]),
    LayerType("noise", "Corrupts the input while training (denoising autoencoders): Gaussian or masking",
              {"kind": "gaussian", "amount": 0.1}, _noise_infer, lambda p, ins: Noise(p["kind"], p["amount"]),
              kinds={"kind": "choice:gaussian|masking", "amount": "float"},
              docs={"kind": "gaussian: add amount·N(0,1); masking: zero each value with probability amount",
                    "amount": "noise standard deviation, or the fraction of values masked"}),
    LayerType("rbm", "Restricted Boltzmann machine: Bernoulli or Gaussian visible units, Bernoulli hidden; "
              "outputs p(h=1|v). Chain rbm nodes for a DBN or DBM (param stack)",
              {"hidden_size": None, "visible": "bernoulli", "stack": "dbn"},
              _rbm_infer, lambda p, ins: RBM(ins[0][0], p["hidden_size"], p["visible"], p["stack"]),
              kinds={"hidden_size": "posint", "visible": "choice:bernoulli|gaussian", "stack": "choice:dbn|dbm"},
              docs={"hidden_size": "hidden (Bernoulli) units",
                    "visible": "bernoulli (values in [0, 1]) or gaussian (standardised real values)",
                    "stack": "for a chain of rbm nodes: dbn (greedy, directed) or dbm (joint, undirected)"},
              macs=lambda p, ins, out: ins[0][0] * out[0]),
]

register(*GENERATIVE_LAYERS)
