"""Recurrent modules: torch's RNN/LSTM/GRU with a choice of what they return, and the sequence heads.

Weights interchange with plain torch: ``Recurrent`` keeps torch's own ``nn.RNN``/``nn.LSTM``/``nn.GRU`` as its
child ``rnn``, so its state-dict keys are torch's with an ``rnn.`` prefix (a node ``lstm1`` holds
``lstm1.rnn.weight_ih_l0``), and ``layer.rnn.load_state_dict(plain_lstm.state_dict())`` loads directly.
"""

import torch
from torch import nn

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Recurrent(nn.Module):
    """torch's RNN/LSTM/GRU (child ``rnn``, batch first) plus how directions combine and what it returns.

    ``cell``: "rnn", "lstm" or "gru". ``combine``: "concat" gives 2H features per step, "sum" gives H
    (p_t = p_t^f + p_t^b). ``returns``: "sequence" (T×H') or "last": the forward direction's last step and,
    for a bidirectional layer, the backward direction's *first* step — the only steps that have seen the
    whole sequence. ``nonlinearity`` (tanh or relu) applies to the plain rnn cell only.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        combine: str = "concat",
        returns: str = "sequence",
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](
            input_size,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=True,
            **extra,
        )
        self.combine, self.returns = combine, returns
        # Truncated backpropagation through time: while ``carry`` is on, each call starts from the state the
        # previous call ended in (``state``, detached, so gradients stop at the chunk's start); off: from zeros.
        self.carry = False
        self.state: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, last = self.rnn(x, self.state if self.carry else None)  # B×T×(directions·H)
        if self.carry:
            self.state = tuple(t.detach() for t in last) if isinstance(last, tuple) else last.detach()
        if not self.rnn.bidirectional:
            return out[:, -1] if self.returns == "last" else out
        forward, backward = out.chunk(2, dim=-1)
        if self.returns == "last":
            forward, backward = forward[:, -1], backward[:, 0]
        return torch.cat([forward, backward], dim=-1) if self.combine == "concat" else forward + backward

    def extra_repr(self) -> str:
        return f"combine={self.combine}, returns={self.returns}"


class LSTMLayer(Recurrent):
    """An lstm ``Recurrent`` that can also replay its gates (``lstm_trace``).

    ``forget_bias``: the forget gates' bias starts here (in ``bias_ih``; ``bias_hh`` keeps torch's small random
    values), so the cell keeps what it holds from the first step (Gers et al. 2000; Jozefowicz et al. 2015
    recommend 1). ``input_bias``: the input gates' likewise; a negative one starts them mostly shut, so the cell
    is written only where the input learns to open them (Tallec & Ollivier 2018's "chrono" initialisation pairs
    a forget bias b with an input bias −b). 0 is torch's own initialisation for both."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        combine: str = "concat",
        returns: str = "sequence",
        forget_bias: float = 0.0,
        input_bias: float = 0.0,
    ):
        super().__init__(
            "lstm",
            input_size,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            dropout=dropout,
            combine=combine,
            returns=returns,
        )
        self.forget_bias, self.input_bias = forget_bias, input_bias
        if (forget_bias or input_bias) and self.rnn.bias:
            hidden = self.rnn.hidden_size
            with torch.no_grad():
                for name, bias in self.rnn.named_parameters():
                    if name.startswith("bias_ih"):  # torch's gate order: input, forget, cell, output
                        if input_bias:
                            bias[:hidden] = input_bias
                        if forget_bias:
                            bias[hidden : 2 * hidden] = forget_bias

    def lstm_trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gates and cell states of layer 0's forward direction at every step, each B×T×H.

        Unrolls torch's equations with the layer's own weights (gate order i, f, g, o as torch stores them):
        i, f, o = σ(·), g = tanh(·), c_t = f·c_{t−1} + i·g, h_t = o·tanh(c_t). Call it under
        ``torch.no_grad()`` unless gradients through the gates are wanted.
        """
        lstm = self.rnn
        weight_ih, weight_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
        bias = lstm.bias_ih_l0 + lstm.bias_hh_l0 if lstm.bias else 0
        batch, hidden = x.shape[0], lstm.hidden_size
        h = x.new_zeros(batch, hidden)
        c = x.new_zeros(batch, hidden)
        steps: dict[str, list[torch.Tensor]] = {
            k: [] for k in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
        }
        for t in range(x.shape[1]):
            i, f, g, o = (x[:, t] @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=-1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            for key, value in zip(steps, (i, f, g, o, c, h)):
                steps[key].append(value)
        return {key: torch.stack(values, dim=1) for key, values in steps.items()}


class SequencePool(nn.Module):
    """steps×features → features: the last step, or the mean or maximum over steps."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "last":
            return x[:, -1]
        return x.mean(dim=1) if self.mode == "mean" else x.amax(dim=1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}"


class Repeat(nn.Module):
    """features → steps×features: the same vector at every step (a one-to-many decoder's input)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).repeat(1, self.steps, 1)

    def extra_repr(self) -> str:
        return f"steps={self.steps}"
