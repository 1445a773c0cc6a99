"""What a preset is: a named recipe for a spec (kept apart so preset modules and the registry don't import
each other)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.spec.model_spec import ModelSpec


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line, for `main.py presets` and the preset menu
    make: Callable[[], ModelSpec]
