# edobs commands (docs/DESIGN.md section 5). Every target works from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# two workers (pytest-xdist), a module per worker: each test starts its own servers on free ports,
# so they run side by side, and a module's browser stack is started once. No reorder: the
# minutes-long fault scenarios go first (tests/conftest.py), not after the big modules.
PYTEST_ARGS ?= -n 2 --dist loadscope --no-loadscope-reorder
BENCH_ARGS ?=  # BENCH_ARGS=--full: the million-event sizes

.PHONY: install run test bench lint

install: $(VENV)/.installed

# Reinstall only when pyproject.toml changes (the stamp is newer otherwise).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: install
	$(PY) manage.py migrate --noinput
	EDOBS_DEMO=1 $(PY) manage.py demo

# Installs redis-server/postgresql/chromium/prometheus (promtool) when missing (root + apt only), then every test.
# pytest's exit 5 (no tests collected) is not a failure.
test: install
	scripts/test-services
	$(VENV)/bin/lint-imports  # the layers of events/ (events/README.md)
	# The tests' Prometheus samples go to a directory of their own, not var/metrics (events.metrics).
	metrics=$$(mktemp -d) && trap 'rm -rf "$$metrics"' EXIT && \
	EDOBS_METRICS_DIR=$$metrics $(PY) -m pytest $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] && echo "pytest: no tests collected" || exit $$rc; }

bench: install
	$(PY) bench/run.py $(BENCH_ARGS)

lint: install
	$(PY) -m ruff check .
