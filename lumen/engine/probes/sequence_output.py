"""What a sequence model makes of one validation sequence: its input as tokens or values, the target, and the
model's prediction (per step or once), so a recurrent model's viewer shows the data it reads, not a digit."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from lumen.engine.data.preview import token_text
from lumen.engine.events import Frame, ModelInfo
from lumen.engine.probes.base import Probe, ProbeContext

TOKENS, VALUES = "tokens", "values"
NO_INPUT = "no validation sequence fits this model"


@dataclass(frozen=True)
class SequenceOutputFrame(Frame):
    source: str  # "validation sequence #3"
    kind: str  # ``tokens`` (one-hot inputs, shown as text) or ``values`` (real-valued, drawn as curves)
    inputs: np.ndarray  # T×F float32, the input sequence
    input_text: str = ""  # tokens: the input as text
    target_text: str = ""  # classes: the target as text ("" for real-valued targets)
    output_text: str = ""  # classes: the prediction as text
    correct: tuple[bool, ...] = ()  # per predicted position: equal to the target
    target_values: np.ndarray | None = None  # real-valued targets, T′×F′ (or one row)
    output_values: np.ndarray | None = None  # the model's real-valued output, the same shape
    top: tuple[tuple[str, float], ...] = ()  # a one-output classifier's top classes and probabilities
    note: str = ""  # why something is missing


def _as_rows(values: np.ndarray) -> np.ndarray:
    """A target or output as T×F rows for plotting (a single vector is one row)."""
    values = np.asarray(values, dtype=np.float32)
    return values.reshape(1, -1) if values.ndim <= 1 else values.reshape(values.shape[0], -1)


class SequenceOutput(Probe):
    name = "sequence output"
    frame_type = SequenceOutputFrame
    interval_s = 0.2
    budget = 0.05  # one forward pass of one sequence
    replayable = True

    def applies(self, info: ModelInfo) -> bool:
        """Sequence models trained against targets (not autoencoders or Boltzmann machines)."""
        return info.input_kind == "sequence" and info.objective in ("classification", "forecast", "seq2seq")

    def frame(self, context: ProbeContext) -> SequenceOutputFrame:
        probe = context.input
        if probe is None:
            return SequenceOutputFrame(context.step, NO_INPUT, "values", np.zeros((1, 1), np.float32), note=NO_INPUT)
        x = probe.x[0].float().numpy()
        kind = TOKENS if probe.tokens else VALUES
        input_text = token_text(probe.tokens, x.argmax(-1), limit=80) if probe.tokens else ""
        model = context.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(probe.x)[0].float()
        finally:
            model.train(was_training)
        frame = SequenceOutputFrame(context.step, probe.source, kind, np.ascontiguousarray(x), input_text)
        target = probe.target
        classes = context.classes
        if target is not None and not torch.is_floating_point(target) and classes and out.shape[-1] == len(classes):
            predicted = out.argmax(-1).reshape(-1).numpy()
            wanted = target.reshape(-1).numpy()
            if out.dim() == 1:  # one class for the whole sequence: its top classes
                probs = torch.softmax(out, 0)
                top = torch.topk(probs, min(5, len(classes)))
                frame_top = tuple((classes[int(i)], float(p)) for p, i in zip(top.values, top.indices))
            else:
                frame_top = ()
            n = min(len(predicted), len(wanted))
            return replace(
                frame,
                target_text=token_text(classes, wanted, limit=80),
                output_text=token_text(classes, predicted, limit=80),
                correct=tuple(bool(a == b) for a, b in zip(predicted[:n], wanted[:n])),
                top=frame_top,
            )
        if target is not None and torch.is_floating_point(target):
            return replace(frame, target_values=_as_rows(target.numpy()), output_values=_as_rows(out.numpy()))
        return replace(frame, output_values=_as_rows(out.numpy()), note="no target to compare with")
