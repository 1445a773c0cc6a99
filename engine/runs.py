"""A run folder: the spec, the weights (safetensors, never pickle) and the metrics of one training run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import DataError
from engine.events import EpochMetrics, StepMetrics
from engine.spec import ModelSpec

SPEC_FILE, WEIGHTS_FILE = "model.json", "weights.safetensors"
EPOCHS_FILE, STEPS_FILE, RUN_FILE = "metrics.csv", "steps.csv", "run.json"


def save_run(run_dir: str | Path, spec: ModelSpec, model: nn.Module, history: list[StepMetrics | EpochMetrics],
             info: dict) -> Path:
    """Write the run folder; ``info`` (config, dataset, ...) goes to run.json with the final metrics."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir / SPEC_FILE)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(run_dir / WEIGHTS_FILE))
    epochs = [e for e in history if isinstance(e, EpochMetrics)]
    steps = [e for e in history if isinstance(e, StepMetrics)]
    _write_csv(run_dir / EPOCHS_FILE, ["epoch", "step", "train_loss", "train_accuracy", "val_loss", "val_accuracy"],
               [[e.epoch, e.step, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy] for e in epochs])
    _write_csv(run_dir / STEPS_FILE, ["step", "epoch", "loss", "accuracy"],
               [[s.step, s.epoch, s.loss, s.accuracy] for s in steps])
    final = {"val_loss": epochs[-1].val_loss, "val_accuracy": epochs[-1].val_accuracy} if epochs else {}
    (run_dir / RUN_FILE).write_text(json.dumps({**info, "steps": len(steps), "final": final}, indent=2) + "\n")
    return run_dir


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model``; refuses (and changes nothing) unless every tensor fits."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{Path(path).name} is not a readable safetensors file: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k} is {tuple(tensors[k].shape)}, the model needs {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + wrong
    if problems:
        raise DataError(f"the weights in {Path(path).name} do not fit this model: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True)
