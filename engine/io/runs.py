"""A run folder: the spec, the weights (safetensors) and the metrics of one run; weights read from elsewhere.

Weights are never unpickled freely: safetensors, or ``torch.load(weights_only=True)`` for state dicts.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine.errors import DataError
from engine.runtime.events import EpochMetrics, StepMetrics
from engine.graph.model import GraphModel, build_model
from engine.spec.model_spec import ModelSpec

SPEC_FILE, WEIGHTS_FILE = "model.json", "weights.safetensors"
EPOCHS_FILE, STEPS_FILE, RUN_FILE = "metrics.csv", "steps.csv", "run.json"


def save_run(run_dir: str | Path, spec: ModelSpec, model: nn.Module, history: list[StepMetrics | EpochMetrics],
             info: dict) -> Path:
    """Write the run folder; ``info`` (config, dataset, ...) goes to run.json with the final metrics."""
    run_dir = check_run_dir(run_dir)
    with writing(run_dir):
        return _write_run(run_dir, spec, model, history, info)


def check_run_dir(run_dir: str | Path) -> Path:
    """Refuse, before any work is done, a run folder that names an existing file."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"cannot write {run_dir}: it is a file; name a folder for the run")
    return run_dir


def _write_run(run_dir: Path, spec: ModelSpec, model: nn.Module, history: list[StepMetrics | EpochMetrics],
               info: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir / SPEC_FILE)
    save_weights(model, run_dir / WEIGHTS_FILE)
    epochs = [e for e in history if isinstance(e, EpochMetrics)]
    steps = [e for e in history if isinstance(e, StepMetrics)]
    _write_metrics_csv(run_dir / EPOCHS_FILE, ["epoch", "step"], [([e.epoch, e.step], e.flat()) for e in epochs])
    _write_metrics_csv(run_dir / STEPS_FILE, ["step", "epoch"], [([s.step, s.epoch], s.values) for s in steps])
    final = {f"val_{name}": value for name, value in epochs[-1].val.items()} if epochs else {}
    (run_dir / RUN_FILE).write_text(json.dumps({**info, "steps": len(steps), "final": final}, indent=2) + "\n")
    return run_dir


def _write_metrics_csv(path: Path, keys: list[str], rows: list[tuple[list, Mapping[str, float]]]) -> None:
    """One row per event: its keys, then one column per metric name, in the order names first appear; a
    name an event lacks is left empty."""
    names = list(dict.fromkeys(name for _, values in rows for name in values))
    _write_csv(path, keys + names, [key_values + [values.get(name, "") for name in names]
                                    for key_values, values in rows])


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def save_weights(model: nn.Module, path: str | Path) -> None:
    """The model's state dict as a safetensors file (the only weights format Lumen writes)."""
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a safetensors file into ``model``; refuses (and changes nothing) unless every tensor fits."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{Path(path).name} is not a readable safetensors file: {exc}") from None
    load_state_dict_checked(model, tensors, Path(path).name)


def load_state_dict_checked(model: nn.Module, tensors: dict, source_name: str) -> None:
    """``model.load_state_dict(tensors, strict=True)``, but a misfit is one DataError naming every bad key,
    raised before anything is copied."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k} is {tuple(tensors[k].shape)}, the model needs {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
               ([f"unexpected {', '.join(unexpected)}"] if unexpected else []) + wrong
    if problems:
        raise DataError(f"the weights in {source_name} do not fit this model: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True)


# ---- weights from elsewhere: state dicts in, run folders out --------------------------------------------------------------------

def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} mapping from a ``.safetensors`` file or a ``.pth``/``.pt`` state dict.

    Pickles are read with ``weights_only=True``: one that refers to code (a class, ``os.system``, ...) is
    refused before anything in it runs.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise DataError(f"{name} is not a readable safetensors file: {exc}") from None
    if suffix not in (".pth", ".pt"):
        raise DataError(f"{name}: expected a PyTorch state dict (.pth or .pt) or a .safetensors file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a note on the pickle protocol
            loaded = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        code = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if code:
            what = f"it refers to {code.group(1)}; only plain state dicts (names → tensors) are read"
        else:
            reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
            what = "it is not a plain PyTorch state dict" + (f" ({reason.group(1).strip()})" if reason else "")
        raise DataError(f"{name} was refused (nothing in it was run): {what}") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file fails anywhere inside torch.load
        raise DataError(f"{name} is not a readable PyTorch file ({type(exc).__name__}: {exc})") from None
    return _flat_tensors(loaded, name)


def _flat_tensors(loaded: Any, name: str) -> dict[str, torch.Tensor]:
    if not isinstance(loaded, Mapping):
        raise DataError(f"{name} holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)")
    nested = [k for k, v in loaded.items() if isinstance(v, Mapping)]
    if nested:
        raise DataError(f"{name} holds a checkpoint, not a state dict: {', '.join(map(repr, nested[:3]))} "
                        f"{'is a mapping' if len(nested) == 1 else 'are mappings'}; save model.state_dict() alone")
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise DataError(f"{name} is not a state dict: the key {key!r} is not a string")
        if not isinstance(value, torch.Tensor) or value.layout is not torch.strided or value.is_meta:
            raise DataError(f"{name} is not a state dict: {key} is a {type(value).__name__}, not a dense tensor")
    return dict(loaded)


def import_run(spec: ModelSpec, weights_path: str | Path, run_dir: str | Path) -> Path:
    """A run folder (as ``train`` writes) holding ``spec`` with the weights read from ``weights_path``;
    nothing is written unless every tensor fits the model."""
    weights_path = Path(weights_path)
    tensors = read_state_dict(weights_path)
    model = build_model(spec)
    load_state_dict_checked(model, tensors, weights_path.name)
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    return save_run(run_dir, spec, model, [], {"imported_from": str(weights_path.resolve()), "sha256": digest})


def open_run(run_dir: str | Path) -> GraphModel:
    """The model of a run folder, with its weights."""
    run_dir = Path(run_dir)
    spec_file, weights_file = run_dir / SPEC_FILE, run_dir / WEIGHTS_FILE
    if not spec_file.is_file() or not weights_file.is_file():
        raise DataError(f"{run_dir} is not a run folder (it needs {SPEC_FILE} and {WEIGHTS_FILE})")
    model = build_model(ModelSpec.load(spec_file))
    load_weights(model, weights_file)
    return model


@contextlib.contextmanager
def writing(path: Path):
    """A file system error (no permission, a file where a folder should be) as one clear DataError."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
