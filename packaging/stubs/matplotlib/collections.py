"""Stand-in for matplotlib.collections (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class

LineCollection = unavailable_class("LineCollection")
