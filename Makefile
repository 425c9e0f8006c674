# The few commands people type. Each is a thin wrapper; see the README.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint install setup clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU build pinned in pyproject.toml; nothing pulls a CUDA build.
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Migrate, load the demo topology, create the administrator, train the sensitivity classifier
# and build the default model when missing.
setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	$(PY) manage.py ensure_admin
	$(PY) manage.py train_sensitivity_classifier --if-missing
	$(PY) manage.py build_default_model --if-missing

run: setup
	$(PY) manage.py runstack

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.run $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var/test.sqlite3 .pytest_cache
