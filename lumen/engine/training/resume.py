"""A training run's whole state as tensors plus JSON, and back: what a checkpoint holds, so a run resumes exactly.

``training_state`` is taken between batches (after a step's metrics): the weights, the optimiser's and the
schedule's state, the position (step, epoch, the batch-order generator's state when the epoch's order was
drawn, the epoch's running sums), the objective's noise generator and persistent chains, torch's global RNG
(dropout) and early stopping's best epoch. ``restore_training`` puts it into a fresh ``Training`` built with
the same model spec, data and config; its ``steps()`` then continues with the next batch, and the run goes on
as if it had never stopped (to float tolerance: the same batches, the same noise, the same updates).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from lumen.engine.errors import DataError
from lumen.engine.training.loop import Training

STATE_VERSION = 1


def _tensor(value: torch.Tensor) -> torch.Tensor:
    return value.detach().to("cpu").clone().contiguous()


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts as they are; tuples as lists; non-finite floats kept (JSON's Infinity)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"cannot keep {type(value).__name__} in a checkpoint")


def training_state(training: Training) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors by name, JSON-able metadata) of the run now."""
    tensors: dict[str, torch.Tensor] = {f"model/{k}": _tensor(v) for k, v in training.model.state_dict().items()}
    optimizer = training.optimizer.state_dict()
    scalars: dict[str, Any] = {}
    for index, state in optimizer["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = _tensor(value)
            else:
                scalars[f"{index}/{key}"] = _jsonable(value)
    tensors["rng/epoch"] = _tensor(training.epoch_rng)
    tensors["rng/objective"] = _tensor(training.objective.generator.get_state())
    tensors["rng/torch"] = _tensor(torch.get_rng_state())
    for node, chain in getattr(training.objective, "chains", {}).items():
        tensors[f"chain/{node}"] = _tensor(chain)
    best = None
    if training.best is not None:
        best = [training.best[0], training.best[1]]
        tensors.update({f"best/{k}": _tensor(v) for k, v in training.best[2].items()})
    meta = {
        "version": STATE_VERSION,
        "step": training.step,
        "epoch": training.epoch,
        "epoch_sums": training.epoch_sums,
        "epoch_seen": training.epoch_seen,
        "total_steps": training.total_steps,
        "param_groups": _jsonable(optimizer["param_groups"]),
        "optim_scalars": scalars,
        "schedule": _jsonable(training.schedule.state_dict()) if training.schedule is not None else None,
        "best": best,
        "stopped_early_at": training.stopped_early_at,
    }
    return tensors, meta


def restore_training(training: Training, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Put a checkpoint into ``training`` (fresh, built with the same spec, data and config)."""
    if meta.get("version") != STATE_VERSION:
        raise DataError(f"the checkpoint's format ({meta.get('version')}) is not one this Lumen reads")
    device = training.device

    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        training.model.load_state_dict({k: v.to(device) for k, v in group("model/").items()})
    except RuntimeError as exc:
        raise DataError(f"the checkpoint does not fit the model: {str(exc).splitlines()[0]}") from None
    state: dict[int, dict[str, Any]] = {}
    for key, value in group("optim/").items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value.to(device)
    for key, value in meta["optim_scalars"].items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    groups = meta["param_groups"]
    for saved in groups:
        if "betas" in saved:
            saved["betas"] = tuple(saved["betas"])
    training.optimizer.load_state_dict({"state": state, "param_groups": groups})
    if training.schedule is not None and meta["schedule"] is not None:
        training.schedule.load_state_dict(meta["schedule"])
    training.objective.generator.set_state(tensors["rng/objective"])
    torch.set_rng_state(tensors["rng/torch"])
    chains = group("chain/")
    if chains and hasattr(training.objective, "chains"):
        training.objective.chains = {k: v.to(device) for k, v in chains.items()}
    if meta["best"] is not None:
        loss, epoch = meta["best"]
        training.best = (float(loss) if loss is not None else math.nan, int(epoch), group("best/"))
    training.stopped_early_at = meta["stopped_early_at"]
    training.step = int(meta["step"])
    training.resume_at = (int(meta["epoch"]), tensors["rng/epoch"], dict(meta["epoch_sums"]), int(meta["epoch_seen"]))
