"""``lumen.watch``: Lumen's window on a training loop it does not run. ``client`` is the script's side (no Qt);
``window`` starts the window's process (``python -m lumen.watching.window``), whose code is ``lumen.gui``'s."""
