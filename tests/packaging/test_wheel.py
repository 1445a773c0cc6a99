"""``pip install .``: the wheel holds one top-level name, ``lumen`` (no ``engine``, ``gui`` or ``cli`` in a user's
site-packages), its bundled files and the ``lumen`` command; installed (plainly or editable) into a fresh virtual
environment it imports from there. Nothing is downloaded: no build isolation (setuptools comes from the test's own
environment), no dependencies (torch and the rest are read from the test's environment through PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = sysconfig.get_paths()["purelib"]  # torch, numpy, setuptools... of the environment running the tests


def pip(*args: str, python: str = sys.executable, cwd: Path = ROOT) -> None:
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": SITE}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(folder), str(ROOT))
    (built,) = folder.glob("lumen-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package_its_files_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top = {name.split("/")[0] for name in names}
        version = wheel.name.split("-")[1]
        assert top == {"lumen", f"lumen-{version}.dist-info"}
        assert "lumen/resources/mnist_5k.npz" in names and "lumen/watching/client.py" in names
        entry_points = archive.read(f"lumen-{version}.dist-info/entry_points.txt").decode()
    assert "[console_scripts]" in entry_points and "lumen = lumen.entry:console" in entry_points


@pytest.mark.parametrize("editable", [False, True], ids=["plain", "editable"])
def test_installed_lumen_imports_from_the_environment_and_its_command_runs(wheel, tmp_path, editable):
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = str(env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    if editable:
        pip("install", "--no-deps", "--no-build-isolation", "-e", str(ROOT), python=python)
    else:
        pip("install", "--no-deps", str(wheel), python=python)
    env = {**os.environ, "PYTHONPATH": SITE, "QT_QPA_PLATFORM": "offscreen"}
    where = subprocess.run(
        [python, "-c", "import sys, lumen; print(lumen.__file__); print('torch' in sys.modules)"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    path, heavy = where.stdout.split()
    assert Path(path).is_relative_to(ROOT if editable else env_dir) and heavy == "False"  # import lumen stays light
    command = env_dir / ("Scripts/lumen.exe" if os.name == "nt" else "bin/lumen")
    listed = subprocess.run([str(command), "datasets"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "mnist" in listed.stdout, listed.stderr
