"""What a preset is: a named recipe for a spec (kept apart so preset modules and the registry don't import
each other), with the data it trains on by default and how."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lumen.engine.spec.model_spec import ModelSpec


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line, for `main.py presets` and the preset menu
    make: Callable[[], ModelSpec]
    dataset: str = "mnist"  # the built-in dataset it trains on when none is chosen (engine.data.datasets.DATASETS)
    objective: str = "classification"  # what it minimises (engine.training.objectives.OBJECTIVES)
    data_options: Mapping[str, Any] = field(default_factory=dict)  # the dataset's loader options (steps, size, ...)
