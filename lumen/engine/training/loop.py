"""Training as a plain loop that advances one batch per ``next()``; the caller decides when to pause.

What is minimised comes from the objective (``engine.training.objectives``); how, from the config: the optimiser
(SGD with momentum, Adam, AdamW), a schedule (step, cosine, plateau), gradient clipping, early stopping (which
puts back the best epoch's weights), the device and the seed. Every step's and epoch's values are named by the
objective (``loss`` and its terms).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from lumen.engine.data.datasets import Dataset
from lumen.engine.errors import LumenError
from lumen.engine.events import EpochMetrics, StepFailed, StepMetrics
from lumen.engine.graph.model import GraphModel
from lumen.engine.training.config import TrainConfig
from lumen.engine.training.objectives import Objective, choose_objective, make_objective

__all__ = ["NonFiniteLoss", "OutOfMemory", "StepFailure", "TrainConfig", "Training", "resolve_device"]


class StepFailure(LumenError):
    """A batch that could not be trained, with the weights left as the step before it had them."""

    def __init__(self, message: str, reason: str, advice: str):
        super().__init__(message)
        self.reason, self.advice = reason, advice


class NonFiniteLoss(StepFailure):
    def __init__(self, step: int, epoch: int, loss: float):
        super().__init__(
            f"the loss became {loss} at step {step} (epoch {epoch}); "
            f"training stopped with the last good weights; try a lower learning rate",
            f"the loss became {loss}",
            "lower the learning rate and resume (the batch is tried again), or stop",
        )
        self.loss = loss


class OutOfMemory(StepFailure):
    def __init__(self, step: int, epoch: int, batch_size: int, device: torch.device):
        where = "GPU memory" if device.type == "cuda" else "memory"
        super().__init__(
            f"out of {where} at step {step} (epoch {epoch}) with batch size {batch_size}; "
            f"training stopped with the last good weights; try a smaller batch size",
            f"out of {where} (batch size {batch_size})",
            "stop and train with a smaller batch size, or close other programs and resume (the batch is tried again)",
        )


def _is_out_of_memory(exc: BaseException) -> bool:
    # CUDA raises torch.OutOfMemoryError; the CPU allocator raises a plain RuntimeError that says so.
    return isinstance(exc, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else the CPU; a device asked for but missing is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LumenError(f"device {name!r} was asked for, but this machine has no CUDA device (use cpu or auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise LumenError("device 'mps' was asked for, but this machine has none (use cpu or auto)")
    return torch.device(name)


def make_optimizer(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """Stepped once per epoch (plateau: with the validation loss)."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_epochs, gamma=config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.gamma, patience=1)
    return None


