"""Inside recurrent layers: the gates and states of ``nn.LSTM``/``nn.GRU``/``nn.RNN`` at every step, and the
gradient ‖∂L/∂h_t‖ flowing back through time.

``capture_gates`` keeps torch's fused kernel for the recurrence: each stacked layer runs once as a one-layer
call sharing that layer's weights (so its output, and the next layer's input, are exactly what the module
computes), then the gates come back from the recorded hidden states with batched matrix products over all
steps (input and hidden projections, two per direction). Only the LSTM cell state needs a scan over time,
and that scan is elementwise.

Arrays are time × batch × units whatever ``batch_first`` says, named ``l<k>.<fwd|bwd>.<gate>``:
LSTM ``i f g o c h`` (and ``m = o·tanh(c)`` before the projection when ``proj_size`` is set), GRU ``r z n h``,
RNN ``a h`` (pre-activation and hidden state). The backward direction's arrays are indexed by true time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import _VF, nn

Recurrent = nn.LSTM | nn.GRU | nn.RNN
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

GATES = {"lstm": ("i", "f", "g", "o", "c", "h"), "gru": ("r", "z", "n", "h"), "rnn": ("a", "h")}


@dataclass
class RecurrentTrace:
    """What ``capture_gates`` recorded. ``arrays``: ``l<k>.<dir>.<gate>`` → time × batch × units;
    ``inputs[k]``: the sequence layer k received (time × batch × features); ``output``/``state``: what
    ``module(x, hx)`` returns, in the module's own layout (tensors, detached)."""

    kind: str  # "lstm", "gru" or "rnn"
    num_layers: int
    directions: tuple[str, ...]  # ("fwd",) or ("fwd", "bwd")
    arrays: dict[str, np.ndarray]
    inputs: list[np.ndarray]
    output: torch.Tensor
    state: State
    gates: tuple[str, ...] = field(default=())

    @property
    def input(self) -> np.ndarray:
        """The sequence the module received, time × batch × features."""
        return self.inputs[0]

    def named(self, prefix: str) -> dict[str, np.ndarray]:
        """Every array under ``<prefix>.<name>``, plus ``<prefix>.input``: ready for ``np.savez``."""
        named = {f"{prefix}.{name}": array for name, array in self.arrays.items()}
        named[f"{prefix}.input"] = self.input
        return named


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.LSTM):
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return "rnn"
    raise TypeError(f"expected nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}")


def _proj(module: nn.Module) -> int:
    return module.proj_size if isinstance(module, nn.LSTM) else 0


def _weights(module: Recurrent, layer: int, reverse: bool) -> list[torch.Tensor]:
    """Layer ``layer``'s weights for one direction, in the order torch's kernels take them."""
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if module.bias else [])
    if _proj(module):
        names.append("weight_hr")
    return [getattr(module, name + suffix) for name in names]


def _time_first(
    module: Recurrent, x: torch.Tensor, hx: State | None
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], bool]:
    """x as time × batch × features; the initial state as a tuple, (h0,) or (h0, c0), zeros where none was
    given; whether x was unbatched (torch accepts time × features)."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise TypeError("packed sequences are not supported: pad them")
    unbatched = x.dim() == 2
    state: tuple[torch.Tensor, ...] | None = None if hx is None else hx if isinstance(hx, tuple) else (hx,)
    if unbatched:
        x = x.unsqueeze(1)
        state = None if state is None else tuple(s.unsqueeze(1) for s in state)
    elif module.batch_first:
        x = x.transpose(0, 1)
    if state is None:
        size = (module.num_layers * (2 if module.bidirectional else 1), x.shape[1])
        h0 = x.new_zeros(*size, _proj(module) or module.hidden_size)
        state = (h0, x.new_zeros(*size, module.hidden_size)) if isinstance(module, nn.LSTM) else (h0,)
    return x, state, unbatched


def _run_layer(
    module: Recurrent, kind: str, layer: int, x: torch.Tensor, state: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One stacked layer through torch's fused kernel (time first, no dropout): output T×B×(D·H'), final state."""
    weights = _weights(module, layer, False)
    if module.bidirectional:
        weights += _weights(module, layer, True)
    args = (weights, module.bias, 1, 0.0, False, module.bidirectional, False)
    if kind == "lstm":
        out, h, c = _VF.lstm(x, state, *args)
        return out, (h, c)
    if kind == "gru":
        out, h = _VF.gru(x, state[0], *args)
    elif module.nonlinearity == "tanh":
        out, h = _VF.rnn_tanh(x, state[0], *args)
    else:
        out, h = _VF.rnn_relu(x, state[0], *args)
    return out, (h,)


