"""A run folder: the spec, the weights (safetensors) and the metrics of one run; weights read from elsewhere.

Weights are never unpickled freely: safetensors, or ``torch.load(weights_only=True)`` for state dicts.

A run folder is complete or absent: it is written into a hidden sibling folder (``.NAME.partial-…``), each file
flushed to disk, and renamed into place at the end; a full disk or a crash leaves the old folder (or none) and
at worst a hidden partial folder, never a run that looks whole. ``open_run`` refuses a folder without a readable
run.json (which ``_write_run`` writes last), so a run cut short by older versions or by hand is refused too.
An existing run folder is replaced only when asked (``force``); a folder holding anything but a run, never.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import hashlib
import json
import os
import pickle
import re
import secrets
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lumen.engine.errors import DataError, SpecError
from lumen.engine.events import EpochMetrics, StepMetrics
from lumen.engine.graph.budget import memory_limit
from lumen.engine.graph.model import GraphModel, build_model
from lumen.engine.spec.model_spec import VERSION, ModelSpec
from lumen.engine.untrusted import (
    MAX_CSV_BYTES,
    atomic_write,
    fsync_dir,
    fsync_file,
    human_size,
    printable,
    read_json,
    read_text,
)

MODEL_FILE, WEIGHTS_FILE = "model.json", "weights.safetensors"
EPOCHS_FILE, STEPS_FILE, RUN_FILE = "metrics.csv", "steps.csv", "run.json"
# run.json's "format": raised when a run folder changes so that an older Lumen would misread it (a run without it is
# format 1); a run of a newer format is refused with one line, not half read.
RUN_FORMAT = 1


class RunExists(DataError):
    """The run folder already holds a run; it is replaced only when the caller says so (``force``)."""


RUN_MARKERS = (MODEL_FILE, WEIGHTS_FILE, RUN_FILE)


def save_run(
    run_dir: str | Path,
    spec: ModelSpec,
    model: nn.Module | Mapping[str, torch.Tensor],
    history: list[StepMetrics | EpochMetrics],
    info: dict,
    force: bool = False,
) -> Path:
    """Write the run folder, all or nothing; ``info`` (config, dataset, ...) goes to run.json with the final
    metrics. ``model``: the module, or its state dict (a watched script's weights, ``lumen.watch``). An existing run
    there is replaced only with ``force``."""
    run_dir = check_run_dir(run_dir, force)
    with writing(run_dir):
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        partial = _hidden_sibling(run_dir, "partial")
        partial.mkdir()  # as any new folder (the umask decides its permissions), not mkdtemp's owner-only
        try:
            _write_run(partial, spec, model, history, info)
            for file in partial.iterdir():
                fsync_file(file)
            fsync_dir(partial)
            _move_into_place(partial, run_dir)
        except SafetensorError as exc:  # the weights writer's own error type, e.g. for a full disk
            raise DataError(f"cannot write {printable(str(run_dir))}: {_first_line(exc)}") from None
        except DataError as exc:  # name the run folder, not the hidden one it was being written in
            raise DataError(str(exc).replace(printable(str(partial)), printable(str(run_dir)))) from None
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return run_dir


def _move_into_place(partial: Path, run_dir: Path) -> None:
    """Rename the finished folder to ``run_dir``; an old run there (checked by check_run_dir) goes only after.
    Where the system can swap two folders in one step (Linux), ``run_dir`` is never missing, not even for a
    moment: the old run ends up in ``partial``, which the caller removes."""
    old = None
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if _exchange(partial, run_dir):
            fsync_dir(run_dir.parent)
            return
        old = _hidden_sibling(run_dir, "old")
        os.replace(run_dir, old)
    elif run_dir.is_dir():
        run_dir.rmdir()  # an empty folder: the user made it for the run
    os.replace(partial, run_dir)
    fsync_dir(run_dir.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux's ``renameat2(RENAME_EXCHANGE)``); False where that is not possible (another
    system, an old kernel, a file system without it), and the caller renames in two steps."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library without it
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _hidden_sibling(run_dir: Path, kind: str) -> Path:
    return run_dir.parent / f".{run_dir.name}.{kind}-{secrets.token_hex(4)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def check_run_dir(run_dir: str | Path, force: bool = False) -> Path:
    """Refuse, before any work is done, a run folder that cannot be written: one that names a file or lies below
    one, one in a folder without write permission or on a read-only disk, one that holds other files, and one
    that holds a run already, unless ``force``."""
    run_dir = Path(run_dir)
    name = printable(str(run_dir))
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"cannot write {name}: it is a file; name a folder for the run")
    if run_dir.is_dir():
        try:
            entries = {entry.name for entry in run_dir.iterdir()}
        except OSError as exc:
            raise DataError(f"cannot write {name}: {exc.strerror or exc}") from None
        if entries and not entries & set(RUN_MARKERS):
            raise DataError(
                f"cannot write {name}: the folder holds other files; name a new or empty folder for the run"
            )
        if entries and not force:
            raise RunExists(f"{name} already holds a run; choose another folder, or replace it (--force)")
    existing = run_dir.parent
    while not existing.exists():
        if existing.is_symlink() or existing == existing.parent:  # a dangling link, or nothing above at all
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise DataError(f"cannot write {name}: {printable(str(existing))} is a file, not a folder")
    try:  # the real test (permissions say little to root, nothing about a read-only disk)
        os.rmdir(tempfile.mkdtemp(prefix=".lumen-check-", dir=existing))
    except OSError as exc:
        raise DataError(f"cannot write {name}: {exc.strerror or exc}") from None
    return run_dir


def _write_run(
    run_dir: Path,
    spec: ModelSpec,
    model: nn.Module | Mapping[str, torch.Tensor],
    history: list[StepMetrics | EpochMetrics],
    info: dict,
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir / MODEL_FILE)
    save_weights(model, run_dir / WEIGHTS_FILE)
    epochs = [e for e in history if isinstance(e, EpochMetrics)]
    steps = [e for e in history if isinstance(e, StepMetrics)]
    _write_metrics_csv(run_dir / EPOCHS_FILE, ["epoch", "step"], [([e.epoch, e.step], e.flat()) for e in epochs])
    _write_metrics_csv(run_dir / STEPS_FILE, ["step", "epoch"], [([s.step, s.epoch], s.values) for s in steps])
    final = {f"val_{name}": value for name, value in epochs[-1].val.items()} if epochs else {}
    record = {**info, "format": RUN_FORMAT, "steps": len(steps), "final": final}
    (run_dir / RUN_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return run_dir


def _write_metrics_csv(path: Path, keys: list[str], rows: list[tuple[list, Mapping[str, float]]]) -> None:
    """One row per event: its keys, then one column per metric name, in the order names first appear; a
    name an event lacks is left empty."""
    names = list(dict.fromkeys(name for _, values in rows for name in values))
    _write_csv(
        path, keys + names, [key_values + [values.get(name, "") for name in names] for key_values, values in rows]
    )


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def save_weights(model: nn.Module | Mapping[str, torch.Tensor], path: str | Path) -> None:
    """The model's state dict (or a state dict) as a safetensors file (the only weights format Lumen writes),
    written atomically."""
    state = model if isinstance(model, Mapping) else model.state_dict()
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    with atomic_write(path) as temp:
        try:
            save_file(tensors, str(temp))
        except SafetensorError as exc:
            raise DataError(f"cannot write {printable(str(path))}: {_first_line(exc)}") from None


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
    wrong = [
        f"{k} is {tuple(tensors[k].shape)}, the model needs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    problems = (
        ([f"missing {', '.join(missing)}"] if missing else [])
        + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        + wrong
    )
    if problems:
        raise DataError(f"the weights in {source_name} do not fit this model: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True)


# ---- weights from elsewhere: state dicts in, run folders out -------------------------------------------------


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} mapping from a ``.safetensors`` file or a ``.pth``/``.pt`` state dict.

    Pickles are read with ``weights_only=True``: one that refers to code (a class, ``os.system``, ...) is
    refused before anything in it runs.
    """
    path = Path(path)
    name = printable(path.name)
    if not path.exists():
        raise DataError(f"{printable(str(path))}: no such file")
    if not path.is_file():
        raise DataError(f"{printable(str(path))} is not a regular file (a folder, pipe or device), so not weights")
    size, limit = path.stat().st_size, memory_limit()
    if size > limit:
        raise DataError(f"{name} is {human_size(size)}, more than Lumen's memory limit ({human_size(limit)})")
    reader = WEIGHT_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{name}: expected a PyTorch state dict (.pth or .pt) or a .safetensors file")
    return _flat_tensors(reader(path, name), name)


def _read_safetensors(path: Path, name: str) -> Any:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{name} is not a readable safetensors file: {_first_line(exc)}") from None


def _read_pickle(path: Path, name: str) -> Any:
    """A ``.pth``/``.pt`` state dict, unpickled with ``weights_only=True``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a note on the pickle protocol
            return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        code = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if code:
            what = f"it refers to {code.group(1)}; only plain state dicts (names → tensors) are read"
        else:
            reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
            what = "it is not a plain PyTorch state dict" + (f" ({reason.group(1).strip()})" if reason else "")
        raise DataError(f"{name} was refused (nothing in it was run): {what}") from None
    except Exception as exc:  # a truncated or foreign file fails anywhere inside torch.load
        raise DataError(f"{name} is not a readable PyTorch file ({type(exc).__name__}: {exc})") from None


# The weight files Lumen reads, by extension: each reader returns what the file holds (checked to be a flat state
# dict by ``_flat_tensors``) or refuses it with one line naming the file. A new format is a reader and a line here.
WEIGHT_READERS: dict[str, Callable[[Path, str], Any]] = {
    ".safetensors": _read_safetensors,
    ".pth": _read_pickle,
    ".pt": _read_pickle,
}


def _flat_tensors(loaded: Any, name: str) -> dict[str, torch.Tensor]:
    if not isinstance(loaded, Mapping):
        raise DataError(f"{name} holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)")
    nested = [k for k, v in loaded.items() if isinstance(v, Mapping)]
    if nested:
        raise DataError(
            f"{name} holds a checkpoint, not a state dict: {', '.join(map(repr, nested[:3]))} "
            f"{'is a mapping' if len(nested) == 1 else 'are mappings'}; save model.state_dict() alone"
        )
    for key, value in loaded.items():
        if not isinstance(key, str):
            raise DataError(f"{name} is not a state dict: the key {key!r} is not a string")
        if not isinstance(value, torch.Tensor) or value.layout is not torch.strided or value.is_meta:
            raise DataError(
                f"{name} is not a state dict: {printable(key[:80])} is a {type(value).__name__}, not a dense tensor"
            )
        if value.is_complex():
            raise DataError(
                f"{name}: {printable(key[:80])} holds complex numbers ({value.dtype}); Lumen's weights "
                f"are real, and dropping the imaginary part would change the model"
            )
    return dict(loaded)


def import_run(
    spec: ModelSpec, weights_path: str | Path, run_dir: str | Path, force: bool = False, classes: str | None = None
) -> Path:
    """A run folder (as ``train`` writes) holding ``spec`` with the weights read from ``weights_path``;
    nothing is written unless every tensor fits the model. An existing run is replaced only with ``force``.
    ``classes`` ("imagenet") names the outputs: run.json carries it and ``run_classes`` reads it back."""
    if classes is not None and classes not in CLASS_LISTS:
        raise DataError(f"unknown class names {classes!r} (known: {', '.join(CLASS_LISTS)})")
    weights_path = Path(weights_path)
    check_run_dir(run_dir, force)
    tensors = read_state_dict(weights_path)
    model = build_model(spec)
    load_state_dict_checked(model, tensors, weights_path.name)
    digest = hashlib.sha256()
    with writing(weights_path), weights_path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return save_run(
        run_dir,
        spec,
        model,
        [],
        {
            "imported_from": str(weights_path.resolve()),
            "sha256": digest.hexdigest(),
            **({"classes": classes} if classes is not None else {}),
        },
        force=force,
    )


def read_run_info(run_dir: str | Path) -> dict:
    """run.json of a run folder; refuses (one DataError) a folder that is not a complete run."""
    run_dir = Path(run_dir)
    name = printable(str(run_dir))
    if not run_dir.is_dir():
        raise DataError(f"{name} is not a run folder ({'no such folder' if not run_dir.exists() else 'a file'})")
    missing = [f for f in RUN_MARKERS if not (run_dir / f).is_file()]
    if missing:
        raise DataError(f"{name} is not a complete run folder (it lacks {', '.join(missing)})")
    try:
        info = read_json(run_dir / RUN_FILE, "run record")
    except DataError as exc:
        raise DataError(f"{name} is an incomplete or damaged run folder: {exc}") from None
    if not isinstance(info, dict):
        raise DataError(f"{name} is an incomplete or damaged run folder: {RUN_FILE} does not hold an object")
    return info


CLASS_LISTS = {"imagenet": "imagenet_classes.txt"}  # bundled class names a run may refer to, in resources/
MAX_CLASSES = 100_000


def class_list(name: str) -> tuple[str, ...]:
    """A bundled list of class names (``CLASS_LISTS``), one a line, in output order."""
    from lumen.engine.resources import resource_path

    return tuple(resource_path(CLASS_LISTS[name]).read_text(encoding="utf-8").splitlines())


def run_classes(info: dict) -> tuple[str, ...]:
    """The class names a run carries (run.json's "classes": a bundled list's name or a list of names); () when
    it carries none or they are malformed (a run's outputs are then shown by index)."""
    classes = info.get("classes")
    if isinstance(classes, str) and classes in CLASS_LISTS:
        return class_list(classes)
    if isinstance(classes, list) and len(classes) <= MAX_CLASSES and all(isinstance(c, str) for c in classes):
        return tuple(printable(c[:200]) for c in classes)
    return ()


def open_run(run_dir: str | Path) -> GraphModel:
    """The model of a complete run folder, with its weights."""
    run_dir = Path(run_dir)
    read_run_info(run_dir)
    model = build_model(ModelSpec.load(run_dir / MODEL_FILE))
    load_weights(model, run_dir / WEIGHTS_FILE)
    return model


@dataclass(frozen=True)
class SavedRun:
    """Everything a run folder holds, read and checked: the window opens it whole or not at all."""

    folder: Path
    spec: ModelSpec
    model: GraphModel  # the spec built, with the run's weights
    info: dict  # run.json
    classes: tuple[str, ...]  # the outputs' names the run carries (``run_classes``); () for none
    history: list[StepMetrics | EpochMetrics]  # steps.csv then metrics.csv


def read_run(run_dir: str | Path) -> SavedRun:
    """A complete run folder read whole: refused with one ``DataError`` (a folder that is not a run, one written by a
    newer Lumen, weights that do not fit the spec) before anything is returned."""
    run_dir = Path(run_dir)
    name = printable(str(run_dir))
    info = read_run_info(run_dir)
    version = info.get("format", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > RUN_FORMAT:
        raise DataError(
            f"{name} was written by a newer version of Lumen (run format {version}; this one reads up to "
            f"{RUN_FORMAT}): open it with that version, or update Lumen"
        )
    try:
        spec = ModelSpec.load(run_dir / MODEL_FILE)
    except SpecError as exc:
        newer = re.search(r"spec version (\d+) is not supported", str(exc))
        if newer and int(newer.group(1)) > VERSION:
            raise DataError(
                f"{name} was written by a newer version of Lumen (spec version {newer.group(1)}; this one reads up "
                f"to {VERSION}): open it with that version, or update Lumen"
            ) from None
        raise DataError(f"{name}: its {MODEL_FILE} cannot be used: {exc}") from None
    model = build_model(spec)
    try:
        load_weights(model, run_dir / WEIGHTS_FILE)
    except DataError as exc:
        raise DataError(f"{name}: {exc}") from None
    return SavedRun(run_dir, spec, model, info, run_classes(info), read_history(run_dir))


def read_history(run_dir: str | Path) -> list[StepMetrics | EpochMetrics]:
    """The metrics ``save_run`` wrote (steps.csv, metrics.csv) as events again; a file that is missing or cannot
    be read gives no curves rather than a refusal (the weights are what matters)."""
    run_dir = Path(run_dir)
    steps = _metric_rows(run_dir / STEPS_FILE, ("step", "epoch"))
    total = max((int(keys[0]) for keys, _ in steps), default=0)
    history: list[StepMetrics | EpochMetrics] = [
        StepMetrics(int(keys[0]), total, int(keys[1]), values, 0.0) for keys, values in steps
    ]
    for keys, values in _metric_rows(run_dir / EPOCHS_FILE, ("epoch", "step")):
        train = {n[len("train_") :]: v for n, v in values.items() if n.startswith("train_")}
        val = {n[len("val_") :]: v for n, v in values.items() if n.startswith("val_")}
        history.append(EpochMetrics(int(keys[0]), int(keys[1]), train, val))
    return history


def _metric_rows(path: Path, keys: tuple[str, str]) -> list[tuple[tuple[float, float], dict[str, float]]]:
    """The rows of a metrics CSV as (key values, {name: value}); an empty cell is a name the row lacks."""
    try:
        text = read_text(path, MAX_CSV_BYTES, "metrics file")
    except DataError:
        return []
    reader = csv.reader(text.splitlines())
    header = next(reader, [])
    if header[:2] != list(keys):
        return []
    rows = []
    for cells in reader:
        try:
            key = (float(cells[0]), float(cells[1]))
            values = {n: float(c) for n, c in zip(header[2:], cells[2:], strict=False) if c != ""}
        except (ValueError, IndexError):
            continue  # a damaged row: left out
        rows.append((key, values))
    return rows


def writable(folder: str | Path) -> bool:
    """Whether files can be made in ``folder`` (the real test: permissions say little to root, nothing about a
    read-only disk)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lumen-check-", dir=folder))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """A file system error (no permission, a file where a folder should be) as one clear DataError."""
    try:
        yield
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder should be
        blocking = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
        cause = f"{printable(str(blocking))} is a file, not a folder" if blocking else exc.strerror or str(exc)
        raise DataError(f"cannot write {printable(str(path))}: {cause}") from None
    except OSError as exc:
        raise DataError(f"cannot write {printable(str(path))}: {exc.strerror or exc}") from None
