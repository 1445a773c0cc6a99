"""Modules that read two or more inputs."""

import torch
from torch import nn


class Add(nn.Module):
    """Element-wise sum of its inputs (residual connections)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return sum(xs[1:], xs[0])


class Concat(nn.Module):
    """Concatenation along one sample dimension (``dim`` counts without the batch: 0 = channels)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim + 1)
