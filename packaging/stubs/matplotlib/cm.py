"""Stand-in for matplotlib.cm (see matplotlib/__init__.py)."""
