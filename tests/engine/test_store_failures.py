"""A run store that is damaged, read-only or locked by another process: every SQLite error leaves ``RunStore`` as
one ``StoreError`` line naming the file and what to do, and the window's worker trains on unrecorded."""

import sqlite3
import time
from pathlib import Path

import pytest

from lumen.engine.events import EngineError, RunState
from lumen.engine.io.store import DB_FILE, LOCK_WAIT_S, RunRecorder, RunStore, StoreError
from lumen.engine.presets import get_preset
from lumen.engine.runtime.worker import EngineWorker
from lumen.engine.training.loop import TrainConfig
from tests.support import Recorder, state_is


def damaged_store(folder: Path, pages: tuple[str, ...] = ("runs", "sqlite_autoindex_runs_1", "metrics")) -> Path:
    """A real store with one run, whose header stays valid but whose ``pages`` (tables, indexes) are overwritten."""
    with RunStore(folder) as store:
        store.new_run("lenet5", "mnist", "classification", 10)
        roots = dict(store.db.execute("SELECT name, rootpage FROM sqlite_master").fetchall())
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = folder / DB_FILE
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    for name in pages:
        page = roots[name]
        data[(page - 1) * size : page * size] = b"\xff" * size
    path.write_bytes(bytes(data))
    return path


def one_line(exc: StoreError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_a_damaged_store_is_one_line_that_says_how_to_recover(tmp_path):
    path = damaged_store(tmp_path / "data")
    with pytest.raises(StoreError) as caught:
        RunStore(tmp_path / "data")
    text = one_line(caught.value)
    assert "is damaged (database disk image is malformed)" in text
    assert f"move {path} " in text and "aside" in text and "every run's folder is kept" in text


def test_damage_found_mid_run_is_a_store_error_not_a_sqlite_one(tmp_path):
    damaged_store(tmp_path / "data", pages=("metrics", "metrics_by_run"))
    with RunStore(tmp_path / "data") as store:  # the runs table is whole: the store opens
        recorder = RunRecorder(store, store.new_run("lenet5", "mnist", "classification", 10))
        recorder._rows.append((recorder.id, "step", 1, 1, "loss", 1.0))
        with pytest.raises(StoreError, match="is damaged"):
            recorder.flush()
        assert not store.db.in_transaction  # rolled back: the connection is usable for what still works
        assert [r.id for r in store.runs()][0] == recorder.id


def test_a_read_only_store_says_it_cannot_be_written(tmp_path):
    # Tests run as root, whom chmod does not stop: SQLite's own read-only mode gives the same error a read-only
    # file does (the CLI test mounts a read-only file system for the real thing).
    with RunStore(tmp_path / "data") as store:
        store.db.close()
        store.db = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None)
        with pytest.raises(StoreError) as caught:
            store.new_run("lenet5", "mnist", "classification", 10)
        assert "cannot be written (attempt to write a readonly database)" in one_line(caught.value)
        assert "LUMEN_DATA_DIR" in str(caught.value)
        assert list((tmp_path / "data" / "runs").iterdir()) == []  # no folder left without a row


def test_a_locked_store_waits_a_bounded_time_then_says_so(tmp_path):
    RunStore(tmp_path / "data").close()
    other = sqlite3.connect(tmp_path / "data" / DB_FILE, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        with RunStore(tmp_path / "data") as store:  # reading goes on beside a writer (WAL)
            assert store.runs() == []
            with pytest.raises(StoreError) as caught:
                store.new_run("lenet5", "mnist", "classification", 10)
        waited = time.monotonic() - began
        assert LOCK_WAIT_S - 0.5 <= waited < LOCK_WAIT_S + 3
        assert f"is locked by another process (waited {LOCK_WAIT_S:g} s)" in one_line(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_the_worker_trains_unrecorded_on_a_damaged_store(tmp_path):
    damaged_store(tmp_path / "data")
    events = Recorder()
    worker = EngineWorker(events, torch_threads=1, store=lambda: RunStore(tmp_path / "data"))
    worker.load_model(get_preset("lenet5"))
    worker.start()
    try:
        events.wait_for(state_is(RunState.IDLE))
        worker.train(TrainConfig(epochs=1, max_steps=3, batch_size=16))
        events.wait_for(state_is(RunState.FINISHED), timeout=60)
        errors = [e.message for e in events.drain(0.1) if isinstance(e, EngineError)]
        assert len(errors) == 1 and "runs are not recorded in the run store" in errors[0]
        assert "is damaged" in errors[0]
    finally:
        assert worker.shutdown(10)
