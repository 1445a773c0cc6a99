"""How a picture becomes this model's input: grey or RGB, resize and centre crop, mean and std — part of the spec.

A spec without it prepares pictures as Lumen always has (grey or RGB by the input's channels, stretched to the
input's size, values in [0, 1]; MNIST-style digits for a model trained on MNIST). The full-size presets carry
ImageNet's (``IMAGENET``), so torchvision's weights see pictures as they were trained on them.

In a spec file it is ``"preprocess": {"mode": "rgb", "resize": 256, "size": [224, 224], "mean": [...],
"std": [...]}``; a spec that has it is written as version 2 (one without it stays version 1, so older files
and older readers are unaffected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lumen.engine.errors import SpecError

MODES = ("gray", "rgb", "digit")  # digit: MNIST's preparation (light ink on black, centred by mass in 20×20)
MAX_SIDE = 8192  # pixels: a resize or crop side
KEYS = ("mode", "resize", "size", "mean", "std")


@dataclass(frozen=True)
class Preprocess:
    mode: str = "rgb"
    resize: int | None = None  # the shorter side is scaled to this many pixels before the centre crop
    size: tuple[int, int] | None = None  # H, W of the centre crop; None: the model's input size
    mean: tuple[float, ...] | None = None  # per channel, subtracted from [0, 1] values
    std: tuple[float, ...] | None = None  # per channel, divided into them

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SpecError(f"preprocess mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.resize is not None and not 1 <= self.resize <= MAX_SIDE:
            raise SpecError(f"preprocess resize must be 1 to {MAX_SIDE:,} pixels, got {self.resize}")
        if self.size is not None and (len(self.size) != 2 or not all(1 <= s <= MAX_SIDE for s in self.size)):
            raise SpecError(f"preprocess size must be [height, width], each 1 to {MAX_SIDE:,}, got {self.size}")
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and not (1 <= len(values) <= 4 and all(math.isfinite(v) for v in values)):
                raise SpecError(f"preprocess {name} must be 1 to 4 finite numbers (one per channel)")
        if self.std is not None and any(v <= 0 for v in self.std):
            raise SpecError("preprocess std must be positive")
        if (self.mean is None) != (self.std is None):
            raise SpecError("preprocess needs both mean and std, or neither")
        if self.mean is not None and self.std is not None and len(self.mean) != len(self.std):
            raise SpecError("preprocess mean and std need one number per channel each")

    def describe(self) -> str:
        """One line for people: "RGB, shorter side 256, centre 224×224, mean/std (0.485, ...)"."""
        parts = [{"gray": "grey", "rgb": "RGB", "digit": "MNIST-style digit"}[self.mode]]
        if self.resize is not None:
            parts.append(f"shorter side {self.resize}")
        if self.size is not None:
            parts.append(f"centre {self.size[0]}×{self.size[1]}")
        if self.mean is not None and self.std is not None:
            parts.append(f"mean {_short(self.mean)} std {_short(self.std)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mode": self.mode}
        if self.resize is not None:
            data["resize"] = self.resize
        if self.size is not None:
            data["size"] = list(self.size)
        if self.mean is not None and self.std is not None:
            data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Preprocess:
        """From a spec file's object (already parsed within ``engine.untrusted``'s limits); one SpecError."""
        if not isinstance(data, dict):
            raise SpecError('"preprocess" must be an object')
        unknown = sorted(str(k)[:40] for k in data if k not in KEYS)
        if unknown:
            raise SpecError(f"preprocess has unknown fields: {', '.join(unknown)} (known: {', '.join(KEYS)})")
        mode, resize, size = data.get("mode", "rgb"), data.get("resize"), data.get("size")
        if not isinstance(mode, str):
            raise SpecError("preprocess mode must be a string")
        if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int)):
            raise SpecError("preprocess resize must be a whole number of pixels")
        if size is not None and not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(s, int) and not isinstance(s, bool) for s in size)
        ):
            raise SpecError("preprocess size must be [height, width] in whole pixels")
        return cls(
            mode[:40],
            resize,
            (size[0], size[1]) if size is not None else None,
            _numbers(data.get("mean"), "mean"),
            _numbers(data.get("std"), "std"),
        )


def _numbers(value: Any, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 4:
        raise SpecError(f"preprocess {name} must be a list of 1 to 4 numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise SpecError(f"preprocess {name} must hold numbers only")
    return tuple(float(v) for v in value)


def _short(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


# torchvision's ImageNet preparation for its classification weights (resize 256, centre crop 224, mean/std).
IMAGENET = Preprocess("rgb", 256, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