class Training:
    """One run. Iterate ``steps()``; each item is one batch's or epoch's metrics, named by the objective
    (classification: ``loss``, mean cross-entropy, and ``accuracy``, the share of correct top-1 predictions)."""

    def __init__(self, model: GraphModel, data: Dataset, config: TrainConfig, objective: str | None = None):
        config.check()
        self.device = resolve_device(config.device)
        self.model, self.data, self.config = model, data, config
        self.generator = torch.Generator().manual_seed(config.seed)  # batch order, on the CPU
        sampler = torch.Generator(device=self.device).manual_seed(config.seed)  # the objective's noise
        name = choose_objective(objective or config.objective, data, model.spec)
        self.objective: Objective = make_objective(name, model, data, config, sampler)  # SpecError if unfit
        model.to(self.device)
        self.optimizer = make_optimizer(model.parameters(), config)
        self.schedule = make_schedule(self.optimizer, config)
        self.steps_per_epoch = math.ceil(len(data.train_x) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.step = 0
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None  # val loss, epoch, weights
        self.stopped_early_at: int | None = None
        # Where the run is, for checkpoints (engine.training.resume): the epoch in progress, the batch-order
        # generator's state when its order was drawn, and its running sums; ``resume_at`` (set by
        # ``restore_training``) makes ``steps()`` start from such a position instead of from the beginning.
        self.epoch = 1
        self.epoch_rng = self.generator.get_state()
        self.epoch_sums: dict[str, float] = {}
        self.epoch_seen = 0
        self.resume_at: tuple[int, torch.Tensor, dict[str, float], int] | None = None  # epoch, rng, sums, seen
        # A batch that fails (a non-finite loss, memory running out) raises a StepFailure (the CLI stops); with
        # this set, ``steps()`` yields ``StepFailed`` instead and tries the batch again at the next ``next()``
        # (the GUI pauses in between).
        self.pause_on_failure = False
        # Data-parallel (engine.training.distributed): this process's (rank, world size); it computes every
        # world-size-th sample of each global batch, from its rank on.
        self.shard: tuple[int, int] | None = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def set_lr(self, lr: float) -> None:
        """Change the learning rate now (a schedule goes on from the new value)."""
        if not (lr > 0 and math.isfinite(lr)):
            raise LumenError(f"learning rate must be a positive number, got {lr}")
        scale = lr / self.lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.schedule is not None and hasattr(self.schedule, "base_lrs"):
            self.schedule.base_lrs = [base * scale for base in self.schedule.base_lrs]

    def steps(self) -> Iterator[StepMetrics | EpochMetrics | StepFailed]:
        try:
            yield from self._steps()
        finally:
            self.objective.close()

    def _steps(self) -> Iterator[StepMetrics | EpochMetrics | StepFailed]:
        x_all, y_all = self.data.train_x.to(self.device), self.data.train_y.to(self.device)
        first, resume, self.resume_at = 1, self.resume_at, None
        if resume is not None:
            first = resume[0]
            self.generator.set_state(resume[1])
        for epoch in range(first, self.config.epochs + 1):
            self.epoch, self.epoch_rng = epoch, self.generator.get_state()
            order = torch.randperm(len(x_all), generator=self.generator).to(self.device)
            sums: dict[str, float] = dict(resume[2]) if resume is not None else {}
            seen = resume[3] if resume is not None else 0
            done = self.step - (epoch - 1) * self.steps_per_epoch if resume is not None else 0  # batches done
            resume = None
            self.epoch_sums, self.epoch_seen = sums, seen
            for start in range(done * self.config.batch_size, len(order), self.config.batch_size):
                if self.step >= self.total_steps:
                    break  # max_steps reached: this part epoch is validated and the run ends
                began = time.perf_counter()
                batch = order[start : start + self.config.batch_size]
                if self.shard is not None:
                    batch = batch[self.shard[0] :: self.shard[1]]
                while True:
                    try:
                        values = self._train_batch(x_all[batch], y_all[batch], epoch)
                        break
                    except StepFailure as exc:
                        if not self.pause_on_failure:
                            raise
                        # The GUI pauses here; when it resumes (a lower learning rate, perhaps) the same batch
                        # is tried again from the same weights.
                        yield StepFailed(self.step + 1, epoch, exc.reason, exc.advice)
                for name, value in values.items():
                    sums[name] = sums.get(name, 0.0) + value * len(batch)
                seen += len(batch)
                self.epoch_seen = seen
                self.step += 1
                if self.schedule is not None:
                    values = {**values, "lr": self.lr}
                yield StepMetrics(
                    self.step,
                    self.total_steps,
                    epoch,
                    values,
                    len(batch) / max(time.perf_counter() - began, 1e-9),
                )
            val = self.validate()
            yield EpochMetrics(epoch, self.step, {name: total / max(seen, 1) for name, total in sums.items()}, val)
            self._after_epoch(epoch, val.get("loss", math.nan))
            if self.stopped_early_at is not None or self.step >= self.total_steps:
                return

    def _after_epoch(self, epoch: int, val_loss: float) -> None:
        if isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.schedule.step(val_loss)
        elif self.schedule is not None:
            self.schedule.step()
        if self.config.patience <= 0 or not math.isfinite(val_loss):
            return
        if self.best is None or val_loss < self.best[0]:
            self.best = (val_loss, epoch, copy.deepcopy(self.model.state_dict()))
        elif epoch - self.best[1] >= self.config.patience:
            self.model.load_state_dict(self.best[2])  # early stopping keeps the best epoch's weights
            self.stopped_early_at = epoch

    def validate(self, batch_size: int = 500) -> dict[str, float]:
        """The objective's named values over the validation set, in eval mode (the model's mode is restored)."""
        x_all, y_all = self.data.val_x, self.data.val_y
        was_training = self.model.training
        self.model.eval()
        try:
            sums: dict[str, float] = {}
            for start in range(0, len(x_all), batch_size):
                x = x_all[start : start + batch_size].to(self.device)
                y = y_all[start : start + batch_size].to(self.device)
                for name, value in self.objective.evaluate(x, y).items():
                    sums[name] = sums.get(name, 0.0) + value * len(x)
            return {name: total / max(len(x_all), 1) for name, total in sums.items()}
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            # No batch to try again here: the run ends, with the weights it has, and says why.
            raise LumenError(
                f"out of memory while validating at step {self.step} (batches of {batch_size} samples); "
                f"the weights are those of step {self.step}; try a smaller model or close other programs"
            ) from None
        finally:
            self.model.train(was_training)

    def _train_batch(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> dict[str, float]:
        self.model.train()
        self.objective.progress = self.step / max(self.total_steps, 1)
        try:
            loss, values = self.objective.loss(x, y)
            if not torch.isfinite(loss):
                # Checked before the update, so the weights stay those of the last good step.
                raise NonFiniteLoss(self.step + 1, epoch, loss.item())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            # Memory ran out in the forward or backward pass, before the update: drop what this batch held
            # (its gradients; the graph goes with the frame) so a retry or the views have room again.
            self.optimizer.zero_grad(set_to_none=True)
            raise OutOfMemory(self.step + 1, epoch, len(x), self.device) from None
        if self.config.clip_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
        self.optimizer.step()
        return values
