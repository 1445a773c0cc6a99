"""The run store: a SQLite index of every run (standard library ``sqlite3``, WAL) in the user's data folder, with
each run's metrics, and a folder per run with its spec, its settings and its checkpoints.

- ``data_dir()``: ``LUMEN_DATA_DIR`` if set (tests point it at a temporary folder), else ``$XDG_DATA_HOME/lumen``,
  else the platform's place (``~/.local/share/lumen``, ``~/Library/Application Support/Lumen``,
  ``%APPDATA%\\Lumen``).
- ``RunStore``: one connection (use one per thread). ``runs()`` lists them, newest first; a row still marked
  ``running`` whose process has gone (killed, crashed) is marked ``interrupted`` whenever the store is opened.
- ``RunRecorder``: what a training loop calls. ``record(event)`` buffers each step's and epoch's values and
  writes them in one transaction at most every ``flush_s`` seconds, so a killed process loses at most that
  much (WAL with ``synchronous=NORMAL`` survives a killed process; only a power cut can lose the last commit).
  ``checkpoint(training)`` writes ``checkpoints/step-NNNNNNNN.safetensors`` atomically (``atomic_write``);
  ``close(status)`` flushes and marks the run.
- ``latest_checkpoint`` / ``load_checkpoint``: what ``train --resume`` reads.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import socket
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from lumen.engine.errors import DataError
from lumen.engine.events import EpochMetrics, StepMetrics
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.untrusted import atomic_write, printable, write_text_atomic

DB_FILE = "runs.sqlite"
RUNS_FOLDER = "runs"
CHECKPOINTS = "checkpoints"
SPEC_FILE, INFO_FILE = "model.json", "run.json"
FLUSH_S = 0.5  # metrics reach the disk at least this often while a run goes
LOCK_WAIT_S = 3.0  # how long a statement waits for another process's write lock before the store says it is busy
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    data TEXT NOT NULL,
    objective TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    best_name TEXT,
    best_value REAL,
    folder TEXT NOT NULL,
    pid INTEGER,
    host TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    phase TEXT NOT NULL,  -- 'step' (one batch), 'train' (an epoch's mean), 'val' (an epoch's validation)
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, name, phase, step);
"""


def data_dir() -> Path:
    """The user's Lumen data folder (not created here)."""
    explicit = os.environ.get("LUMEN_DATA_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "lumen"
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Lumen"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Lumen"
    return home / ".local" / "share" / "lumen"


@dataclass(frozen=True)
class RunRow:
    id: str
    model: str
    data: str
    objective: str
    status: str
    message: str
    created: float
    updated: float
    step: int
    total_steps: int
    best_name: str | None
    best_value: float | None
    folder: str
    pid: int | None
    host: str | None

    def best(self) -> str:
        if self.best_name is None or self.best_value is None:
            return "-"
        if self.best_name.endswith("accuracy"):
            return f"{self.best_name} {self.best_value:.1%}"
        return f"{self.best_name} {self.best_value:.4g}"


def _host() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except OSError:
        return False
    return True


def _best_of(val: Mapping[str, float]) -> tuple[str, float, bool] | None:
    """The headline validation measure: (name, value, higher is better)."""
    if "accuracy" in val and math.isfinite(val["accuracy"]):
        return "val_accuracy", float(val["accuracy"]), True
    if "loss" in val and math.isfinite(val["loss"]):
        return "val_loss", float(val["loss"]), False
    return None


class StoreError(DataError):
    """The run store cannot be used: damaged, read-only, locked by another process, or not a database. The
    message is one line that names the store's file and what to do; a SQLite error never leaves ``RunStore``
    as anything else."""


def store_error(path: Path, exc: sqlite3.Error | OSError) -> StoreError:
    """``exc`` as one line a user can act on (the run folders hold every run; the store is only their index)."""
    where = printable(str(path))
    text = printable(str(exc))
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"the run store {where} is locked by another process (waited {LOCK_WAIT_S:g} s); "
            "try again once it has finished writing"
        )
    if code.startswith("SQLITE_READONLY") or "readonly" in text or _read_only(path):
        reason = text if code.startswith("SQLITE_READONLY") or "readonly" in text else "it is read-only"
        return StoreError(
            f"the run store {where} cannot be written ({reason}); make it writable, "
            "or point LUMEN_DATA_DIR at another folder"
        )
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
        return StoreError(
            f"the run store {where} is damaged ({text}); move {where} and its -wal and -shm files aside and "
            "Lumen starts a new one (it is only an index: every run's folder is kept whole)"
        )
    return StoreError(f"cannot use the run store {where}: {text}")


