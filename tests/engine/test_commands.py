"""Commands to the worker are typed: frozen dataclasses dispatched by type; anything else is refused."""

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest

from lumen.engine.runtime import commands
from lumen.engine.runtime.commands import Command, ProbeImage, Quit, Train
from lumen.engine.runtime.session import Session
from lumen.engine.runtime.worker import EngineWorker
from lumen.engine.training.loop import TrainConfig


def test_every_command_is_a_frozen_dataclass_with_a_handler():
    kinds = typing.get_args(Command)
    assert len(kinds) >= 15  # the ten of training and probing, plus layer choice, invariance and long jobs
    for command in kinds:
        assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen, command
    session = Session(lambda event: None)  # what the worker's thread hands each command to
    assert set(session.commands) | {Quit} == set(kinds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Train(TrainConfig()).config = TrainConfig(epochs=2)


@pytest.mark.parametrize("command", [("train", TrainConfig()), "pause", None, TrainConfig()])
def test_an_unknown_command_is_refused_in_the_callers_thread(command):
    worker = EngineWorker(lambda event: None)
    with pytest.raises(TypeError, match=r"the engine has no command .*engine\.runtime\.commands \(LoadModel, Train"):
        worker.submit(command)
    assert worker._commands.empty()


def test_a_dataclass_that_is_not_one_of_the_engines_commands_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Explode:
        pass

    with pytest.raises(TypeError, match="no command .*Explode"):
        EngineWorker(lambda event: None).submit(Explode())


def test_the_helpers_queue_typed_commands():
    worker = EngineWorker(lambda event: None)
    pixels = np.zeros((4, 4), np.uint8)
    worker.probe_image(pixels, "x.png")
    worker.save("somewhere")
    worker.probe_sample(3)
    image, save, sample = (worker._commands.get_nowait() for _ in range(3))
    assert isinstance(image, ProbeImage) and image.pixels is pixels and image.name == "x.png"
    assert save == commands.Save(Path("somewhere"))
    assert sample == commands.ProbeSample(3)