def _double_candidate(w: torch.Tensor, units: int) -> torch.Tensor:
    """A copy of an LSTM weight or bias with the candidate's rows (third quarter) times 2."""
    w = w.clone()
    w[2 * units : 3 * units] *= 2
    return w


def _project(out: torch.Tensor, w: torch.Tensor, h: torch.Tensor, h0: torch.Tensor, reverse: bool) -> torch.Tensor:
    """out += h_{t−1}·wᵀ at every step t, in place: one product over all steps (rows are time-major, T·B),
    plus one for the initial state; h_{t−1} is h shifted by one step, so nothing is copied."""
    batch = h0.shape[0]
    h = h.flatten(0, 1)  # a view: h may be one direction's half of the kernel's output, a strided matrix
    if reverse:  # this direction's previous step is t+1
        out[:-batch].addmm_(h[batch:], w.T)
        out[-batch:].addmm_(h0, w.T)
    else:
        out[batch:].addmm_(h[:-batch], w.T)
        out[:batch].addmm_(h0, w.T)
    return out


@torch.no_grad()
def capture_gates(module: nn.Module, x: torch.Tensor, hx: State | None = None) -> RecurrentTrace:
    """Run ``module`` (an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``) on ``x`` and record its gates and states.

    Dropout between layers is off whatever the module's mode (an eval pass); ``output``/``state`` equal
    ``module.eval()(x, hx)``. Float arrays in the module's dtype, on the CPU.
    """
    kind = _kind(module)
    assert isinstance(module, nn.LSTM | nn.GRU | nn.RNN)
    seq, state, unbatched = _time_first(module, x, hx)
    directions = ("fwd", "bwd") if module.bidirectional else ("fwd",)
    count = len(directions)
    arrays: dict[str, np.ndarray] = {}
    inputs: list[np.ndarray] = []
    finals: list[tuple[torch.Tensor, ...]] = []
    for layer in range(module.num_layers):
        layer_state = tuple(s[layer * count : (layer + 1) * count] for s in state)
        out, final = _run_layer(module, kind, layer, seq, layer_state)
        inputs.append(seq.cpu().numpy())
        finals.append(final)
        width = out.shape[-1] // count
        for d, direction in enumerate(directions):
            weights = _weights(module, layer, d == 1)
            h0 = tuple(s[d] for s in layer_state)
            gates = _recover(kind, module, weights, seq, out[..., d * width : (d + 1) * width], h0, d == 1)
            for gate, value in gates.items():
                arrays[f"l{layer}.{direction}.{gate}"] = value.cpu().numpy()
        seq = out
    output = seq.squeeze(1) if unbatched else seq.transpose(0, 1) if module.batch_first else seq
    final_state = tuple(torch.cat([f[i] for f in finals]) for i in range(len(state)))
    if unbatched:
        final_state = tuple(s.squeeze(1) for s in final_state)
    result: State = (final_state[0], final_state[1]) if kind == "lstm" else final_state[0]
    return RecurrentTrace(kind, module.num_layers, directions, arrays, inputs, output, result, GATES[kind])


