"""Stand-in for matplotlib.colors (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class

Colormap = unavailable_class("Colormap")
LinearSegmentedColormap = unavailable_class("LinearSegmentedColormap")
Normalize = unavailable_class("Normalize")
