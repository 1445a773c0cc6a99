"""Stand-in for matplotlib.axes (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class

Axes = unavailable_class("Axes")
