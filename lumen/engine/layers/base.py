"""What a layer type is: its parameters and their domains, its shape rule, and the module it builds.

Shape inference is written out per layer (not read off a dummy forward pass) so that a bad spec is refused
with a reason a student can act on, e.g. ``conv3: kernel 5×5 is larger than its 4×4 input``, rather than
an error from deep inside torch. Tests check every inferred shape against real tensors.

Parameters are named as torch's constructor arguments. Each has a *domain* (``LayerType.domains``) that says
which values are legal; the GUI's property editor reads domains and defaults to pick its editors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from lumen.engine.layers.geometry import Window
from lumen.engine.spec.shapes import Shape, ShapeError

Params = dict[str, Any]

# What the builder groups and colours layer types by (gui/panes/builder/style.py has one entry per family).
FAMILIES = (
    "input",
    "conv",
    "pool",
    "dense",
    "reshape",
    "activation",
    "norm",
    "merge",
    "recurrent",
    "autoencoder",
    "boltzmann",
    "opaque",
)


@dataclass(frozen=True, kw_only=True)
class LayerType:
    name: str
    family: str  # one of FAMILIES
    description: str
    defaults: Params  # every parameter the layer takes, with its default (None = required)
    domains: dict[str, str]  # parameter -> domain (the legal values): a key of _CHECKS or "choice:a|b"
    infer: Callable[[Params, list[Shape]], Shape]  # (resolved params, input shapes) -> output shape
    module: type[nn.Module]  # the class built: torch's, or one of engine/modules
    kwargs: Callable[[Params, list[Shape]], Params]  # (resolved params, input shapes) -> module(**kwargs)
    arity: int | None = 1  # number of incoming edges; 0 for the input node, None for merges (2 or more)
    min_inputs: int = 2  # with arity None: the fewest incoming edges (an opaque ONNX op may read one)
    optional: tuple[str, ...] = ()  # parameters for which None is a legal value (a pool's stride: the window)
    docs: dict[str, str] = field(default_factory=dict)  # parameter -> one line for tooltips
    takes_ids: bool = False  # reads integer ids (an int64 input), not floats
    # (resolved params, input shape) -> the sliding window: engine.graph.analysis's formulas and receptive fields
    window: Callable[[Params, Shape], Window] | None = None
    # (resolved params, input shapes, output shape) -> multiply-accumulates per sample; None counts 0
    macs: Callable[[Params, list[Shape], Shape], int] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"layer type {self.name}: family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if set(self.domains) != set(self.defaults):
            raise ValueError(
                f"layer type {self.name}: domains must name exactly its parameters "
                f"({', '.join(self.defaults) or 'none'})"
            )
        for key, domain in self.domains.items():
            if not domain.startswith("choice:") and domain not in _CHECKS:
                raise ValueError(f"layer type {self.name}: {key} has an unknown domain {domain!r}")

    def build(self, params: Params, in_shapes: list[Shape]) -> nn.Module:
        """The module for resolved ``params``: always ``module(**kwargs(params, in_shapes))``."""
        return self.module(**self.kwargs(params, in_shapes))

    def resolve(self, params: Params) -> Params:
        """The node's params merged over the defaults, checked for unknown or missing keys and domains."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ShapeError(
                f"unknown parameter {', '.join(unknown)} for {self.name} "
                f"(it takes {', '.join(self.defaults) or 'none'})"
            )
        merged = {**self.defaults, **params}
        for key in self.defaults:
            value = merged[key]
            if value is None and key in self.optional:
                continue
            if value is None and self.defaults[key] is None:
                raise ShapeError(f"{self.name} needs the parameter {key}")
            domain = self.domains[key]
            if not in_domain(value, domain):
                raise ShapeError(f"{key} must be {domain_words(domain)}, got {value!r}")
        return merged


def same_shape(params: Params, in_shapes: list[Shape]) -> Shape:
    """The shape rule of a layer that keeps its input's shape."""
    return in_shapes[0]


def no_kwargs(params: Params, in_shapes: list[Shape]) -> Params:
    return {}


def params_as_kwargs(params: Params, in_shapes: list[Shape]) -> Params:
    """For modules whose arguments are exactly the layer's parameters."""
    return dict(params)


# ---- parameter domains --------------------------------------------------------------------------


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pair_of(v: Any, test: Callable[[Any], bool]) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(test(x) for x in v)


def _posint(v: Any) -> bool:
    return _whole(v) and v > 0


def _nonneg(v: Any) -> bool:
    return _whole(v) and v >= 0


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "posint": _posint,
    "nonneg": _nonneg,
    "int": _whole,
    "prob": lambda v: _real(v) and 0 <= v < 1,
    "float": _real,
    "posfloat": lambda v: _real(v) and v > 0,
    "bool": lambda v: isinstance(v, bool),
    "shape": lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_posint(x) for x in v),
    "int_or_pair": lambda v: _posint(v) or _pair_of(v, _posint),
    "nonneg_or_pair": lambda v: _nonneg(v) or _pair_of(v, _nonneg),
    "int_or_same": lambda v: _nonneg(v) or v == "same",
    "pair_or_same": lambda v: _nonneg(v) or _pair_of(v, _nonneg) or v == "same",
    "any": lambda v: True,
}
_WORDS = {
    "posint": "a positive whole number",
    "nonneg": "a whole number ≥ 0",
    "int": "a whole number",
    "prob": "a number in [0, 1)",
    "float": "a number",
    "posfloat": "a number > 0",
    "bool": "true or false",
    "shape": "a list of positive whole numbers",
    "int_or_pair": "a positive whole number or a pair [h, w] of them",
    "nonneg_or_pair": "a whole number ≥ 0 or a pair [h, w] of them",
    "int_or_same": 'a whole number ≥ 0 or "same"',
    "pair_or_same": 'a whole number ≥ 0, a pair [h, w] of them, or "same"',
    "any": "any value",
}


def choice(*options: str) -> str:
    """The domain of a parameter that takes one of a few words."""
    return "choice:" + "|".join(options)


def in_domain(value: Any, domain: str) -> bool:
    if domain.startswith("choice:"):
        return isinstance(value, str) and value in domain[len("choice:") :].split("|")
    return _CHECKS[domain](value)


def domain_words(domain: str) -> str:
    if domain.startswith("choice:"):
        return "one of " + ", ".join(f'"{c}"' for c in domain[len("choice:") :].split("|"))
    return _WORDS[domain]
