"""Fixtures shared by the engine tests."""

import pytest

from lumen.engine.events import RunState
from lumen.engine.presets import get_preset
from lumen.engine.runtime.worker import EngineWorker
from tests.support import Recorder, state_is


@pytest.fixture
def worker():
    """A started engine worker with LeNet-5 loaded; its events go to ``worker.recorder``."""
    recorder = Recorder()
    w = EngineWorker(recorder, torch_threads=1)
    w.recorder = recorder
    w.start()
    w.load_model(get_preset("lenet5"))
    recorder.wait_for(state_is(RunState.IDLE))
    yield w
    assert w.shutdown(10)