def _read_only(path: Path) -> bool:
    """Whether the store's file or its folder cannot be written (a read-only file system says so even to root)."""
    try:
        return (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK)
    except OSError:
        return False


class RunStore:
    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else data_dir()
        self.path = self.folder / DB_FILE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open the run store in {printable(str(self.folder))}: {exc.strerror or exc}"
            ) from None
        try:
            self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None
        try:
            with self.errors():
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)
                self.db.execute("SELECT COUNT(*) FROM runs").fetchone()  # a damaged index is found now, not mid-run
                self.mark_interrupted()
        except StoreError:
            self.db.close()
            raise

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Any SQLite error inside becomes a ``StoreError`` naming the store's file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.errors():
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled back already (a damaged page)
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise

    # ---- runs ------------------------------------------------------------------------------------------
    def mark_interrupted(self) -> int:
        """Runs still marked running on this machine whose process is gone become ``interrupted``."""
        host = _host()
        with self.errors():
            rows = self.db.execute("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)).fetchall()
        dead = [run_id for run_id, pid in rows if pid is None or not _alive(int(pid))]
        if dead:
            with self.transaction() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', message = 'the process ended mid-run' WHERE id = ?",
                    [(run_id,) for run_id in dead],
                )
        return len(dead)

    def new_run(self, model: str, data: str, objective: str, total_steps: int) -> RunRow:
        created = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
        run_id = f"{stamp}-{secrets.token_hex(2)}"
        folder = self.folder / RUNS_FOLDER / run_id
        try:
            (folder / CHECKPOINTS).mkdir(parents=True)
        except OSError as exc:
            raise DataError(f"cannot make the run folder {printable(str(folder))}: {exc.strerror or exc}") from None
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO runs (id, model, data, objective, status, created, updated, total_steps, folder,"
                    " pid, host) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        model,
                        data,
                        objective,
                        created,
                        created,
                        total_steps,
                        str(folder),
                        os.getpid(),
                        _host(),
                    ),
                )
        except StoreError:  # no row, so no folder either (it is empty)
            with contextlib.suppress(OSError):
                (folder / CHECKPOINTS).rmdir()
                folder.rmdir()
            raise
        return self.run(run_id)

    def run(self, run_id: str) -> RunRow:
        with self.errors():
            found = self.db.execute(
                f"SELECT {', '.join(RunRow.__dataclass_fields__)} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        if found is None:
            raise DataError(f"there is no run {printable(run_id)} in {printable(str(self.folder))}")
        return RunRow(*found)

    def find(self, prefix: str) -> RunRow:
        """The run whose id is ``prefix`` or starts with it (refused when several do)."""
        if not re.fullmatch(r"[0-9a-zA-Z-]{1,64}", prefix):
            raise DataError(f"{printable(prefix)} is not a run id (see 'lumen runs')")
        with self.errors():
            ids = [r[0] for r in self.db.execute("SELECT id FROM runs WHERE id LIKE ? || '%'", (prefix,))]
        if prefix in ids:
            return self.run(prefix)
        if len(ids) != 1:
            known = "no run in the store matches" if not ids else f"{len(ids)} runs in the store match"
            raise DataError(f"{known} {printable(prefix)} (see 'lumen runs')")
        return self.run(ids[0])

    def runs(self) -> list[RunRow]:
        fields = ", ".join(RunRow.__dataclass_fields__)
        with self.errors():
            return [RunRow(*r) for r in self.db.execute(f"SELECT {fields} FROM runs ORDER BY created DESC, id DESC")]

    def set_status(self, run_id: str, status: str, message: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(status)
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, message = ?, updated = ?, pid = ?, host = ? WHERE id = ?",
                (status, message, time.time(), os.getpid(), _host(), run_id),
            )

    # ---- metrics ---------------------------------------------------------------------------------------
    def metric(self, run_id: str, name: str, phase: str = "step") -> tuple[list[int], list[float]]:
        with self.errors():
            rows = self.db.execute(
                "SELECT step, value FROM metrics WHERE run_id = ? AND name = ? AND phase = ? ORDER BY step, rowid",
                (run_id, name, phase),
            ).fetchall()
        return [r[0] for r in rows], [r[1] if r[1] is not None else math.nan for r in rows]

    def metric_names(self, run_id: str) -> list[tuple[str, str]]:
        """(phase, name) pairs the run has, in first-seen order."""
        with self.errors():
            rows = self.db.execute(
                "SELECT phase, name, MIN(rowid) FROM metrics WHERE run_id = ? GROUP BY phase, name ORDER BY 3",
                (run_id,),
            )
            return [(r[0], r[1]) for r in rows]

    def metric_rows(self, run_id: str) -> Iterator[tuple[str, int, int, str, float]]:
        """Every (phase, step, epoch, name, value) of the run, in the order they were recorded."""
        with self.errors():
            yield from self.db.execute(
                "SELECT phase, step, epoch, name, value FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
            )

    def history(self, run_id: str) -> list[StepMetrics | EpochMetrics]:
        """The run's recorded metrics as events again (for the run folder a resumed run writes at its end)."""
        steps: dict[int, tuple[int, dict[str, float]]] = {}
        epochs: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
        run = self.run(run_id)
        for phase, step, epoch, name, value in self.metric_rows(run_id):
            value = math.nan if value is None else value
            if phase == "step":
                steps.setdefault(step, (epoch, {}))[1][name] = value
            else:
                epochs.setdefault((epoch, step), {"train": {}, "val": {}})[phase][name] = value
        events: list[StepMetrics | EpochMetrics] = [
            StepMetrics(step, run.total_steps, epoch, values, 0.0) for step, (epoch, values) in steps.items()
        ]
        events += [EpochMetrics(epoch, step, p["train"], p["val"]) for (epoch, step), p in epochs.items()]
        return events

    def forget_after(self, run_id: str, step: int) -> None:
        """Drop what was recorded after ``step``'s checkpoint (a resumed run records it again)."""
        with self.transaction() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ? AND phase = 'step' AND step > ?", (run_id, step))
            db.execute("DELETE FROM metrics WHERE run_id = ? AND phase != 'step' AND step >= ?", (run_id, step))
            db.execute("UPDATE runs SET step = ? WHERE id = ?", (step, run_id))
            self._recompute_best(db, run_id)

    def _recompute_best(self, db: sqlite3.Connection, run_id: str) -> None:
        best: tuple[str, float, bool] | None = None
        epochs: dict[int, dict[str, float]] = {}
        for step, name, value in db.execute(
            "SELECT step, name, value FROM metrics WHERE run_id = ? AND phase = 'val' ORDER BY step", (run_id,)
        ):
            epochs.setdefault(step, {})[name] = value
        for val in epochs.values():
            best = _better(best, _best_of(val))
        db.execute(
            "UPDATE runs SET best_name = ?, best_value = ? WHERE id = ?",
            (best[0] if best else None, best[1] if best else None, run_id),
        )

    def export_csv(self, run_id: str, path: str | Path) -> Path:
        """Every metric of the run as one CSV: phase, step, epoch, then one column per name."""
        rows: dict[tuple[str, int, int], dict[str, float]] = {}
        names: list[str] = []
        for phase, step, epoch, name, value in self.metric_rows(run_id):
            rows.setdefault((phase, step, epoch), {})[name] = value
            if name not in names:
                names.append(name)
        lines = [",".join(["phase", "step", "epoch", *names])]
        for (phase, step, epoch), values in rows.items():
            cells = ["" if values.get(n) is None else repr(float(values[n])) for n in names]
            lines.append(",".join([phase, str(step), str(epoch), *cells]))
        write_text_atomic(path, "\n".join(lines) + "\n")
        return Path(path)


def _better(
    best: tuple[str, float, bool] | None, new: tuple[str, float, bool] | None
) -> tuple[str, float, bool] | None:
    if new is None:
        return best
    if best is None or best[0] != new[0]:
        return new
    higher = new[2]
    return new if (new[1] > best[1] if higher else new[1] < best[1]) else best


# ---- checkpoints ---------------------------------------------------------------------------------------------
def checkpoint_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / CHECKPOINTS / f"step-{step:09d}.safetensors"


def checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """The run folder's checkpoints as (step, path), oldest first."""
    found = []
    with contextlib.suppress(OSError):
        for entry in (Path(folder) / CHECKPOINTS).iterdir():
            match = re.fullmatch(r"step-(\d{9})\.safetensors", entry.name)
            if match and entry.is_file():
                found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(folder: str | Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1][1] if found else None


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    path = Path(path)
    with atomic_write(path) as temp:
        save_file(tensors, str(temp), metadata={"lumen": json.dumps(meta)})
    return path


def load_checkpoint(path: str | Path, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The checkpoint's tensors (only those whose names start with ``prefix``, e.g. ``"model/"``) and its run
    state; an unreadable file or one without Lumen's run state is refused with a ``DataError``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("lumen", "null"))  # our own JSON: may hold Infinity
            tensors = {key: f.get_tensor(key) for key in f.keys() if key.startswith(prefix)}  # no __iter__
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"cannot read the checkpoint {printable(str(path))}: {exc}") from None
    if not isinstance(meta, dict):
        raise DataError(f"{printable(str(path))} is not a Lumen checkpoint (no run state in it)")
    return tensors, meta


# ---- recording a run as it goes ----------------------------------------------------------------------------------
class RunRecorder:
    """Writes one run into the store while it trains. Call from the training thread only."""

    def __init__(
        self,
        store: RunStore,
        row: RunRow,
        *,
        checkpoint_every: int = 0,
        flush_s: float = FLUSH_S,
        clock: Any = time.monotonic,
    ):
        self.store, self.id, self.folder = store, row.id, Path(row.folder)
        self.checkpoint_every = checkpoint_every  # steps between checkpoints (0: none; see Recording)
        self.flush_s = flush_s
        self._clock = clock
        self._rows: list[tuple[str, str, int, int, str, float | None]] = []
        self._last_flush = clock()
        self._step = row.step
        self._best: tuple[str, float, bool] | None = None
        if row.best_name is not None and row.best_value is not None:
            self._best = (row.best_name, row.best_value, row.best_name.endswith("accuracy"))
        self.closed = False

    @classmethod
    def start(
        cls,
        store: RunStore,
        spec: ModelSpec,
        data: str,
        objective: str,
        total_steps: int,
        info: Mapping[str, Any],
        **options: Any,
    ) -> RunRecorder:
        """A new run: its row, its folder with the spec and ``info`` (config, data, ...) written."""
        row = store.new_run(spec.name, data, objective, total_steps)
        folder = Path(row.folder)
        spec.save(folder / SPEC_FILE)
        write_text_atomic(folder / INFO_FILE, json.dumps(info, indent=2, default=str))
        return cls(store, row, **options)

    def record(self, event: StepMetrics | EpochMetrics) -> None:
        if isinstance(event, StepMetrics):
            self._rows.extend(
                (self.id, "step", event.step, event.epoch, name, _finite(value)) for name, value in event.values.items()
            )
            self._step = event.step
        else:
            for phase, values in (("train", event.train), ("val", event.val)):
                self._rows.extend(
                    (self.id, phase, event.step, event.epoch, name, _finite(value)) for name, value in values.items()
                )
            self._best = _better(self._best, _best_of(event.val))
        if self._clock() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        self._last_flush = self._clock()
        with self.store.transaction() as db:
            if rows:
                db.executemany(
                    "INSERT INTO metrics (run_id, phase, step, epoch, name, value) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            db.execute(
                "UPDATE runs SET step = ?, updated = ?, best_name = ?, best_value = ? WHERE id = ?",
                (
                    self._step,
                    time.time(),
                    self._best[0] if self._best else None,
                    self._best[1] if self._best else None,
                    self.id,
                ),
            )

    def checkpoint(self, tensors: dict[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
        """Write a checkpoint (from ``engine.training.resume.training_state``); the metrics so far are flushed
        first, so the store never holds a checkpoint newer than its metrics."""
        self.flush()
        return save_checkpoint(checkpoint_path(self.folder, int(meta["step"])), tensors, meta)

    def close(self, status: str, message: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.flush()
        self.store.set_status(self.id, status, message)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