def _recover(
    kind: str,
    module: Recurrent,
    weights: list[torch.Tensor],
    x: torch.Tensor,
    h: torch.Tensor,
    h0: tuple[torch.Tensor, ...],
    reverse: bool,
) -> dict[str, torch.Tensor]:
    """One layer-direction's gates from its input x (T×B×F) and the hidden states the kernel produced
    (h: T×B×H', true time order): batched products over all steps, then activations."""
    steps, batch = h.shape[0], h.shape[1]
    w_ih, w_hh = weights[0], weights[1]
    b_ih, b_hh = (weights[2], weights[3]) if module.bias else (None, None)
    flat = x.flatten(0, 1)
    if kind != "lstm":
        pre = torch.addmm(b_ih, flat, w_ih.T) if b_ih is not None else flat @ w_ih.T
    if kind == "gru":
        # torch's GRU applies the reset gate to the hidden projection *including* its bias b_hn, so the
        # hidden projection stays apart from the input one.
        hidden = b_hh.expand(pre.shape).clone() if b_hh is not None else torch.zeros_like(pre)
        _project(hidden, w_hh, h, h0[0], reverse)
        pre, hidden = pre.view(steps, batch, 3, -1), hidden.view(steps, batch, 3, -1)
        rz = pre[:, :, :2].add_(hidden[:, :, :2]).sigmoid_()
        n = pre[:, :, 2].addcmul_(rz[:, :, 0], hidden[:, :, 2]).tanh_()
        return {"r": rz[:, :, 0], "z": rz[:, :, 1], "n": n, "h": h}
    if kind == "rnn":
        if b_hh is not None:
            pre += b_hh
        return {"a": _project(pre, w_hh, h, h0[0], reverse).view(steps, batch, -1), "h": h}
    # torch's tanh costs about 6× its sigmoid on a CPU, so g = tanh(x) comes as 2σ(2x) − 1 (within an ulp of
    # 1): the candidate's rows of the weights and bias are doubled (exact, a power of two), one sigmoid covers
    # all four gates in one contiguous pass, and g is rescaled after.
    units = module.hidden_size
    pre = flat @ _double_candidate(w_ih, units).T
    if b_ih is not None and b_hh is not None:
        pre += _double_candidate(b_ih + b_hh, units)
    pre = _project(pre, _double_candidate(w_hh, units), h, h0[0], reverse).sigmoid_().view(steps, batch, 4, units)
    # Views of one buffer (PyTorch's gate order i, f, g, o).
    i, f, g, o = pre[:, :, 0], pre[:, :, 1], pre[:, :, 2].mul_(2).sub_(1), pre[:, :, 3]
    # c_t = f_t·c_{t−1} + i_t·g_t has no closed form over t that stays stable (dividing by products of f
    # underflows), so scan it: one elementwise op per step, no matrix products.
    c = i * g
    cells, forgets = c.unbind(0), f.unbind(0)  # per-step views, taken in one call
    c_prev = h0[1]
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        c_prev = cells[t].addcmul_(forgets[t], c_prev)
    gates = {"i": i, "f": f, "g": g, "o": o, "c": c, "h": h}
    if _proj(module):
        gates["m"] = o * torch.tanh(c)
    return gates


