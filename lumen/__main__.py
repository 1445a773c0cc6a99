"""``python -m lumen``: the same as the ``lumen`` command."""

from lumen.entry import console

console()
