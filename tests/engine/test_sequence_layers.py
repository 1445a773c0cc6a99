"""Recurrent layers and sequence heads, checked against torch's own nn.RNN / nn.LSTM / nn.GRU."""

import pytest
import torch
from torch import nn

from lumen.engine.errors import SpecError
from lumen.engine.graph.model import build_model, infer_shapes, summarize
from lumen.engine.layers import LAYERS
from lumen.engine.presets.sequence import SEQUENCE_PRESETS
from lumen.engine.spec.model_spec import ModelSpec

PRESETS = {p.name: p for p in SEQUENCE_PRESETS}


def one_layer(layer_type: str, input_shape=(7, 3), **params) -> nn.Module:
    """The built module of a single-layer spec: input → <layer_type> node "layer"."""
    model = build_model(ModelSpec.sequential("t", input_shape, [("layer", layer_type, params)]))
    return model.layers["layer"]


# ---- presets ------------------------------------------------------------------------------------


def test_twenty_presets_cover_every_family_and_io_type():
    names = set(PRESETS)
    for family in ("rnn", "lstm", "gru", "birnn", "bilstm"):
        for io in ("one_to_one", "one_to_many", "many_to_one", "many_to_many"):
            assert f"{family}_{io}" in names
    assert len(names) == 21  # and the encoder–decoder
    for preset in SEQUENCE_PRESETS:  # (summaries and JSON round trips: tests/test_spec_and_graph.py, for every preset)
        assert "Unlike" in preset.make().description  # says how it differs from the original


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_shapes_forward_backward_and_a_training_step(name):
    torch.manual_seed(0)
    spec = PRESETS[name].make()
    model = build_model(spec)
    x = torch.rand(4, *spec.input_shape)
    out, recorded = model.forward_recording(x, model.order)
    for node_id, shape in infer_shapes(spec).items():
        assert tuple(recorded[node_id].shape[1:]) == shape, node_id
    assert sum(r.params for r in summarize(spec)) == sum(p.numel() for p in model.parameters())

    target = torch.randn_like(out)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    with torch.no_grad():
        before = nn.functional.mse_loss(model(x), target).item()
    model.train()
    for _ in range(5):
        loss = nn.functional.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = nn.functional.mse_loss(model(x), target).item()
    assert torch.isfinite(torch.tensor(after)) and after < before


# ---- recurrent layers against torch -------------------------------------------------------------


