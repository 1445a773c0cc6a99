"""``python -m lumen.watching.window NAME``: the window of a watched script, in a process of its own.

The script (``lumen.watching.client``) writes a random key on this process's stdin; the window listens on a local
socket for one connection made with that key, writes the socket's address on stdout (one JSON line), and from
then on writes nothing there (stdout goes to stderr). This module only reads the key; the window is
``lumen.gui.app.run_watch``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    line = sys.stdin.readline().strip()
    try:
        key = bytes.fromhex(line)
    except ValueError:
        key = b""
    if len(key) < 16:
        print("lumen: the watch window is started by lumen.watch(), not by hand", file=sys.stderr)
        return 2
    name = argv[0] if argv else "model"
    from lumen.gui.app import run_watch

    return run_watch(key, name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
