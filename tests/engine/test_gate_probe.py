"""The gates probe: inside the recurrent layers of the model loaded, on the probe input, as the engine's capture
computes them from the module and the input it receives; only for recurrent models."""

import numpy as np
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.events import ModelInfo
from lumen.engine.explain.gates import capture_gates, hidden_gradients
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import ProbeContext, ProbeInput
from lumen.engine.probes.gates import Gates, GateSettings
from lumen.engine.training.fit import plan_run


def info(family: str) -> ModelInfo:
    return ModelInfo("m", family, (20, 10), frozenset(), "recall", "classification", "classification", "")


def fitted(preset: str, data):
    return build_model(plan_run(get_preset(preset), data).spec).eval()  # resized to the data, as the window does


def test_it_applies_to_recurrent_models_only():
    assert Gates().applies(info("recurrent"))
    assert not any(Gates().applies(info(family)) for family in ("cnn", "autoencoder", "boltzmann", "dense"))


def test_a_bidirectional_lstms_gates_on_the_probe_input_equal_the_capture_of_its_module():
    torch.manual_seed(0)
    data = load_dataset("brackets")
    model = fitted("bilstm_many_to_many", data)
    x, y = data.val_x[:1], data.val_y[0]
    tokens = ("(", ")")
    frame = Gates().frame(ProbeContext(model, ProbeInput(x, "brackets #0", target=y, tokens=tokens), data.classes, 5))
    module = model.get_submodule(frame.layer)
    assert frame.layers == ("lstm1.rnn",) and frame.kind == "lstm" and frame.directions == ("fwd", "bwd")
    assert frame.steps == tuple(tokens[i] for i in x[0].argmax(-1))
    expected = capture_gates(module, x)  # the layer reads the input directly in this preset
    for name in ("l0.fwd.f", "l0.bwd.f", "l0.fwd.c", "l0.bwd.h"):
        np.testing.assert_allclose(frame.maps[name], expected.arrays[name][:, 0], rtol=1e-5, atol=1e-6)
    assert frame.maps["l0.fwd.f"].shape == (x.shape[1], module.hidden_size)

    def loss(out):  # the model's per-step cross-entropy, its head applied to the module's output
        logits = model.get_submodule("head")(out)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    np.testing.assert_allclose(frame.gradients, hidden_gradients(module, x, loss), rtol=1e-4, atol=1e-9)


def test_units_sorted_by_saturation_follow_the_settings():
    torch.manual_seed(0)
    data = load_dataset("recall")
    model = fitted("lstm_many_to_one", data)
    lstm = model.get_submodule("lstm1.rnn")
    units = lstm.hidden_size
    with torch.no_grad():  # units 20–27: forget gates pinned near 1 (20–23) and near 0 (24–27), i.e. saturated
        lstm.bias_ih_l0[units : 2 * units] = lstm.bias_hh_l0[units : 2 * units] = 0.0  # the rest: torch's start
        lstm.bias_ih_l0[units + 20 : units + 24] = 20.0
        lstm.bias_ih_l0[units + 24 : units + 28] = -20.0
    probe = Gates()
    probe.configure(GateSettings(sort="saturation"))
    frame = probe.frame(ProbeContext(model, ProbeInput(data.val_x[:1], "recall #0"), data.classes, 0))
    forget = frame.maps["l0.fwd.f"]
    saturated = ((forget < 0.1) | (forget > 0.9)).mean(0)
    order = frame.order["l0.fwd.f"]
    assert sorted(order) == list(range(forget.shape[1]))
    assert list(saturated[order]) == sorted(saturated, reverse=True)
    assert set(order[:8]) == set(range(20, 28)) and saturated[order[7]] == 1.0 > saturated[order[8]]
    assert frame.gradients is None  # no target given: no gradient through time


def test_a_step_with_several_features_on_is_named_by_all_of_them():
    torch.manual_seed(0)
    data = load_dataset("recall")
    model = fitted("lstm_many_to_one", data)
    x = data.val_x[:1]
    frame = Gates().frame(ProbeContext(model, ProbeInput(x, "recall #0", tokens=data.input_tokens), data.classes, 0))
    key = data.input_tokens[int(x[0, 0, :8].argmax())]
    assert frame.steps[0] == key + "!"  # the key and its "remember this" flag, not the letter alone
    assert frame.steps[-1] == "?" and all(len(step) == 1 for step in frame.steps[1:])
