"""Replaying the viewer's probes over a run's checkpoints: how a filter or a saliency map formed.

``CheckpointReplay`` keeps a model of its own, built from the run folder's spec (never the live model, which goes
on training untouched), loads one checkpoint's weights into it (safetensors, through
``engine.io.store.load_checkpoint``) and makes the frames of the probes marked ``replayable`` with the probes' own
``frame`` code, each marked with the checkpoint's step. The worker calls it on its thread (``ReplayCheckpoint``).
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from collections.abc import Sequence
from pathlib import Path

from lumen.engine.errors import DataError
from lumen.engine.events import EngineError, Frame
from lumen.engine.graph.model import GraphModel, build_model
from lumen.engine.io.store import SPEC_FILE, checkpoints, load_checkpoint
from lumen.engine.jobs import Job
from lumen.engine.probes.base import Probe, ProbeContext
from lumen.engine.spec.model_spec import ModelSpec
from lumen.engine.untrusted import printable

log = logging.getLogger(__name__)

MODEL_PREFIX = "model/"  # the weights' names in a checkpoint (``engine.training.resume.training_state``)


def checkpoint_steps(folder: str | Path) -> tuple[int, ...]:
    """The steps of the run folder's checkpoints, oldest first."""
    return tuple(step for step, _ in checkpoints(folder))


class CheckpointReplay:
    """A model of its own for one run folder at a time; ``load`` puts a checkpoint's weights into it."""

    def __init__(self) -> None:
        self._built: tuple[Path, GraphModel] | None = None

    def load(self, folder: Path, step: int, run: str) -> GraphModel:
        """The run's model with the weights of its checkpoint at ``step``; a missing, unreadable or unfitting
        checkpoint is refused with one ``DataError``."""
        found = dict(checkpoints(folder))
        if step not in found:
            kept = ", ".join(map(str, sorted(found))) or "none yet"
            raise DataError(f"run {printable(run)} has no checkpoint at step {step} (it has: {kept})")
        if self._built is None or self._built[0] != folder:
            self._built = None
            model = build_model(ModelSpec.load(folder / SPEC_FILE))
            model.eval()  # never trained here; the probes restore whatever mode they find
            self._built = (folder, model)
        model = self._built[1]
        tensors, _ = load_checkpoint(found[step], prefix=MODEL_PREFIX)
        weights = {name[len(MODEL_PREFIX) :]: tensor for name, tensor in tensors.items()}
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            self._built = None  # possibly half loaded: built again next time
            first = (str(exc).strip().splitlines() or [""])[0]
            raise DataError(f"checkpoint step {step} of run {printable(run)} does not fit its model: {first}") from None
        return model

    def frames(self, probes: Sequence[Probe], context: ProbeContext) -> list[Frame | EngineError]:
        """The replayable probes' frames for ``context`` (whose step is the checkpoint's), marked with it; a probe
        that raises is reported and the others still show."""
        events: list[Frame | EngineError] = []
        for probe in probes:
            if not probe.replayable:
                continue
            try:
                frame = whole_frame(probe, context)
            except Exception as exc:  # a probe's bug: reported, the replay and the live run go on
                log.error("probe %s failed on a checkpoint\n%s", probe.name, traceback.format_exc())
                events.append(
                    EngineError(
                        f"the {probe.name} probe failed on checkpoint step {context.step} ({type(exc).__name__}: {exc})"
                    )
                )
                continue
            if frame is not None:
                events.append(dataclasses.replace(frame, checkpoint_step=context.step))
        return events


def whole_frame(probe: Probe, context: ProbeContext) -> Frame | None:
    """The probe's finished frame: a probe that answers with a job has it run to its end here, not in slices."""
    made = probe.frame(context)
    return made.run_to_end() if isinstance(made, Job) else made
