"""Training as a plain loop that advances one batch per ``next()``; the caller decides when to pause."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from engine.data.datasets import Dataset
from engine.errors import LumenError
from engine.graph.model import GraphModel
from engine.runtime.events import EpochMetrics, StepMetrics


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    # While training no probe runs more often than this; None: each probe's own interval (feature maps: 0.1 s).
    frame_interval_s: float | None = None

    def check(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise LumenError(f"epochs must be a whole number ≥ 1, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LumenError(f"learning rate must be a positive number, got {self.lr}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise LumenError(f"batch size must be a whole number ≥ 1, got {self.batch_size}")
        if self.frame_interval_s is not None and not self.frame_interval_s >= 0:
            raise LumenError(f"the frame interval must be a number of seconds ≥ 0, got {self.frame_interval_s}")


class NonFiniteLoss(LumenError):
    pass


class Training:
    """One run of Adam on cross-entropy. Iterate ``steps()``; each item is one batch's or epoch's metrics,
    named ``loss`` (mean cross-entropy) and ``accuracy`` (share of correct top-1 predictions)."""

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig):
        config.check()
        if tuple(data.input_shape) != tuple(model.spec.input_shape):
            raise LumenError(
                f"the model takes {tuple(model.spec.input_shape)} inputs but {data.name} "
                f"has {tuple(data.input_shape)} samples"
            )
        self.model, self.data, self.config = model, data, config
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.loss_fn = nn.CrossEntropyLoss()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_per_epoch = math.ceil(len(data.train_x) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = 0

    def steps(self) -> Iterator[StepMetrics | EpochMetrics]:
        x_all, y_all = self.data.train_x, self.data.train_y
        for epoch in range(1, self.config.epochs + 1):
            order = torch.randperm(len(x_all), generator=self.generator)
            losses, correct = [], 0
            for start in range(0, len(order), self.config.batch_size):
                began = time.perf_counter()
                batch = order[start : start + self.config.batch_size]
                loss, hits = self._train_batch(x_all[batch], y_all[batch], epoch)
                losses.append(loss * len(batch))
                correct += hits
                self.step += 1
                yield StepMetrics(
                    self.step,
                    self.total_steps,
                    epoch,
                    {"loss": loss, "accuracy": hits / len(batch)},
                    len(batch) / max(time.perf_counter() - began, 1e-9),
                )
            val_loss, val_acc = evaluate(self.model, self.data.val_x, self.data.val_y)
            yield EpochMetrics(
                epoch,
                self.step,
                {"loss": sum(losses) / len(x_all), "accuracy": correct / len(x_all)},
                {"loss": val_loss, "accuracy": val_acc},
            )

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> tuple[float, int]:
        self.model.train()
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        if not torch.isfinite(loss):
            # Checked before the update, so the weights stay those of the last good step.
            raise NonFiniteLoss(
                f"the loss became {loss.item()} at step {self.step + 1} (epoch {epoch}); "
                f"training stopped with the last good weights; try a lower learning rate"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item(), int((logits.argmax(1) == y).sum())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over (x, y), in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        loss, correct = 0.0, 0
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(1) == target).sum())
        return loss / len(x), correct / len(x)
    finally:
        model.train(was_training)
