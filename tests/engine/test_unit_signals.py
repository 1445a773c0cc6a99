"""Which units track what: signals from the input, each unit's correlation with one (against numpy's corrcoef),
LSTMVis-style span selection and matches; and the gates probe finding a unit that counts bracket depth, in an
LSTM rigged to have one."""

import numpy as np
import torch

from lumen.engine.data.datasets import load_dataset
from lumen.engine.explain.gates import capture_gates
from lumen.engine.explain.unit_signals import correlations, find_matches, select_units, signals
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
from lumen.engine.probes.base import ProbeContext, ProbeInput
from lumen.engine.probes.gates import Gates, GateSettings, SpanSelection
from lumen.engine.training.fit import plan_run


def one_hot(text, tokens):
    x = np.zeros((1, len(text), len(tokens)), np.float32)
    x[0, np.arange(len(text)), [tokens.index(c) for c in text]] = 1
    return x


def test_signals_of_a_bracket_sequence_are_what_counting_by_hand_gives():
    text = "(()(()))"
    found = signals(one_hot(text, ("(", ")")), ("(", ")"))
    depth, d = [], 0
    for c in text:
        d += 1 if c == "(" else -1
        depth.append(d)
    assert found["bracket depth"][0].tolist() == depth
    assert found["position"][0].tolist() == list(range(8))
    assert found["input is ')'"][0].tolist() == [float(c == ")") for c in text]
    assert found["steps since ')'"][0].tolist() == [1, 2, 0, 1, 2, 0, 0, 0]  # never seen yet: steps so far + 1


def test_values_give_position_and_each_input_column():
    x = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    found = signals(x, ())
    assert list(found) == ["position", "input 0", "input 1"]
    np.testing.assert_array_equal(found["input 1"], x[..., 1])


def test_correlations_equal_numpys_and_a_constant_unit_gives_zero():
    rng = np.random.default_rng(1)
    states = rng.normal(size=(4, 9, 5))
    states[..., 3] = 2.0  # constant
    signal = rng.normal(size=(4, 9))
    states[..., 1] = -3 * signal + 1  # perfectly anti-correlated
    r = correlations(states, signal)
    for unit in (0, 2, 4):
        expected = np.corrcoef(states[..., unit].ravel(), signal.ravel())[0, 1]
        np.testing.assert_allclose(r[unit], expected, rtol=1e-10)
    np.testing.assert_allclose(r[1], -1.0)
    assert r[3] == 0.0


def test_a_span_selects_units_high_there_and_low_elsewhere_and_finds_alike_spans():
    states = np.zeros((10, 4))
    states[3:6, 0] = 0.9  # on exactly over the span: selected
    states[3:6, 1] = 0.5  # on over the span, weaker: selected, after unit 0
    states[:, 2] = 0.8  # on everywhere: not distinctive
    states[4, 3] = 0.9  # on over part of the span only
    assert select_units(states, 3, 5, 0.3).tolist() == [0, 1]
    batch = np.zeros((3, 12, 4))
    batch[1, 2:5, :2] = 0.7  # the same pattern, the same length
    batch[2, 0:9, :2] = 0.7  # the same pattern, longer
    batch[0, 6, 0] = 0.7  # half the units only: no match
    matches = find_matches(batch, np.array([0, 1]), 0.3, length=3)
    assert [(m.sample, m.start, m.end) for m in matches] == [(1, 2, 4), (2, 0, 8)]
    assert find_matches(batch, np.array([], int), 0.3, 3) == []


def depth_counting_lstm():
    """lstm_many_to_many on brackets, its unit 5 rigged to count depth: input, forget and output gates held
    open, candidate +tanh(1) for '(' and −tanh(1) for ')', so its cell state is tanh(1) × depth."""
    torch.manual_seed(0)
    data = load_dataset("brackets")
    model = build_model(plan_run(get_preset("lstm_many_to_many"), data).spec).eval()
    lstm = model.get_submodule("lstm1.rnn")
    h, u = lstm.hidden_size, 5
    with torch.no_grad():
        for gate in (0, 1, 3):  # i, f, o
            lstm.weight_ih_l0[gate * h + u] = 0
            lstm.weight_hh_l0[gate * h + u] = 0
            lstm.bias_ih_l0[gate * h + u], lstm.bias_hh_l0[gate * h + u] = 30.0, 0.0
        lstm.weight_ih_l0[2 * h + u] = torch.tensor([1.0, -1.0])
        lstm.weight_hh_l0[2 * h + u] = 0
        lstm.bias_ih_l0[2 * h + u] = lstm.bias_hh_l0[2 * h + u] = 0.0
    return model, data, lstm


def test_sorting_by_bracket_depth_puts_the_counting_unit_first_with_the_correlation_numpy_gives():
    model, data, lstm = depth_counting_lstm()
    probe = Gates()
    probe.configure(GateSettings(sort="signal", signal="bracket depth"))
    given = ProbeInput(data.val_x[:1], "brackets #0", tokens=("(", ")"))
    validation = (data.val_x[:64], data.val_y[:64])
    frame = probe.frame(ProbeContext(model, given, data.classes, 0, validation=validation))
    assert "bracket depth" in frame.signals and frame.searched == "64 validation sequences"
    assert frame.order["l0.fwd.c"][0] == 5 and frame.correlation["l0.fwd.c"][5] > 0.999
    cells = capture_gates(lstm, data.val_x[:64]).arrays["l0.fwd.c"]  # time × batch × units
    depth = np.cumsum(data.val_x[:64, :, 0].numpy() - data.val_x[:64, :, 1].numpy(), axis=1)
    for unit in (0, 7):
        expected = np.corrcoef(cells[:, :, unit].T.ravel(), depth.ravel())[0, 1]
        np.testing.assert_allclose(frame.correlation["l0.fwd.c"][unit], expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(frame.signal, depth[0])


def test_a_deep_span_selects_the_counting_unit_and_finds_deep_spans_elsewhere():
    model, data, _ = depth_counting_lstm()
    tokens = ("(", ")")
    x = torch.from_numpy(one_hot("()(((())))()", tokens))  # depth 3–4 over steps 4–6
    probe = Gates()
    probe.configure(GateSettings(selection=SpanSelection("l0.fwd.c", 4, 6, threshold=1.5)))  # depth ≥ 2 there
    validation = (data.val_x[:64], data.val_y[:64])
    frame = probe.frame(ProbeContext(model, ProbeInput(x, "typed", tokens=tokens), data.classes, 0, validation))
    selected = frame.selected
    assert selected is not None and 5 in selected.units
    assert selected.matches and len(selected.texts) == len(selected.matches)
    depth = np.cumsum(data.val_x[:64, :, 0].numpy() - data.val_x[:64, :, 1].numpy(), axis=1)
    for match in selected.matches:  # where unit 5 is high, the brackets are at least 2 deep
        assert (depth[match.sample, match.start : match.end + 1] >= 2).all()
        assert "⟦" in selected.texts[0] and "⟧" in selected.texts[0]
