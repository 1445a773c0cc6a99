"""``lumen gates RUN (--sample K | --sequence FILE.csv | --text "...") --out GATES.npz``: the gates and states of
every recurrent module of a run (``nn.LSTM``/``nn.GRU``/``nn.RNN``) at every step, for one input sequence.

The whole model runs on the input; a hook records what each recurrent module receives (after the layers before
it), and ``engine.explain.gates.capture_gates`` replays the module on that. The .npz holds
``<layer>.l<k>.<fwd|bwd>.<gate>`` (time × batch × units; ``<layer>`` is the module's name in the run's
weights.safetensors, e.g. ``lstm1.rnn``) and ``<layer>.input`` (time × batch × features). A module called more
than once in one pass is recorded at its first call."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lumen.cli.common import check_outputs
from lumen.cli.parser import Command, whole

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lumen.engine.data.datasets import Dataset
    from lumen.engine.graph.model import GraphModel


def define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a run folder (from train or import) with an LSTM, GRU or RNN")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sample", type=whole(0, 10**9), help="validation sample K of the run's dataset")
    source.add_argument(
        "--sequence", type=Path, help="a CSV of numbers: one row per time step, one column per input feature"
    )
    source.add_argument("--text", help="character models: the text, one-hot encoded over the data's vocabulary")
    parser.add_argument("--out", required=True, type=Path, help=".npz to write: <layer>.l<k>.<fwd|bwd>.<gate> arrays")


def run(args: argparse.Namespace) -> None:
    import numpy as np

    from lumen.engine.errors import DataError
    from lumen.engine.explain.gates import capture_gates, received_inputs, recurrent_modules
    from lumen.engine.io.runs import open_run, read_run_info
    from lumen.engine.untrusted import atomic_write, printable

    written = check_outputs(("--out", args.out))
    info = read_run_info(args.run)
    model = open_run(args.run)
    model.eval()
    found = recurrent_modules(model)
    if not found:
        raise DataError(f"{printable(str(args.run))} has no recurrent layer (LSTM, GRU or RNN) to look inside")
    x, what = _input(args, model, info)
    _check_size(found, x)
    received = received_inputs(model, found, x)
    arrays: dict[str, np.ndarray] = {}
    lines = []
    for name, module in found:
        if name not in received:
            continue  # not on the path from the input to the output
        inputs, hx = received[name]
        trace = capture_gates(module, inputs, hx)
        arrays.update(trace.named(name))
        steps = trace.input.shape[0]
        layers = f"{trace.num_layers} layer{'s' if trace.num_layers != 1 else ''}"
        lines.append(
            f"{printable(name)}: {trace.kind.upper()}, {layers}, {'+'.join(trace.directions)}, "
            f"{module.hidden_size} units, {steps} steps ({', '.join(trace.gates)})"
        )
    with atomic_write(written[0]) as temp, open(temp, "wb") as f:  # a file object: np.savez adds no ".npz"
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub takes allow_pickle for any keyword
    for line in lines:
        print(line)
    print(f"{len(arrays)} arrays for {what}: wrote {printable(str(written[0]))}")


def _input(args: argparse.Namespace, model: GraphModel, info: dict) -> tuple[torch.Tensor, str]:
    """The chosen input as a batch of one (1×T×F, or the model's own input shape for a sample), and its words."""
    import torch

    from lumen.engine.data.user_sequences import character_vocabulary, csv_sequence, one_hot_text
    from lumen.engine.errors import DataError
    from lumen.engine.graph.model import input_dtype
    from lumen.engine.untrusted import printable, shown

    spec = model.spec
    run_name = printable(str(args.run))
    if args.sample is not None:
        data = _data(model, info)
        count = len(data.val_x)
        if args.sample >= count:
            last = f"0 to {count - 1:,}" if count else "none"
            raise DataError(
                f"--sample {args.sample:,} is out of range: the validation set of {printable(data.name)} has "
                f"{count:,} samples ({last})"
            )
        return data.val_x[args.sample : args.sample + 1], f"validation sample #{args.sample}"
    shape = tuple(spec.input_shape)
    if len(shape) != 2 or input_dtype(spec) != torch.float32:
        takes = "token ids" if input_dtype(spec) != torch.float32 else "×".join(map(str, shape))
        raise DataError(f"{run_name} takes {takes} inputs, not sequences of feature vectors: use --sample")
    if args.sequence is not None:
        x = csv_sequence(args.sequence, shape[-1], run_name)
        return x, f"{shown(args.sequence.name)} ({x.shape[1]:,} steps)"
    x = one_hot_text(args.text, character_vocabulary(_data(model, info), shape[-1]), run_name)
    return x, f"the text ({len(args.text):,} steps)"


def _data(model: GraphModel, info: dict) -> Dataset:
    """The run's dataset, as the run was trained on it."""
    from lumen.engine.training.fit import load_run_data

    dataset = info.get("dataset")
    data, _ = load_run_data(model.spec, dataset if isinstance(dataset, str) else None)
    return data


def _check_size(found: list[tuple[str, nn.RNNBase]], x: torch.Tensor) -> None:
    """Refuse, before any work, an input whose gate arrays would not fit in memory."""
    from lumen.engine.explain.gates import GATES
    from lumen.engine.graph import budget

    steps = x.shape[1] if x.dim() > 1 else x.shape[0]
    per_step = 0
    for _, module in found:
        kind = type(module).__name__.lower()
        directions = 2 if module.bidirectional else 1
        width = len(GATES[kind]) + 1  # and the layer's input, about as wide
        per_step += module.num_layers * directions * width * module.hidden_size * 4
    budget.check_data(per_step * steps * x.shape[0], f"the gates of {steps:,} steps")


COMMAND = Command("gates", "the gates and states of a run's LSTM, GRU or RNN layers for one sequence", define, run)
