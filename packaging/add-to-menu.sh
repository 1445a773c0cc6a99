#!/bin/sh
# Adds Lumen to this user's application menu (GNOME, KDE, Xfce, ...): writes ~/.local/share/applications/lumen.desktop
# pointing at the Lumen executable in the folder this script is in. Nothing outside your home folder is touched.
#   ./add-to-menu.sh            add (or update, after moving the folder)
#   ./add-to-menu.sh --remove   take it out again
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
entry="$apps/lumen.desktop"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$entry"
    echo "removed $entry"
else
    [ -x "$here/Lumen" ] || { echo "no Lumen executable beside this script in $here" >&2; exit 1; }
    case "$here" in *'"'*|*'%'*|*'\'*|*'$'*|*'`'*|*'|'*) echo "the folder's path holds a character a menu entry cannot: $here" >&2; exit 1;; esac
    mkdir -p "$apps"
    sed "s|LUMEN_DIR|$here|g" "$here/lumen.desktop" > "$entry.tmp"
    mv "$entry.tmp" "$entry"
    echo "added $entry"
fi
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" 2>/dev/null || true
