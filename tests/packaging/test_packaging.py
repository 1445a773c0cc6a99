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