def test_bidirectional_concat_and_sum_against_plain_lstm():
    torch.manual_seed(1)
    hidden = 4
    reference = nn.LSTM(3, hidden, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(5, 7, 3)
    expected, _ = reference(x)
    concat = one_layer("lstm", hidden_size=hidden, num_layers=2, bidirectional=True, combine="concat")
    summed = one_layer("lstm", hidden_size=hidden, num_layers=2, bidirectional=True, combine="sum")
    for layer in (concat, summed):
        layer.rnn.load_state_dict(reference.state_dict())
    torch.testing.assert_close(concat(x), expected)
    torch.testing.assert_close(summed(x), expected[..., :hidden] + expected[..., hidden:])
    assert infer_shapes(
        ModelSpec.sequential(
            "t", (7, 3), [("l", "lstm", {"hidden_size": hidden, "bidirectional": True, "combine": "sum"})]
        )
    )["l"] == (7, hidden)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_last_picks_the_steps_that_saw_the_whole_sequence(bidirectional):
    # torch's h_n holds the final state of each direction: the forward's after step T, the backward's after
    # step 1; "last" must equal it, for either way of combining.
    torch.manual_seed(2)
    reference = nn.GRU(3, 6, num_layers=2, bidirectional=bidirectional, batch_first=True)
    x = torch.randn(4, 9, 3)
    _, h_n = reference(x)
    for combine in ("concat", "sum"):
        layer = one_layer(
            "gru", (9, 3), hidden_size=6, num_layers=2, bidirectional=bidirectional, combine=combine, returns="last"
        )
        layer.load_state_dict({f"rnn.{k}": v for k, v in reference.state_dict().items()})
        if not bidirectional:
            expected = h_n[-1]
        elif combine == "concat":
            expected = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        else:
            expected = h_n[-2] + h_n[-1]
        torch.testing.assert_close(layer(x), expected)


def test_state_dicts_interchange_with_plain_torch():
    reference = nn.LSTM(3, 5, batch_first=True)
    model = build_model(ModelSpec.sequential("t", (7, 3), [("lstm1", "lstm", {"hidden_size": 5})]))
    assert set(model.state_dict()) == {f"lstm1.rnn.{k}" for k in reference.state_dict()}
    model.load_state_dict({f"lstm1.rnn.{k}": v for k, v in reference.state_dict().items()}, strict=True)
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(model(x), reference(x)[0])


def test_relu_rnn_matches_torch():
    torch.manual_seed(3)
    reference = nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
    layer = one_layer("rnn", hidden_size=4, nonlinearity="relu")
    layer.rnn.load_state_dict(reference.state_dict())
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(layer(x), reference(x)[0])


def test_lstm_trace_reproduces_torch():
    torch.manual_seed(4)
    layer = one_layer("lstm", hidden_size=6)
    x = torch.randn(3, 7, 3)
    with torch.no_grad():
        trace = layer.lstm_trace(x)
        out, (h_n, c_n) = layer.rnn(x)
    assert {k: v.shape for k, v in trace.items()} == {
        k: (3, 7, 6) for k in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
    }
    torch.testing.assert_close(trace["hidden"], out, atol=1e-5, rtol=0)
    torch.testing.assert_close(trace["cell"][:, -1], c_n[0], atol=1e-5, rtol=0)
    for gate in ("input_gate", "forget_gate", "output_gate"):
        assert ((trace[gate] > 0) & (trace[gate] < 1)).all()


def test_lstm_trace_of_a_deep_bidirectional_layer_is_layer_0_forward():
    torch.manual_seed(5)
    layer = one_layer("lstm", hidden_size=4, num_layers=2, bidirectional=True)
    first = nn.LSTM(3, 4, batch_first=True)  # layer 0's forward direction alone
    first.load_state_dict({k: v for k, v in layer.rnn.state_dict().items() if k.endswith("_l0")})
    x = torch.randn(2, 7, 3)
    with torch.no_grad():
        out, (_, c_n) = first(x)
        trace = layer.lstm_trace(x)
    torch.testing.assert_close(trace["hidden"], out, atol=1e-5, rtol=0)
    torch.testing.assert_close(trace["cell"][:, -1], c_n[0], atol=1e-5, rtol=0)


# ---- heads --------------------------------------------------------------------------------------


def test_seq_pool_and_repeat():
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(one_layer("seq_pool", mode="last")(x), x[:, 6])
    torch.testing.assert_close(one_layer("seq_pool", mode="mean")(x), x.sum(1) / 7)
    torch.testing.assert_close(one_layer("seq_pool", mode="max")(x), x.max(dim=1).values)
    v = torch.randn(2, 3)
    repeated = one_layer("repeat", (3,), steps=4)(v)
    assert repeated.shape == (2, 4, 3)
    for t in range(4):
        torch.testing.assert_close(repeated[:, t], v)


def test_recurrent_multiply_accumulates():
    # per step and direction: gates · H · (input + H), layer 0 reading F features, layer 1 reading 2H
    params = LAYERS["lstm"].resolve({"hidden_size": 4, "num_layers": 2, "bidirectional": True})
    assert LAYERS["lstm"].macs(params, [(7, 3)], (7, 8)) == 7 * 2 * (4 * 4 * (3 + 4) + 4 * 4 * (8 + 4))
    params = LAYERS["rnn"].resolve({"hidden_size": 5})
    assert LAYERS["rnn"].macs(params, [(7, 3)], (7, 5)) == 7 * 5 * (3 + 5)


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input_shape, layers, message",
    [
        (
            (1, 28, 28),
            [("rnn1", "rnn", {"hidden_size": 8})],
            "rnn1: rnn expects a steps×features sequence, got 1×28×28; an image must first be reshaped",
        ),
        ((8,), [("gru1", "gru", {"hidden_size": 8})], "gru1: gru expects a steps×features sequence, got 8; a repeat"),
        ((20, 8), [("rep", "repeat", {"steps": 3})], "rep: repeat expects a vector of features, got 20×8"),
        ((8,), [("pool", "seq_pool", {})], "pool: seq_pool expects a steps×features sequence, got 8"),
        ((20, 8), [("lstm1", "lstm", {})], "lstm1: lstm needs the parameter hidden_size"),
        ((20, 8), [("lstm1", "lstm", {"hidden_size": 4, "dropout": 0.3})], "lstm1: dropout acts between stacked"),
        (
            (20, 8),
            [("lstm1", "lstm", {"hidden_size": 4, "combine": "mean"})],
            'lstm1: combine must be one of "concat", "sum", got \'mean\'',
        ),
        ((20, 8), [("lstm1", "lstm", {"hidden_size": 4, "returns": "first"})], "lstm1: returns must be one of"),
        (
            (20, 8),
            [("gru1", "gru", {"hidden_size": 4, "nonlinearity": "relu"})],
            "gru1: unknown parameter nonlinearity",
        ),
        (
            (20, 8),
            [("rnn1", "rnn", {"hidden_size": 4, "nonlinearity": "sigmoid"})],
            "rnn1: nonlinearity must be one of",
        ),
        ((20, 8), [("rnn1", "rnn", {"hidden_size": 0})], "rnn1: hidden_size must be a positive whole number"),
        ((20, 8), [("rnn1", "rnn", {"hidden_size": 4, "bidirectional": "yes"})], "rnn1: bidirectional must be true"),
        ((20, 8), [("pool", "seq_pool", {"mode": "min"})], 'pool: mode must be one of "last", "mean", "max"'),
    ],
)
def test_bad_sequence_specs_name_the_node_and_the_reason(input_shape, layers, message):
    spec = ModelSpec.sequential("bad", input_shape, layers)
    with pytest.raises(SpecError) as error:
        infer_shapes(spec)
    assert message in str(error.value)
    assert error.value.node == layers[0][0]
