"""Not matplotlib: the double-click bundle's stand-in for it (packaging/lumen.spec ships this folder instead).

``import captum.attr`` imports Captum's plotting helpers, which import matplotlib (and through it kiwisolver,
contourpy, fontTools: ~25 MB and ~0.3 s at every start) although Lumen never calls them: it draws attributions
itself. These modules define the names Captum imports at module level, so the import succeeds; using any of them
raises ImportError naming the reason. The source checkout and an installed Lumen use the real matplotlib (a
dependency of Captum) and never see this folder. ``tests/packaging/test_bundle_extras.py`` checks that Captum's
methods work with it in place.
"""

from __future__ import annotations

from typing import Any, NoReturn

__version__ = "0+lumen.stub"

REASON = "matplotlib is not part of the Lumen bundle: Captum's plotting helpers are not available in it"


class Unavailable:
    """A class Captum imports from matplotlib; making one (or asking it for anything) raises ImportError."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError(REASON)


def unavailable_class(name: str) -> type:
    return type(name, (Unavailable,), {"__module__": __name__})


def unavailable_function(name: str) -> Any:
    def function(*args: Any, **kwargs: Any) -> NoReturn:
        raise ImportError(REASON)

    function.__name__ = function.__qualname__ = name
    return function
