"""Not mpl_toolkits (matplotlib's): the bundle's stand-in, see matplotlib/__init__.py beside it."""
