"""What the double-click bundle carries besides the app, checked without building it: the matplotlib stand-in
(packaging/stubs) that lets Captum import without matplotlib, and the menu entry's install script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
ICONS = ROOT / "lumen" / "resources"  # the icon: the window's, and the menu entry's beside the bundle

# Runs in a fresh interpreter whose first path entry is the stand-in, as in the bundle (where it is the only one).
EVERY_METHOD_WITH_THE_STUB = f"""
import sys
sys.path.insert(0, {str(PACKAGING / "stubs")!r})
import torch
import captum.attr
import matplotlib
assert matplotlib.__file__.startswith({str(PACKAGING / "stubs")!r}), matplotlib.__file__
from lumen.engine.explain.attribution import METHODS, attribute
from lumen.engine.graph.model import build_model
from lumen.engine.presets import get_preset
model = build_model(get_preset("lenet5")).eval()
x = torch.rand(1, 1, 28, 28)
few = {{"steps": 4, "samples": 2}}  # quick
for name, method in METHODS.items():
    result = attribute(model, x, name, **{{k: v for k, v in few.items() if k in {{o.name for o in method.options}}}})
    assert result.heat().shape == (28, 28), (name, result.heat().shape)
from matplotlib import pyplot
try:
    pyplot.subplots()
except ImportError as exc:
    assert "not part of the Lumen bundle" in str(exc)
else:
    raise AssertionError("the stand-in plotted")
print("methods:", " ".join(METHODS))
heavy = ("kiwisolver", "contourpy", "fontTools", "PIL.ImageFont")
print("heavy:", " ".join(sorted(m for m in heavy if m in sys.modules)))
"""


def test_captum_and_every_attribution_method_work_with_the_matplotlib_stand_in():
    done = subprocess.run(
        [sys.executable, "-c", EVERY_METHOD_WITH_THE_STUB], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "methods: saliency" in done.stdout and "gradcam" in done.stdout
    assert "heavy: \n" in done.stdout  # nothing of the real matplotlib's was imported


@pytest.mark.skipif(shutil.which("sh") is None or sys.platform == "win32", reason="a POSIX shell script")
def test_add_to_menu_writes_a_desktop_entry_for_the_folder_it_is_in(tmp_path):
    bundle = tmp_path / "my apps" / "Lumen"  # a space in the path, as in a user's "My apps"
    bundle.mkdir(parents=True)
    for source in (PACKAGING / "lumen.desktop", PACKAGING / "add-to-menu.sh", ICONS / "lumen.png"):
        shutil.copy2(source, bundle / source.name)
    (bundle / "Lumen").write_text("#!/bin/sh\n")
    (bundle / "Lumen").chmod(0o755)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "home-data")}
    done = subprocess.run([str(bundle / "add-to-menu.sh")], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "home-data" / "applications" / "lumen.desktop"
    lines = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line and line[0] != "#")
    assert lines["Exec"] == f'"{bundle}/Lumen" %f' and lines["Icon"] == f"{bundle}/lumen.png"
    assert lines["Type"] == "Application" and lines["Name"] == "Lumen" and lines["Terminal"] == "false"
    assert "LUMEN_DIR" not in entry.read_text()
    removed = subprocess.run(
        [str(bundle / "add-to-menu.sh"), "--remove"], env=env, capture_output=True, text=True, timeout=30
    )
    assert removed.returncode == 0 and not entry.exists()


def test_the_icon_is_a_256_pixel_png_drawn_from_the_svg():
    png = (ICONS / "lumen.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == int.from_bytes(png[20:24], "big") == 256  # IHDR width, height
    assert (ICONS / "lumen.svg").read_text().lstrip().startswith("<svg")


def test_the_windows_carry_lumens_icon(qtbot):
    from PySide6.QtGui import QGuiApplication

    from lumen.gui.app import set_icon

    set_icon()
    icon = QGuiApplication.windowIcon()
    assert not icon.isNull() and icon.availableSizes()[0].width() == 256
