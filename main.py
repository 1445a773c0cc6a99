"""Lumen from a source checkout: ``python main.py [COMMAND ...]`` (no command: the window). The commands are
listed in ``lumen/entry.py`` and by ``python main.py --help``; an installed Lumen runs the same as ``lumen``."""

from lumen.entry import console, main

__all__ = ["main"]

if __name__ == "__main__":
    console()
