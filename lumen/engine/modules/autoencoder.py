"""Autoencoder parts: the code (bottleneck), the variational code, and input noise.

Forward passes compute only what the next node needs. What the training loss adds on top — the sparsity
and contractive penalties, the VAE's KL divergence — is stored on the modules (the weights as arguments, the
last code or μ/log σ² after each forward) with a method computing it, for training to add.
"""

from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"none": lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class _Transient(nn.Module):
    """A module that keeps tensors from its last forward; they are dropped when it is copied or pickled
    (a non-leaf tensor cannot be deep-copied, and they are not weights)."""

    _transient: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update({name: None for name in self._transient})
        return state


class Bottleneck(_Transient):
    """Linear map to the code, an activation, and the regularisers a sparse or contractive AE adds."""

    _transient = ("code",)

    def __init__(
        self,
        in_features: int,
        code_size: int,
        activation: str = "none",
        sparsity_weight: float = 0.0,
        contractive_weight: float = 0.0,
        sparsity_target: float = 0.0,
    ):
        super().__init__()
        self.linear = nn.Linear(in_features, code_size)
        self.activation = activation
        self.sparsity_weight, self.contractive_weight = sparsity_weight, contractive_weight
        self.sparsity_target = sparsity_target  # 0: L1 on the code; ρ in (0, 1): KL(ρ ‖ mean activation)
        self.code: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.code = ACTIVATIONS[self.activation](self.linear(x))
        return self.code

    def penalty(self, code: torch.Tensor | None = None) -> torch.Tensor:
        """sparsity_weight·‖h‖₁ (or, with a sparsity_target ρ, Σ_j KL(ρ ‖ ρ̂_j) over the batch's mean activations
        ρ̂) + contractive_weight·‖∂h/∂x‖²_F, averaged over the batch.

        For h = a(Wx + b) the Jacobian is diag(a′)·W, so ‖J‖²_F = Σ_j a′_j² Σ_i W_ji², with a′ read off
        the code itself (σ′ = h(1 − h), tanh′ = 1 − h², relu′ = [h > 0]).
        """
        h = self.code if code is None else code
        if h is None:
            raise RuntimeError("penalty() needs a code: run a forward pass first or pass one")
        slope = {"none": torch.ones_like(h), "relu": (h > 0).to(h.dtype), "sigmoid": h * (1 - h), "tanh": 1 - h * h}[
            self.activation
        ]
        contractive = (slope**2) @ (self.linear.weight**2).sum(dim=1)
        if self.sparsity_target:
            rho, rho_hat = self.sparsity_target, h.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
            return self.sparsity_weight * kl + (self.contractive_weight * contractive).mean()
        sparsity = h.abs().sum(dim=-1)
        return (self.sparsity_weight * sparsity + self.contractive_weight * contractive).mean()

    def extra_repr(self) -> str:
        return (
            f"activation={self.activation}, sparsity_weight={self.sparsity_weight}, "
            f"sparsity_target={self.sparsity_target}, "
            f"contractive_weight={self.contractive_weight}"
        )


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
        return (-0.5 * (1 + self.log_var - self.mu**2 - self.log_var.exp()).sum(dim=-1)).mean()


class Noise(nn.Module):
    """Corrupts its input while training (denoising autoencoders); the identity in eval mode.

    ``noise`` "gaussian" adds amount·N(0, 1); "masking" zeroes each value with probability ``amount`` and,
    unlike dropout, does not rescale the rest (Vincent et al. 2008).
    """

    def __init__(self, noise: str, amount: float):
        super().__init__()
        self.noise, self.amount = noise, amount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.amount == 0:
            return x
        if self.noise == "gaussian":
            return x + self.amount * torch.randn_like(x)
        return x * (torch.rand_like(x) >= self.amount).to(x.dtype)

    def extra_repr(self) -> str:
        return f"noise={self.noise}, amount={self.amount}"
