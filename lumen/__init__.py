"""Lumen: build, train and look inside neural networks, offline.

The package holds the engine (``lumen.engine``: plain Python and PyTorch, no Qt), the window (``lumen.gui``) and
the command line (``lumen.cli``). Importing ``lumen`` loads none of them."""
