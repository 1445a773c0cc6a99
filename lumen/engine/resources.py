"""Where bundled files live, in a source checkout and in the PyInstaller bundle alike."""

import sys
from pathlib import Path


def resources_dir() -> Path:
    frozen_root = getattr(sys, "_MEIPASS", None)  # set by PyInstaller's bootloader
    root = Path(frozen_root) if frozen_root else Path(__file__).resolve().parents[1]
    return root / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
