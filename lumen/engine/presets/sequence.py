"""Sequence presets: RNN, LSTM, GRU, BiRNN and BiLSTM in each of the four input/output types.

One factory builds all twenty (``<family>_<io type>``, e.g. ``lstm_many_to_one``), plus one
encoder–decoder. They are deliberately small (20 steps × 8 features in, hidden size 32, 5 outputs) so
they train on a CPU in seconds on synthetic or toy sequence data.

Each preset's description says how its family differs from the classic original (``DIFFERENCES``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lumen.engine.presets.preset import Preset
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.spec.shapes import fmt

STEPS, FEATURES, HIDDEN, OUTPUTS = 20, 8, 32, 5

# family -> (layer type, bidirectional, combine, display name)
FAMILIES = {
    "rnn": ("rnn", False, "concat", "RNN"),
    "lstm": ("lstm", False, "concat", "LSTM"),
    "gru": ("gru", False, "concat", "GRU"),
    "birnn": ("rnn", True, "sum", "BiRNN"),
    "bilstm": ("lstm", True, "concat", "BiLSTM"),
}
DIFFERENCES = {
    "rnn": "Unlike Elman (1990): tanh rather than logistic units, two bias vectors (torch's b_ih and b_hh) "
    "where the paper has one, and full back-propagation through time rather than truncated.",
    "lstm": "Unlike Hochreiter & Schmidhuber (1997): the modern LSTM torch implements, with the forget gate "
    "Gers et al. added in 2000 and without peephole connections.",
    "gru": "Unlike Cho et al. (2014): torch applies the reset gate after the recurrent product, "
    "n = tanh(Wx + b + r ⊙ (Uh + b_n)), where the paper has U(r ⊙ h) (cuDNN's variant).",
    "birnn": "Unlike Schuster & Paliwal (1997): the two directions are summed, the course's "
    "p_t = p_t^f + p_t^b; the paper feeds both to the output layer, i.e. concatenates them "
    "(a linear head on the sum ties the two directions' output weights).",
    "bilstm": "Unlike Graves & Schmidhuber (2005) only in the cells, torch's: a forget gate and no peepholes; "
    "the directions are concatenated as in the paper.",
}

CHRONO = "; gates start chrono-initialised (forget bias 5, input bias −5) to remember across long gaps"
RECALL_STEPS, RECALL_COUNT = 50, 10_000  # recall by default: a gap a vanilla RNN fails on most seeds and this
# LSTM learns on every one, with enough sequences to learn it from (2,000 were too few for either)

# io type -> (input shape, what comes out, how it is wired)
IO_TYPES = {
    "one_to_one": (
        (1, FEATURES),
        f"{OUTPUTS} scores",
        "a single step in, one output out: the recurrence is never used, so the recurrent layer acts "
        "as a feed-forward layer (the first picture in Karpathy's diagram)",
    ),
    "one_to_many": (
        (FEATURES,),
        f"{STEPS}×{OUTPUTS} per-step outputs",
        f"one vector in (say an image's features), a sequence out (a caption); the vector is repeated "
        f"at each of {STEPS} steps rather than the previous output fed back",
    ),
    "many_to_one": (
        (STEPS, FEATURES),
        f"{OUTPUTS} scores",
        "a sequence in, one output (a sentiment, a class): the step(s) that have seen the whole "
        "sequence feed a linear head",
    ),
    "many_to_many": (
        (STEPS, FEATURES),
        f"{STEPS}×{OUTPUTS} per-step outputs",
        "a sequence in, an output at every step (tagging each word): a linear head on every step",
    ),
}


def sequence_model(family: str, io: str) -> ModelSpec:
    cell, bidirectional, combine, title = FAMILIES[family]
    input_shape, output, how = IO_TYPES[io]
    recurrent = {
        "hidden_size": HIDDEN,
        "bidirectional": bidirectional,
        "combine": combine,
        "returns": "last" if io in ("one_to_one", "many_to_one") else "sequence",
    }
    if family == "lstm" and io == "many_to_one":
        # Chrono initialisation (Tallec & Ollivier 2018): forget gates open, input gates mostly shut, so a token
        # seen early survives a long gap of distractors (recall: benchmarks/recall_rnn_vs_lstm.py).
        recurrent.update(forget_bias=5.0, input_bias=-5.0)
    layers: list[tuple[str, str, dict[str, Any]]] = []
    if io == "one_to_many":
        layers.append(("repeat", "repeat", {"steps": STEPS}))
    layers += [(f"{cell}1", cell, recurrent), ("head", "linear", {"out_features": OUTPUTS})]
    bi = (
        f"; directions {'summed (p_t = p_t^f + p_t^b)' if combine == 'sum' else 'concatenated'}"
        if bidirectional
        else ""
    )
    return ModelSpec.sequential(
        f"{title} {io.replace('_', '-')}",
        input_shape,
        layers,
        description=f"{title}, {io.replace('_', ' ')}: {how}. {fmt(input_shape)} in, {output} out; "
        f"hidden size {HIDDEN}{bi}{CHRONO if 'forget_bias' in recurrent else ''}. {DIFFERENCES[family]}",
    )


def encoder_decoder() -> ModelSpec:
    """Sutskever et al. 2014 in miniature: the encoder's last state, repeated, is the decoder's input at every
    step (Cho et al.'s context vector) instead of initialising the decoder's state and feeding back outputs;
    one LSTM layer each instead of four, and output length fixed by the repeat node."""
    out_steps = 10
    return ModelSpec.sequential(
        "LSTM encoder–decoder",
        (STEPS, FEATURES),
        [
            ("encoder", "lstm", {"hidden_size": HIDDEN, "returns": "last"}),
            ("repeat", "repeat", {"steps": out_steps}),
            ("decoder", "lstm", {"hidden_size": HIDDEN, "returns": "sequence"}),
            ("head", "linear", {"out_features": OUTPUTS}),
        ],
        description=f"LSTM encoder–decoder (many-to-many of another length): {STEPS}×{FEATURES} in, "
        f"{out_steps}×{OUTPUTS} out; the encoder's final hidden state, repeated, feeds the decoder. "
        f"Unlike Sutskever et al. (2014): one layer each rather than four, the context vector is "
        f"the decoder's input at every step (as in Cho et al.) rather than its initial state, "
        f"and no outputs are fed back.",
    )


def _summary(family: str, io: str) -> str:
    title, (input_shape, output, _) = FAMILIES[family][3], IO_TYPES[io]
    return f"{title} {io.replace('_', '-')}: {fmt(input_shape)} in, {output} out"


# io type -> (dataset, loader options, objective) each preset trains on by default; fitting to the data
# (engine.training.fit) resizes the input and the head. Many-to-many: unidirectional models forecast sine waves,
# the LSTM and the bidirectional ones tag bracket depth (a forecaster must not see the future).
DEFAULT_DATA: dict[str, tuple[str, dict[str, Any], str]] = {
    "one_to_one": ("text", {"steps": 1, "target": "next"}, "classification"),  # a bigram model of characters
    "one_to_many": ("sine", {"form": "generate"}, "forecast"),  # a wave's parameters in, the wave out
    "many_to_one": ("recall", {"steps": RECALL_STEPS, "count": RECALL_COUNT}, "classification"),
    "many_to_many": ("sine", {}, "forecast"),
}


def _default_data(family: str, io: str) -> dict[str, Any]:
    dataset, options, objective = DEFAULT_DATA[io]
    if io == "many_to_many" and (family == "lstm" or FAMILIES[family][1]):
        dataset, options, objective = "brackets", {}, "classification"
    if io == "many_to_one" and family == "gru":
        dataset, options, objective = "adding", {}, "forecast"
    return {"dataset": dataset, "data_options": options, "objective": objective}


SEQUENCE_PRESETS: list[Preset] = [
    *(
        Preset(f"{family}_{io}", _summary(family, io), partial(sequence_model, family, io), **_default_data(family, io))
        for family in FAMILIES
        for io in IO_TYPES
    ),
    Preset(
        "lstm_encoder_decoder",
        f"LSTM encoder–decoder: {STEPS}×{FEATURES} in, 10×{OUTPUTS} out",
        encoder_decoder,
        dataset="reverse",
        objective="seq2seq",
    ),
]
