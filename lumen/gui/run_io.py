"""Checking a folder for *Save run…* off the GUI thread.

``check_run_dir`` lists the folder and makes (and removes) a temporary folder beside it: on a slow or hung network
disk that takes as long as the disk likes, so it runs on a one-thread pool and the verdict comes back as a queued
signal. Each request gets a serial number, and the receiver uses only the newest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from lumen.engine.errors import LumenError
from lumen.engine.io.runs import RunExists, check_run_dir
from lumen.engine.untrusted import shown

FREE, HOLDS_RUN, REFUSED = "free", "holds a run", "refused"


class RunFolderCheck(QObject):
    checked = Signal(str, str, str, int)  # folder, FREE | HOLDS_RUN | REFUSED, the refusal's message, serial

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pool: ThreadPoolExecutor | None = None  # made on the first check
        self.serial = 0

    def check(self, folder: str) -> int:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lumen-run-check")
        self.serial += 1
        self._pool.submit(self._check, folder, self.serial)
        return self.serial

    def _check(self, folder: str, serial: int) -> None:  # pool thread
        try:
            check_run_dir(folder)
        except RunExists:
            self.checked.emit(folder, HOLDS_RUN, "", serial)
        except LumenError as exc:
            self.checked.emit(folder, REFUSED, str(exc), serial)
        except Exception as exc:  # a bug must become a message, not a silent nothing
            self.checked.emit(folder, REFUSED, f"cannot use {folder}: {type(exc).__name__}: {exc}", serial)
        else:
            self.checked.emit(folder, FREE, "", serial)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def confirm_replace_run(parent: QWidget, folder: str) -> bool:
    """Ask before *Save run…* replaces the run a folder already holds (the main window's and a watch window's)."""
    answer = QMessageBox.question(
        parent,
        "Replace the run?",
        f"{shown(folder)} already holds a saved run. Replace it with this one?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes
