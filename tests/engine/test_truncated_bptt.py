"""Truncated backpropagation through time (TrainConfig.truncation): sequences run in chunks with the recurrent
state carried but detached, so the outputs are the full run's and the gradients reach back at most k steps."""

import math

import pytest
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.errors import LumenError
from lumen.engine.events import StepMetrics
from lumen.engine.graph.model import build_model
from lumen.engine.modules.recurrent import Recurrent
from lumen.engine.presets import get_preset
from lumen.engine.training.config import TrainConfig
from lumen.engine.training.fit import plan_run
from lumen.engine.training.loop import Training
from lumen.engine.training.objectives import truncated_forward


def model_of(preset):
    torch.manual_seed(0)
    return build_model(get_preset(preset))  # 20 steps × 8 features in


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_chunks_with_the_state_carried_give_the_whole_runs_outputs(family):
    x = torch.randn(3, 20, 8)
    for io, per_step in (("many_to_many", True), ("many_to_one", False)):
        model = model_of(f"{family}_{io}")
        torch.testing.assert_close(truncated_forward(model, x, 6, per_step), model(x), rtol=1e-5, atol=1e-6)
        assert all(not m.carry and m.state is None for m in model.modules() if isinstance(m, Recurrent))


@pytest.mark.parametrize(("io", "per_step"), [("many_to_many", True), ("many_to_one", False)])
def test_gradients_reach_back_at_most_k_steps(io, per_step):
    model = model_of(f"lstm_{io}")
    x = torch.randn(2, 20, 8, requires_grad=True)
    out = truncated_forward(model, x, 5, per_step)
    (out[:, -1] if per_step else out).sum().backward()
    reach = x.grad.abs().sum(dim=(0, 2))
    assert (reach[:15] == 0).all() and (reach[15:] > 0).all()  # the last chunk only
    x.grad = None
    model(x)[:, -1].sum().backward() if per_step else model(x).sum().backward()
    assert (x.grad.abs().sum(dim=(0, 2))[:15] > 0).all()  # without truncation: all the way back


def test_training_with_truncation_and_its_refusals():
    data = load_dataset("sine", count=64, steps=40)
    spec = plan_run(get_preset("gru_many_to_many"), data).spec
    torch.manual_seed(0)
    model = build_model(spec)
    training = Training(model, data, TrainConfig(epochs=1, max_steps=2, truncation=10, device="cpu"))
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[1]))
    steps = [e for e in training.steps() if isinstance(e, StepMetrics)]
    assert calls[:4] == [10, 10, 10, 10]  # the first batch in four chunks of 10 steps; validation runs whole
    assert len(steps) == 1 and math.isfinite(steps[0].values["loss"])
    with pytest.raises(LumenError, match="truncation"):
        TrainConfig(truncation=-1).check()
    with pytest.raises(LumenError, match="one-directional"):
        truncated_forward(model_of("bilstm_many_to_many"), torch.randn(1, 20, 8), 5, True)
