"""Stand-in for matplotlib.figure (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class

Figure = unavailable_class("Figure")
