"""Pooling modules torch does not have: min pooling and global (whole-map) pooling."""

import torch
import torch.nn.functional as F
from torch import nn


class MinPool2d(nn.Module):
    """Minimum over each window: −maxpool(−x) (torch has no min-pooling op); padding never wins the min."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
    ):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -F.max_pool2d(-x, self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode)


class GlobalPool(nn.Module):
    """Average or maximum over every spatial position: C×H×W (or C×L) → C."""

    def __init__(self, reduce: str):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        return flat.mean(-1) if self.reduce == "mean" else flat.amax(-1)