def _cell_step(
    kind: str, module: Recurrent, weights: list[torch.Tensor], x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of one layer-direction with torch's own cell functions (differentiable)."""
    b_ih, b_hh = (weights[2], weights[3]) if module.bias else (None, None)
    if kind == "lstm" and _proj(module):
        # torch.lstm_cell has no projection: the same equations by hand, then h = W_hr·(o·tanh c).
        assert c is not None
        i, f, g, o = (nn.functional.linear(x, weights[0], b_ih) + nn.functional.linear(h, weights[1], b_hh)).chunk(
            4, -1
        )
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return (torch.sigmoid(o) * torch.tanh(c)) @ weights[-1].T, c
    if kind == "lstm":
        assert c is not None
        return torch.lstm_cell(x, (h, c), weights[0], weights[1], b_ih, b_hh)
    if kind == "gru":
        return torch.gru_cell(x, h, weights[0], weights[1], b_ih, b_hh), None
    cell = torch.rnn_tanh_cell if module.nonlinearity == "tanh" else torch.rnn_relu_cell
    return cell(x, h, weights[0], weights[1], b_ih, b_hh), None


def hidden_gradients(
    module: nn.Module,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    hx: State | None = None,
) -> np.ndarray:
    """‖∂L/∂h_t‖ (over batch and units) for every step, layer and direction: time × layers × directions.

    ``loss_fn`` maps the module's ordinary output (its own layout; no dropout) to a scalar; for a many-to-one
    model it reads the last step, and the curve shows how much of that loss reaches each earlier step. The
    gradient is the total one, through the next step and the layer above.

    A fused kernel hides its intermediate states from autograd, so this unrolls the steps with torch's cell
    functions (``torch.lstm_cell`` etc.): no cuDNN, hence no eval-mode refusal on CUDA, and the module's mode
    and parameters' ``.grad`` are left untouched (``torch.autograd.grad``).
    """
    kind = _kind(module)
    assert isinstance(module, nn.LSTM | nn.GRU | nn.RNN)
    seq, state, unbatched = _time_first(module, x.detach(), hx)
    directions = 2 if module.bidirectional else 1
    steps = seq.shape[0]
    hidden: list[list[torch.Tensor]] = []  # per layer-direction, per true time step
    with torch.enable_grad():
        for layer in range(module.num_layers):
            outs = []
            for d in range(directions):
                row = layer * directions + d
                weights = _weights(module, layer, d == 1)
                # The initial state requires grad so the graph exists even when every parameter is frozen.
                h = state[0][row].detach().requires_grad_()
                c = state[1][row].detach() if kind == "lstm" else None
                per_step: list[torch.Tensor] = [h] * steps
                for t in range(steps - 1, -1, -1) if d == 1 else range(steps):
                    h, c = _cell_step(kind, module, weights, seq[t], h, c)
                    per_step[t] = h
                hidden.append(per_step)
                outs.append(torch.stack(per_step))
            seq = torch.cat(outs, dim=-1)
        output = seq.squeeze(1) if unbatched else seq.transpose(0, 1) if module.batch_first else seq
        flat = [h for per_step in hidden for h in per_step]
        grads = torch.autograd.grad(loss_fn(output), flat, allow_unused=True)
    norms = [0.0 if g is None else float(torch.linalg.vector_norm(g)) for g in grads]
    return np.asarray(norms).reshape(module.num_layers, directions, steps).transpose(2, 0, 1).copy()


def recurrent_modules(model: nn.Module) -> list[tuple[str, nn.RNNBase]]:
    """Every ``nn.LSTM``/``nn.GRU``/``nn.RNN`` in ``model``, by its dotted name (its state-dict prefix)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.LSTM | nn.GRU | nn.RNN)]


def received_inputs(
    model: nn.Module, modules: list[tuple[str, nn.RNNBase]], x: torch.Tensor
) -> dict[str, tuple[torch.Tensor, State | None]]:
    """What each of ``modules`` receives (its input and initial state) when the whole model runs on ``x`` in no-grad
    mode, so the layers before it apply; a module called more than once keeps its first call. The model's mode is
    left as it is."""
    received: dict[str, tuple[torch.Tensor, State | None]] = {}

    def recorder(name: str) -> Callable[[nn.Module, tuple, dict], None]:
        def hook(_module: nn.Module, args: tuple, kwargs: dict) -> None:
            if name not in received:
                hx = args[1] if len(args) > 1 else kwargs.get("hx")
                received[name] = (args[0] if args else kwargs["input"], hx)

        return hook

    handles = [module.register_forward_pre_hook(recorder(name), with_kwargs=True) for name, module in modules]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return received
