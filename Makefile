# Two commands on a fresh machine: `make run` opens Lumen, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint package bench clean system-libs

# The virtual environment, rebuilt whenever the pinned requirements change.
# Lumen itself is installed editable (no dependencies: the pinned ones are already there), so the `lumen` command
# and `import lumen` work in the venv from any folder, on this checkout.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

# Qt's xcb and offscreen platform plugins link these Debian libraries; installed when missing and root.
system-libs:
	@sh packaging/linux-deps.sh

run: $(STAMP) system-libs
	$(PY) main.py

test: $(STAMP) system-libs
	$(PY) -m pytest -ra

test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow and not packaging"

# The quality gate CI runs before the tests: ruff (lint, import order, format), mypy on engine/, and the
# import contracts in pyproject.toml (the engine never imports Qt; layers never import presets; ...).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

package: $(STAMP) system-libs
	$(PY) -m PyInstaller --noconfirm --clean --distpath dist --workpath build packaging/lumen.spec

bench: $(STAMP) system-libs
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/ui_latency.py

clean:
	rm -rf build dist .pytest_cache
