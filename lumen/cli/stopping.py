"""How ``train`` stops: Ctrl-C and SIGTERM between batches (a second one during a batch at once), signals held
while the run is saved, and the exit code a shell expects of a process a signal ended."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be."""


class StopRequest:
    """Ctrl-C and SIGTERM while training. The first asks the run to stop at the next batch boundary (``check``,
    called once a batch's metrics are recorded and checkpointed), so what is saved and what the store holds cover
    the same steps; a second one that comes while a batch is computed stops at once (``abrupt``)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_batch = False
        self.abrupt = False

    def install(self):
        """Route Ctrl-C and SIGTERM here; returns the function that puts the old handlers back. (Only the main
        thread may set handlers: elsewhere, as in a test calling main() from a thread, nothing changes.)"""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.signal(sig, self._signalled) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _signalled(self, signum, frame) -> None:
        if self.signum is not None and self.in_batch:
            self.abrupt = True
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.signum = self.signum or signum

    def guarded(self, events):
        """``events`` (a training's steps), marking the time spent computing each one."""
        iterator = iter(events)
        while True:
            self.in_batch = True
            try:
                event = next(iterator)
            except StopIteration:
                return
            finally:
                self.in_batch = False
            yield event

    def check(self) -> None:
        """Stop now (raise as Ctrl-C would) if a signal asked for it."""
        if self.signum is not None:
            raise Terminated() if self.signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def signals_held():
    """Ignore Ctrl-C and SIGTERM while a run is being saved (it takes a moment and must not be cut short)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interrupted_exit_code(exc: BaseException) -> int:
    """128 + the signal, as a shell reports a process the signal ended; a closed stdout counts as SIGPIPE."""
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return 128 + signal.SIGPIPE
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def _silence_stdout() -> None:
    """The reader of stdout has gone: send the rest to /dev/null, so the exit's flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
