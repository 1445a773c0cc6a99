"""Stand-in for matplotlib.pyplot (see matplotlib/__init__.py)."""

from matplotlib import unavailable_class, unavailable_function

Axes = unavailable_class("Axes")
Figure = unavailable_class("Figure")
figure = unavailable_function("figure")
subplots = unavailable_function("subplots")
show = unavailable_function("show")
