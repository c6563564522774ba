# The two commands a newcomer types: `make demo` and `make test`. Each sets up what it needs
# (virtualenv, Spark's jars) on a fresh machine, and reuses what is already there.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.complete

.PHONY: demo test check dev jars venv clean

demo: $(STAMP) $(JARS_STAMP)
	$(VENV)/bin/zfish demo

test: $(STAMP) $(JARS_STAMP)
	$(VENV)/bin/python -m pytest

# Every asset check over every day of the configured deployment (after `make demo`: the walkthrough's),
# as one Dagster run on the instance in DAGSTER_HOME; JUNIT=FILE also writes JUnit XML. No Spark.
check: $(STAMP)
	$(VENV)/bin/zfish check --all $(if $(JUNIT),--junit $(JUNIT))

# `zfish dev` is `dagster dev -w workspace.yaml` with DAGSTER_HOME defaulting to $$ZFISH_DATA_DIR/dagster,
# created with the project's dagster.yaml (run queue, the hudi_writer pool limit, no sign-up dialog), and
# SIGTERM stopping it even when started in the background; the schedule and sensors start RUNNING.
dev: $(STAMP) $(JARS_STAMP)
	ZFISH_CLOCK=$${ZFISH_CLOCK:-2025-05-11T18:00:00Z} $(VENV)/bin/zfish dev

venv: $(STAMP)
jars: $(JARS_STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "zfish: Python 3.11 is required ('$(PYTHON)' not found); set PYTHON=/path/to/python3.11" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(JARS_STAMP): bin/fetch-jars
	bin/fetch-jars
	touch $(JARS_STAMP)

clean:
	rm -rf .zfish
