"""Gate capture (engine/explain/gates.py): every gate and state equals a step-by-step reference written from
torch's documented equations (float64, 1e-5), the output equals the module's own, and ‖∂L/∂h_t‖ equals autograd
on that reference."""

import numpy as np
import pytest
import torch
from torch import nn

from lumen.engine.explain.gates import capture_gates, hidden_gradients

T, B, F, H = 7, 3, 5, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny float64 products: threads only add synchronisation (and stall badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference(module, x, hx=None):
    """Unroll ``module`` one step at a time with explicit formulas: gates per ``l<k>.<dir>.<gate>`` (time first),
    each step's h (for gradients) and the output in the module's layout."""
    kind = "lstm" if isinstance(module, nn.LSTM) else "gru" if isinstance(module, nn.GRU) else "rnn"
    seq = x.transpose(0, 1) if module.batch_first else x
    dirs = 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0)
    out_size = proj or module.hidden_size
    if hx is None:
        h0 = seq.new_zeros(module.num_layers * dirs, seq.shape[1], out_size)
        c0 = seq.new_zeros(module.num_layers * dirs, seq.shape[1], module.hidden_size)
    else:
        h0, c0 = hx if kind == "lstm" else (hx, None)
    gates, hidden = {}, []
    for k in range(module.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx)
            b_ih = getattr(module, "bias_ih" + sfx) if module.bias else 0
            b_hh = getattr(module, "bias_hh" + sfx) if module.bias else 0
            h, c = h0[k * dirs + d], c0[k * dirs + d] if c0 is not None else None
            rec, hs = {}, [None] * seq.shape[0]
            for t in range(seq.shape[0] - 1, -1, -1) if d else range(seq.shape[0]):
                gi, gh = seq[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
                if kind == "lstm":
                    i, f, g, o = (gi + gh).chunk(4, -1)
                    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                    c = f * c + i * g
                    m = o * c.tanh()
                    h = m @ getattr(module, "weight_hr" + sfx).T if proj else m
                    step = {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h} | ({"m": m} if proj else {})
                elif kind == "gru":
                    ir, iz, in_ = gi.chunk(3, -1)
                    hr, hz, hn = gh.chunk(3, -1)
                    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
                    n = (in_ + r * hn).tanh()
                    h = (1 - z) * n + z * h
                    step = {"r": r, "z": z, "n": n, "h": h}
                else:
                    a = gi + gh
                    h = a.tanh() if module.nonlinearity == "tanh" else a.relu()
                    step = {"a": a, "h": h}
                if h.requires_grad:
                    h.retain_grad()
                hs[t] = h
                for name, value in step.items():
                    rec.setdefault(name, [None] * seq.shape[0])[t] = value
            name = "fwd" if d == 0 else "bwd"
            for gate, values in rec.items():
                gates[f"l{k}.{name}.{gate}"] = torch.stack(values)
            hidden.append(hs)
            outs.append(torch.stack(hs))
        seq = torch.cat(outs, -1)
    return gates, hidden, seq.transpose(0, 1) if module.batch_first else seq


CASES = {
    "lstm-2layer-bidir-batch-first": lambda: nn.LSTM(F, H, num_layers=2, bidirectional=True, batch_first=True),
    "lstm-proj": lambda: nn.LSTM(F, H, num_layers=2, proj_size=3),
    "lstm-proj-bidir-no-bias": lambda: nn.LSTM(F, H, proj_size=4, bidirectional=True, bias=False),
    "gru-2layer-bidir": lambda: nn.GRU(F, H, num_layers=2, bidirectional=True),
    "gru-batch-first-no-bias": lambda: nn.GRU(F, H, batch_first=True, bias=False),
    "rnn-tanh": lambda: nn.RNN(F, H, num_layers=2, bidirectional=True),
    "rnn-relu": lambda: nn.RNN(F, H, nonlinearity="relu", batch_first=True),
}


def make(case, with_state):
    torch.manual_seed(0)
    module = CASES[case]().double().eval()
    x = torch.randn((B, T, F) if module.batch_first else (T, B, F), dtype=torch.float64)
    hx = None
    if with_state:
        dirs = 2 if module.bidirectional else 1
        rows = module.num_layers * dirs
        h0 = torch.randn(rows, B, getattr(module, "proj_size", 0) or H, dtype=torch.float64)
        hx = (h0, torch.randn(rows, B, H, dtype=torch.float64)) if isinstance(module, nn.LSTM) else h0
    return module, x, hx


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
@pytest.mark.parametrize("case", CASES)
def test_gates_equal_step_by_step_reference(case, with_state):
    module, x, hx = make(case, with_state)
    trace = capture_gates(module, x, hx)
    with torch.no_grad():
        expected, _, _ = reference(module, x, hx)
        out, state = module(x, hx)
    assert set(trace.arrays) == set(expected)
    for name, value in expected.items():
        got = trace.arrays[name]
        assert got.shape == (T, B, value.shape[-1]), name
        np.testing.assert_allclose(got, value.numpy(), rtol=0, atol=1e-5, err_msg=name)
    torch.testing.assert_close(trace.output, out, rtol=0, atol=1e-6)
    for got, want in zip(
        trace.state if isinstance(state, tuple) else (trace.state,), state if isinstance(state, tuple) else (state,)
    ):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert len(trace.inputs) == module.num_layers
    np.testing.assert_array_equal(trace.input, (x.transpose(0, 1) if module.batch_first else x).numpy())
    if module.num_layers > 1:
        dirs = len(trace.directions)
        layer0 = np.concatenate([trace.arrays[f"l0.{d}.h"] for d in trace.directions], axis=-1)
        np.testing.assert_allclose(trace.inputs[1], layer0, atol=1e-12)
        assert trace.inputs[1].shape[-1] == dirs * (getattr(module, "proj_size", 0) or H)


def test_float32_output_is_the_modules_own_and_names_for_npz():
    torch.manual_seed(1)
    module = nn.LSTM(F, H, num_layers=2, bidirectional=True, batch_first=True).eval()
    x = torch.randn(B, T, F)
    trace = capture_gates(module, x)
    out, (h_n, c_n) = module(x)
    assert torch.equal(trace.output, out) and torch.equal(trace.state[0], h_n) and torch.equal(trace.state[1], c_n)
    assert trace.arrays["l1.bwd.c"].dtype == np.float32
    named = trace.named("lstm1")
    assert "lstm1.l0.fwd.f" in named and "lstm1.l1.bwd.c" in named and named["lstm1.input"].shape == (T, B, F)


def test_unbatched_input():
    torch.manual_seed(2)
    module = nn.GRU(F, H, bidirectional=True).double()
    x = torch.randn(T, F, dtype=torch.float64)
    trace = capture_gates(module, x)
    out, h_n = module(x)
    torch.testing.assert_close(trace.output, out)
    torch.testing.assert_close(trace.state, h_n)
    assert trace.arrays["l0.bwd.z"].shape == (T, 1, H)


def test_rejects_other_modules():
    with pytest.raises(TypeError):
        capture_gates(nn.Linear(3, 3), torch.zeros(2, 3))


@pytest.mark.parametrize(
    "case", ["lstm-2layer-bidir-batch-first", "lstm-proj", "gru-2layer-bidir", "rnn-tanh", "rnn-relu"]
)
def test_hidden_gradients_equal_autograd_on_reference(case):
    module, x, hx = make(case, with_state=True)
    module.train()  # the mode must come back as it was
    torch.manual_seed(3)
    dirs = 2 if module.bidirectional else 1
    head = torch.randn((getattr(module, "proj_size", 0) or H) * dirs, dtype=torch.float64)

    def loss_fn(out):  # many-to-one: only the last step reaches the loss directly
        last = out[:, -1] if module.batch_first else out[-1]
        return (last @ head).tanh().sum()

    norms = hidden_gradients(module, x, loss_fn, hx)
    assert module.training
    assert all(p.grad is None for p in module.parameters())  # .grad stays the training loop's
    _, hidden, out = reference(module, x, hx)
    loss_fn(out).backward()
    expected = np.array(
        [[[float(h.grad.norm()) for h in hidden[k * dirs + d]] for d in range(dirs)] for k in range(module.num_layers)]
    )
    assert norms.shape == (T, module.num_layers, dirs)
    np.testing.assert_allclose(norms, expected.transpose(2, 0, 1), rtol=1e-7, atol=1e-12)


def test_gradient_vanishes_back_through_time_for_a_squashing_rnn():
    torch.manual_seed(4)
    module = nn.RNN(F, H).double()
    with torch.no_grad():
        module.weight_hh_l0.mul_(0.3)
    x = torch.randn(30, B, F, dtype=torch.float64)
    norms = hidden_gradients(module, x, lambda out: out[-1].sum())[:, 0, 0]
    assert norms[-1] > 1e3 * norms[0]
