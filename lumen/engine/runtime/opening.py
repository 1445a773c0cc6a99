"""Opening a saved run for the session (``OpenRun``): a run folder, or a run of the run store picked by its id.

Everything is read and checked here, on the worker's thread, before the session changes anything: the spec built
with the run's weights, its class names, its metrics, and where its checkpoints are. A run folder written by
``train --out`` names its run-store run (run.json's ``run_id``), whose folder holds the checkpoints the replay
slider covers; a run of the store is opened from the run folder it was saved to when that folder is still its
own, else from its newest checkpoint.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lumen.engine.errors import DataError, LumenError
from lumen.engine.graph.model import build_model
from lumen.engine.io.runs import SavedRun, load_state_dict_checked, read_run, run_classes, writable
from lumen.engine.io.store import INFO_FILE, SPEC_FILE, RunStore, checkpoints, load_checkpoint
from lumen.engine.runtime.replay import MODEL_PREFIX
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.untrusted import printable, read_json


@dataclass(frozen=True)
class Opened:
    run: str  # the name replay commands use: a run-store id, or the folder's path
    saved: SavedRun
    checkpoints: Path  # the folder whose checkpoints/ the replay reads
    read_only: bool


def open_saved(run: Path | str, store: Callable[[], RunStore]) -> Opened:
    """The run ``run`` names (a folder, or a run-store id), read whole; one ``DataError`` when it cannot be opened."""
    if isinstance(run, Path):
        saved = read_run(run)
        key, folder = str(run), run
        recorded = _recorded(saved.info.get("run_id"), store)
        if recorded is not None and checkpoints(recorded):
            key, folder = str(saved.info["run_id"]), recorded
        return Opened(key, saved, folder, not writable(run))
    try:
        row = store().find(run)
    except sqlite3.Error as exc:
        raise DataError(f"cannot open run {printable(run)}: the run store failed ({exc})") from None
    folder = Path(row.folder)
    info = _info(folder)
    out = info.get("out")
    if isinstance(out, str):
        try:
            saved = read_run(Path(out))
        except DataError:
            pass  # gone, or replaced by another run: the store's checkpoint is opened instead
        else:
            if saved.info.get("run_id") == row.id:
                return Opened(row.id, saved, folder, not writable(Path(out)))
    return Opened(row.id, _from_checkpoint(row.id, folder, info, store), folder, not writable(folder))


def _recorded(run_id: object, store: Callable[[], RunStore]) -> Path | None:
    """The run-store folder of ``run_id``, if the store knows it."""
    if not isinstance(run_id, str):
        return None
    try:
        return Path(store().run(run_id).folder)
    except (LumenError, sqlite3.Error):  # not recorded here (another machine, another data folder)
        return None


def _info(folder: Path) -> dict:
    try:
        info = read_json(folder / INFO_FILE, "run record")
    except DataError:
        return {}
    return info if isinstance(info, dict) else {}


def _from_checkpoint(run_id: str, folder: Path, info: dict, store: Callable[[], RunStore]) -> SavedRun:
    """A run of the store whose run folder is gone: its spec with the weights of its newest checkpoint."""
    kept = checkpoints(folder)
    if not kept:
        raise DataError(f"run {printable(run_id)} has no weights to open: it kept no checkpoint and has no run folder")
    step, path = kept[-1]
    try:
        spec = ModelSpec.load(folder / SPEC_FILE)
    except LumenError as exc:
        raise DataError(f"run {printable(run_id)}: its {SPEC_FILE} cannot be used: {exc}") from None
    model = build_model(spec)
    tensors, _ = load_checkpoint(path, prefix=MODEL_PREFIX)
    weights = {name[len(MODEL_PREFIX) :]: tensor for name, tensor in tensors.items()}
    load_state_dict_checked(model, weights, f"checkpoint step {step} of run {printable(run_id)}")
    try:
        history = store().history(run_id)
    except (LumenError, sqlite3.Error):
        history = []
    return SavedRun(folder, spec, model, info, run_classes(info), history)
