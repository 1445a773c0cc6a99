"""The double-click build: PyInstaller turns packaging/lumen.spec into a folder that runs without Python.

Builds into a temporary folder (never touching dist/ or build/), then runs the frozen executable's self-test
(window offscreen, one training step, one rendered frame) and its CLI. Takes minutes: `pytest -m packaging`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "lumen.spec"
BUILD_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 180

# Every top-level package the bundle may hold (its archive's and its folder's, the standard library aside). A new one
# is a choice: add it here when Lumen needs it, or leave it out in packaging/lumen.spec (EXCLUDES).
ALLOWED = {
    "lumen",
    # what Lumen imports
    "torch", "numpy", "PySide6", "shiboken6", "pyqtgraph", "captum", "PIL", "safetensors", "onnx",
    # what they import: torch (sympy, mpmath, networkx, jinja2, markupsafe, filelock, fsspec, typing_extensions,
    # functorch, torchgen, tqdm, packaging), onnx (google.protobuf, ml_dtypes)
    "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec", "typing_extensions", "functorch",
    "torchgen", "tqdm", "packaging", "google", "ml_dtypes", "colorama",
    # packaging/stubs: stand-ins, not the real packages
    "matplotlib", "mpl_toolkits",
}  # fmt: skip
# Left out on purpose (packaging/lumen.spec says why); the real matplotlib must not come back with its stand-in.
NEVER = {"onnxruntime", "kiwisolver", "contourpy", "fontTools", "pyparsing", "dateutil", "cycler", "rich", "pygments"}
BUNDLE_MB_LIMIT = 620  # 2026-12: about 590 MB on Linux x86_64 (docs/PERFORMANCE.md); was 733 MB before the trim


def bundle_packages(bundle: Path) -> set[str]:
    """The top-level names of everything importable in the bundle: the modules in its archive (PYZ) and the
    packages in its folder, less the standard library's and private names."""
    from PyInstaller.archive.readers import CArchiveReader

    exe = bundle / ("Lumen.exe" if sys.platform == "win32" else "Lumen")
    archive = CArchiveReader(str(exe))
    pyz = archive.open_embedded_archive(next(name for name in archive.toc if name.endswith(".pyz")))
    names = {module.split(".")[0] for module in pyz.toc}
    internal = bundle / "_internal"
    names |= {p.name for p in internal.iterdir() if (p / "__init__.py").exists()}
    names |= {p.stem for p in internal.glob("*.py")}
    names |= {p.name.split(".")[0] for p in internal.glob("*.so") if ".cpython-" in p.name}
    return {n for n in names if not n.startswith("_") and n not in sys.stdlib_module_names}


@pytest.mark.packaging
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_frozen_app_builds_and_runs(tmp_path: Path) -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -r requirements-dev.txt)")
    dist, work = tmp_path / "dist", tmp_path / "build"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--distpath",
            str(dist),
            "--workpath",
            str(work),
            str(SPEC),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert build.returncode == 0, f"PyInstaller failed:\n{build.stderr[-6000:]}"
    exe = dist / "Lumen" / ("Lumen.exe" if sys.platform == "win32" else "Lumen")
    assert exe.is_file(), f"no executable at {exe}"
    shutil.rmtree(work, ignore_errors=True)  # ~1 GB of intermediate files; the bundle itself is what we test

    bundle = exe.parent
    packages = bundle_packages(bundle)
    assert packages <= ALLOWED, f"packages not on the allow-list: {sorted(packages - ALLOWED)}"
    assert not packages & NEVER and {"lumen", "torch", "PySide6", "captum", "onnx"} <= packages
    assert "Not matplotlib" in (bundle / "_internal" / "matplotlib" / "__init__.py").read_text()
    for name in ("lumen.png", "lumen.svg", "lumen.desktop", "add-to-menu.sh"):
        assert (bundle / name).is_file(), f"{name} is not beside the executable"
    megabytes = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20
    if sys.platform.startswith("linux"):
        assert megabytes < BUNDLE_MB_LIMIT, f"the bundle grew to {megabytes:.0f} MB"

    # Run from a neutral folder so nothing can be picked up from the source checkout.
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTHONPATH", None)
    env["LUMEN_DATA_DIR"] = str(tmp_path / "data")
    for preset in ("lenet5", "lstm_many_to_one", "vae"):  # one CNN, one recurrent, one generative model
        self_test = subprocess.run(
            [str(exe), "--self-test", preset], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
        assert self_test.returncode == 0, (
            f"frozen --self-test {preset} exited {self_test.returncode}\nstdout:\n{self_test.stdout[-3000:]}\n"
            f"stderr:\n{self_test.stderr[-6000:]}"
        )
        assert f"self-test passed: {preset}" in self_test.stdout

    summary = subprocess.run(
        [str(exe), "summary", "lenet5"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert summary.returncode == 0, summary.stderr[-3000:]
    assert summary.stdout.strip().splitlines()[-1] == "total params: 61706"
    shutil.rmtree(dist, ignore_errors=True)  # passed: no need to keep ~1 GB under pytest's tmp folders
