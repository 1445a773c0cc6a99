"""How much memory a model needs, worked out from its spec before anything is allocated, and the limit Lumen keeps
to on this machine.

The limit is ``MEMORY_FRACTION`` of the machine's physical memory (``os.sysconf``), so a spec that asks for a
billion channels, or upsamples a small input a hundredfold before a wide convolution, is refused with the
figure instead of taking the whole machine down. ``LUMEN_MEMORY_LIMIT`` (bytes; suffixes K, M, G allowed) sets
another limit, e.g. for a machine shared with other work.

What is counted (float32 unless the input holds int64 ids):

- building a model and running a sample through it (``build_model``, the window's viewer): the weights, plus
  every node's output for ``SAMPLE_BATCH`` samples (the viewer keeps them all for the feature maps);
- training (``check_training_memory``): the weights four times (weights, gradients, Adam's two moments), plus
  every node's output twice (kept for the backward pass, and its gradient) for one batch.

These are lower bounds (PyTorch needs workspace on top), which is why the limit is only part of the memory.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lumen.engine.errors import DataError, SpecError
from lumen.engine.untrusted import human_size

if TYPE_CHECKING:  # engine.graph.model imports this module
    from lumen.engine.graph.model import GraphModel

MEMORY_FRACTION = 0.5  # of physical memory: the rest is for PyTorch's workspace, the window and everything else
FALLBACK_MEMORY = 8 * 2**30  # where the platform does not say how much memory it has
SAMPLE_BATCH = 2  # samples a freshly built model is run on (engine.graph.model.example_input's default)


def machine_memory() -> int:
    """Physical memory in bytes (``FALLBACK_MEMORY`` where the platform does not tell)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY
    return total if total > 0 else FALLBACK_MEMORY


def memory_limit() -> int:
    """The most memory one model may need: ``LUMEN_MEMORY_LIMIT`` if set, else a fraction of this machine's."""
    override = os.environ.get("LUMEN_MEMORY_LIMIT", "").strip()
    if override:
        match = re.fullmatch(r"(\d{1,15})\s*([KMGT]?)i?B?", override, re.IGNORECASE)
        if match:
            return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")
    return int(machine_memory() * MEMORY_FRACTION)


def _limit_words(limit: int) -> str:
    if os.environ.get("LUMEN_MEMORY_LIMIT", "").strip():
        return f"Lumen's limit, {human_size(limit)} (LUMEN_MEMORY_LIMIT)"
    return (
        f"Lumen's limit on this machine, {human_size(limit)} "
        f"({MEMORY_FRACTION:.0%} of its {human_size(machine_memory())})"
    )


@dataclass(frozen=True)
class MemoryEstimate:
    params: int  # parameters in the model
    weight_bytes: int  # what the weights (and, training, their gradients and optimiser state) take
    activation_bytes: int  # what the node outputs take for the whole batch (twice over, training)
    heaviest: str | None  # the node that needs the most
    heaviest_bytes: int
    heaviest_part: str  # "weights" or "output"

    @property
    def total(self) -> int:
        return self.weight_bytes + self.activation_bytes


def estimate(
    nodes: Iterable[tuple[str, int, int]], batch: int = SAMPLE_BATCH, training: bool = False
) -> MemoryEstimate:
    """The estimate from (node id, parameters, bytes of one sample's output) per node."""
    weight_factor, activation_factor = (4, 2 * batch) if training else (1, batch)
    params = weights = activations = 0
    heaviest, heaviest_bytes, part = None, -1, "output"
    for node_id, n_params, out_bytes in nodes:
        w, a = n_params * 4 * weight_factor, out_bytes * activation_factor
        params += n_params
        weights += w
        activations += a
        if w + a > heaviest_bytes:
            heaviest, heaviest_bytes, part = node_id, w + a, "weights" if w >= a else "output"
    return MemoryEstimate(params, weights, activations, heaviest, max(heaviest_bytes, 0), part)


def model_estimate(model: GraphModel, batch: int = SAMPLE_BATCH, training: bool = False) -> MemoryEstimate:
    """The estimate for a ``GraphModel`` (built on the meta device is enough: only shapes are read)."""
    itemsize = {node_id: 4 for node_id in model.order}
    input_node = model.spec.input_node
    if input_node.params.get("dtype") == "int64":
        itemsize[input_node.id] = 8
    return estimate(
        (
            (
                node_id,
                sum(p.numel() for p in model.layers[node_id].parameters()),
                math.prod(model.shapes[node_id]) * itemsize[node_id],
            )
            for node_id in model.order
        ),
        batch,
        training,
    )


def check(
    found: MemoryEstimate, batch: int = SAMPLE_BATCH, training: bool = False, limit: int | None = None
) -> MemoryEstimate:
    """Raise SpecError, naming the node that needs the most, if the model needs more than the limit."""
    limit = memory_limit() if limit is None else limit
    if found.total <= limit:
        return found
    purpose = (
        f"to train with batches of {batch}"
        if training
        else f"to build and run {batch} sample{'s' if batch != 1 else ''}"
    )
    parts = f"{human_size(found.weight_bytes)} for {found.params:,} weights"
    if training:
        parts += " with their gradients and optimiser state"
    parts += f", {human_size(found.activation_bytes)} for the layers' outputs"
    node_part = (
        f"its weights and output need {human_size(found.heaviest_bytes)} (mostly its {found.heaviest_part}); "
        if found.heaviest
        else ""
    )
    raise SpecError(
        f"{node_part}the model needs about {human_size(found.total)} {purpose} ({parts}), "
        f"more than {_limit_words(limit)}",
        found.heaviest,
    )


def check_model(
    model: GraphModel, batch: int = SAMPLE_BATCH, training: bool = False, limit: int | None = None
) -> MemoryEstimate:
    """``check`` for a (meta) ``GraphModel``."""
    return check(model_estimate(model, batch, training), batch, training, limit)


def check_data(nbytes: int, what: str, limit: int | None = None) -> None:
    """Raise DataError, with the figure and the limit, if the arrays a data file implies (``what``, e.g. "its
    1,000,000 windows of 32 steps") need more than the limit; called before they are made."""
    limit = memory_limit() if limit is None else limit
    if nbytes > limit:
        raise DataError(f"{what} would need about {human_size(nbytes)}, more than {_limit_words(limit)}")
