"""Stand-in for matplotlib.image (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class

AxesImage = unavailable_class("AxesImage")
