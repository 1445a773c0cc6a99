"""Stand-in for mpl_toolkits.axes_grid1 (see matplotlib/__init__.py)."""

from matplotlib import unavailable_function

make_axes_locatable = unavailable_function("make_axes_locatable")
