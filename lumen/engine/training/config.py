"""``TrainConfig``: everything a run is asked to do, as one frozen record (saved in run.json as it is)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lumen.engine.errors import LumenError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine", "plateau")
RECONSTRUCTIONS = ("auto", "mse", "bce")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    # While training no probe runs more often than this; None: each probe's own interval (feature maps: 0.1 s).
    frame_interval_s: float | None = None
    optimizer: str = "adam"  # adam, adamw or sgd
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0  # adamw's decoupled decay, or sgd/adam's L2 term
    schedule: str = "none"  # none; step (×gamma every step_epochs); cosine (to 0 over the run); plateau
    step_epochs: int = 1
    gamma: float = 0.5  # step and plateau's factor
    max_steps: int = 0  # stop after this many batches (0: run every epoch), validating the part epoch
    patience: int = 0  # early stopping: stop after this many epochs without a better validation loss (0: never)
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    clip_grad_norm: float = 0.0  # clip the gradient's norm to this before each update (0: no clipping)
    # RNNs: backpropagate through at most this many steps — each sequence runs in chunks of this length, the
    # recurrent layers' state carried from chunk to chunk but detached (0: through the whole sequence)
    truncation: int = 0
    objective: str | None = None  # None: the preset's, or the one the dataset's task needs
    # Objective options
    reconstruction: str = "auto"  # autoencoders: mse, bce, or auto (bce for a VAE, mse otherwise)
    sparsity_target: float | None = None  # sparse AEs: None, an L1 penalty; a ρ in (0, 1), KL(ρ ‖ ρ̂) instead
    corruption: float = 0.0  # autoencoders without a noise node: mask this share of the inputs (denoising)
    beta: float = 1.0  # VAE: weight of the KL term
    cd_k: int = 1  # Boltzmann machines: Gibbs steps per update
    persistent: bool = False  # RBM/DBN: PCD (persistent chains) instead of CD; a DBM's chains are always persistent
    mean_field_steps: int = 10  # DBM: mean-field iterations of the positive phase
    teacher_forcing: bool = True  # sequence-to-sequence: feed the true previous token to the decoder

    def check(self) -> None:
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise LumenError(f"epochs must be a whole number ≥ 1, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LumenError(f"learning rate must be a positive number, got {self.lr}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise LumenError(f"batch size must be a whole number ≥ 1, got {self.batch_size}")
        if self.frame_interval_s is not None and not self.frame_interval_s >= 0:
            raise LumenError(f"the frame interval must be a number of seconds ≥ 0, got {self.frame_interval_s}")
        if self.optimizer not in OPTIMIZERS:
            raise LumenError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise LumenError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.reconstruction not in RECONSTRUCTIONS:
            raise LumenError(f"reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got {self.reconstruction!r}")
        for name in ("momentum", "weight_decay", "clip_grad_norm", "corruption", "beta"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise LumenError(f"{name} must be a number ≥ 0, got {value}")
        if self.corruption >= 1:
            raise LumenError(f"corruption is a share of the inputs, below 1, got {self.corruption}")
        if not (0 < self.gamma <= 1):
            raise LumenError(f"gamma must be in (0, 1], got {self.gamma}")
        if not (isinstance(self.truncation, int) and self.truncation >= 0):
            raise LumenError(f"truncation must be a whole number of steps ≥ 0, got {self.truncation}")
        for name in ("step_epochs", "cd_k", "mean_field_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise LumenError(f"{name} must be a whole number ≥ 1, got {value}")
        if not (isinstance(self.max_steps, int) and self.max_steps >= 0):
            raise LumenError(f"max_steps must be a whole number ≥ 0, got {self.max_steps}")
        if not (isinstance(self.patience, int) and self.patience >= 0):
            raise LumenError(f"patience must be a whole number ≥ 0, got {self.patience}")
        if self.sparsity_target is not None and not 0 < self.sparsity_target < 1:
            raise LumenError(f"the sparsity target ρ must be in (0, 1), got {self.sparsity_target}")
        device = self.device
        if not (device in ("auto", "cpu", "cuda", "mps") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise LumenError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
