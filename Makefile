# The two commands a newcomer types: `make demo` and `make test`. Each sets up what it needs
# (virtualenv, Spark's jars; for the tests also Trino) on a fresh machine, and reuses what is already there.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars/.complete

.PHONY: demo test dev jars trino venv clean

demo: $(STAMP) $(JARS_STAMP)
	$(VENV)/bin/zfish demo

# The suite on in-process Spark, then the walkthrough's tests again on the warm engine (one Spark
# Connect server for that session): the job's one code path proven on both. The 37 evenings of
# test_daily_evenings_equal_one_backfill run the same job calls as the walkthrough's: left out there.
test: $(STAMP) $(JARS_STAMP) trino
	$(VENV)/bin/python -m pytest
	$(VENV)/bin/python -m pytest --spark-connect zfish_assets_tests/test_joined.py zfish_assets_tests/test_warm_engine.py \
	  --deselect zfish_assets_tests/test_joined.py::test_daily_evenings_equal_one_backfill

# DAGSTER_HOME defaults to $$ZFISH_DATA_DIR/dagster, created with the project's dagster.yaml (run queue,
# the hudi_writer pool limit) by zfish_assets.instance; the schedule and sensors start RUNNING.
# Runs share the warm engine (a Spark Connect server started here, stopped when dagster dev ends),
# unless ZFISH_SPARK_REMOTE already names one.
dev: $(STAMP) $(JARS_STAMP)
	@set -e; \
	if [ -z "$$ZFISH_SPARK_REMOTE" ]; then \
	  ZFISH_SPARK_REMOTE=$$($(VENV)/bin/zfish engine start); export ZFISH_SPARK_REMOTE; \
	  trap '$(VENV)/bin/zfish engine stop' EXIT INT TERM; \
	fi; \
	DAGSTER_HOME=$$($(VENV)/bin/python -W ignore -c 'from zfish_assets.instance import dagster_home; print(dagster_home())') \
	ZFISH_CLOCK=$${ZFISH_CLOCK:-2025-05-11T18:00:00Z} $(VENV)/bin/dagster dev -w workspace.yaml

venv: $(STAMP)
jars: $(JARS_STAMP)
# Trino (Athena's engine) for zfish_assets_tests/test_trino.py; bin/fetch-trino returns at once when it is there.
trino:
	bin/fetch-trino >/dev/null

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
