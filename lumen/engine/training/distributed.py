"""Data-parallel training under PyTorch's own launcher (``python -m torch.distributed.run``).

``torch.distributed.run --nproc_per_node N main.py train ...`` starts N processes with ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; :func:`init_from_env` joins them into one process group
(gloo on the CPU, NCCL on CUDA) when ``WORLD_SIZE`` > 1, and does nothing otherwise. :meth:`Group.wrap` then
makes a ``Training`` data-parallel:

- every process draws the same batch order (the same seed) and takes every N-th sample of each global batch,
  from its rank on — ``DistributedSampler``'s split, applied per batch, so the global batch is ``batch_size``
  and each process computes ``batch_size / N`` of it (``batch_size`` must divide evenly);
- the model is wrapped in ``DistributedDataParallel``, which starts every process from rank 0's weights and
  averages the gradients in ``backward()``, so each step is the single-process step on the whole global batch
  (to float rounding), and every process keeps the same weights;
- validation runs whole on every process (the same weights give the same numbers), so early stopping and
  schedules agree without talking.

Only rank 0 prints and writes the run folder (``main.py`` asks :attr:`Group.is_main`): it alone checks ``--out``,
before the group starts (:func:`rank_from_env`), and :meth:`Group.agree` tells every process its refusal, so that
all of them stop before any work. A process that dies fails the others' next collective with a ``RuntimeError``;
``main.py`` then saves the run so far on rank 0. Objectives that update
weights without a forward pass through the model (rbm, dbn, dbm) train on one process only.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lumen.engine.errors import LumenError

if TYPE_CHECKING:
    from lumen.engine.training.config import TrainConfig
    from lumen.engine.training.loop import Training

FORWARD_OBJECTIVES = ("classification", "forecast", "seq2seq", "autoencoder")


def world_size() -> int:
    """How many processes the launcher started (1 without it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def rank_from_env() -> int:
    """This process's rank under the launcher; 0 without it (or with a RANK that ``init_from_env`` refuses)."""
    if world_size() <= 1:
        return 0
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


class _Replicated(DistributedDataParallel):
    """DDP that also answers for the model it wraps (``.layers``, ``.order``, ``.spec``), so an objective holding
    it can keep reading the model's parts."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


@dataclass
class Group:
    rank: int
    size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def config_for(self, config: TrainConfig) -> TrainConfig:
        """``config`` for this process: CUDA as ``cuda:LOCAL_RANK`` (one GPU each); checks that the global batch
        splits evenly."""
        if config.batch_size % self.size:
            raise LumenError(
                f"the batch size {config.batch_size} must split evenly over {self.size} processes "
                f"(each computes batch_size / {self.size} of every global batch)"
            )
        if self.backend == "nccl" and config.device in ("auto", "cuda"):
            return dataclasses.replace(config, device=f"cuda:{self.local_rank}")
        return config

    def wrap(self, training: Training) -> None:
        """Make ``training`` data-parallel: its objective runs the model through DDP, its batches are sharded."""
        if training.objective.name not in FORWARD_OBJECTIVES:
            raise LumenError(
                f"the {training.objective.name} objective updates weights outside the model's forward pass, so it "
                f"trains on one process; run it without torch.distributed.run"
            )
        device_ids = [training.device.index] if training.device.type == "cuda" else None
        model: nn.Module = training.model
        training.objective.model = _Replicated(model, device_ids=device_ids)  # type: ignore[assignment]
        training.shard = (self.rank, self.size)

    def agree(self, refusal: LumenError | None) -> str | None:
        """Rank 0's refusal of the run (its run folder, checked before the group started), as every process hears
        it once the group has started: the message, or None to go ahead."""
        message = [None if refusal is None else str(refusal)]
        dist.broadcast_object_list(message, src=0)
        return message[0]

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def init_from_env(device: str = "auto") -> Group | None:
    """Join the launcher's process group when ``WORLD_SIZE`` > 1 (NCCL when this run uses CUDA, else gloo);
    None for a single process."""
    size = world_size()
    if size <= 1:
        return None
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise LumenError(
            "WORLD_SIZE is set but RANK is not: start data-parallel runs with torch.distributed.run"
        ) from None
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if wants_cuda and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)  # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from the launcher
    return Group(rank, size, local_rank, backend)
