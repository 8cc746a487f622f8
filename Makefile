# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
# Each creates its own virtualenv in .venv and installs the project into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# System tools the tests and the demo use: installed when missing and we may (root).
SYSTEM_TOOLS := ffmpeg:ffmpeg ffprobe:ffmpeg tmux:tmux sqlite3:sqlite3 shellcheck:shellcheck \
	systemd-analyze:systemd udevadm:udev nginx:nginx chromium:chromium \
	systemd-nspawn:systemd-container debootstrap:debootstrap zstd:zstd

.PHONY: demo test lint unit every-layer bench soak mutation docs system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	# Bytecode now, as a non-editable install would have it: where PYTHONDONTWRITEBYTECODE
	# is set, every `mp` run would otherwise compile all of its modules again.
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && bash .ci/apt-install $$missing; \
	  else \
	    echo "warning: missing$$missing (install them for the full test suite)"; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/mp demo

# mypy checks src/, tests/ and benchmarks/ in one run: its files in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Coverage of src/ lines, printed at the end (files at 100% left out of the table).
# Two test processes: most tests wait on real subprocesses, so two share the 2 cores of
# the machines we run on and `make test` stays under 15 minutes with coverage on.
every-layer: $(STAMP)
	$(BIN)/pytest -q -n 2 --cov=media_pipeline --cov-report=term:skip-covered

# `unit` first: its coverage check fails in seconds, before the long run (which runs the
# unit layer again, among the rest: about 15 s more in all).
test: system-deps lint unit every-layer

# The unit layer alone (pure logic, no processes): seconds, for a quick check while editing.
# Then tests/unit_coverage.py: it fails when the unit layer covers less than 80% of a
# module that does no I/O (its list, PURE_MODULES, is there). Coverage data and report go
# to UNIT_COVERAGE (ignored by git), apart from the full run's .coverage files.
UNIT_COVERAGE := .unit-coverage
unit: $(STAMP)
	rm -rf $(UNIT_COVERAGE) && mkdir $(UNIT_COVERAGE)
	COVERAGE_FILE=$(UNIT_COVERAGE)/data $(BIN)/pytest -q tests/unit --cov=media_pipeline \
	  --cov-report=json:$(UNIT_COVERAGE)/coverage.json
	$(BIN)/python tests/unit_coverage.py $(UNIT_COVERAGE)/coverage.json

# docs/configuration.md, made from the config's schema (a unit test fails when it is stale).
docs: $(STAMP)
	$(BIN)/python -c "import pathlib, media_pipeline.config.output as c; \
	pathlib.Path('docs/configuration.md').write_text(c.reference_markdown())"

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/report.py $(if $(QUICK),--quick)

# Mutation testing of the safety modules (slow: about an hour with the default sample).
mutation: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[mutation]'
	$(BIN)/python benchmarks/mutation.py

soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --items 1000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(UNIT_COVERAGE)
