# The two commands a newcomer types: `make demo` and `make test`. Each sets up what it needs
# (virtualenv, Spark's jars; for the tests also Trino) on a fresh machine, and reuses what is already there.
PYTHON ?= python3.11
# The AWS Glue runtime: 5.0 (Spark 3.5.4, Hudi 0.15) or 5.1 (Spark 3.5.6, Hudi 1.0.2), each with its
# own virtualenv and jar folder (.venv and .cache/jars for 5.0, .venv-glue5.1 and .cache/jars-glue5.1).
# 6.0 (Spark 4.1.1, Python 3.13, Hudi 1.1.1) is deployed only: `make test-glue6` tests the job's Spark-only code on it.
GLUE ?= $(or $(ZFISH_GLUE_VERSION),5.0)
export ZFISH_GLUE_VERSION := $(GLUE)
RUNTIME_SUFFIX := $(shell python3 zfish_assets/runtimes.py suffix $(GLUE))
PYSPARK := $(shell python3 zfish_assets/runtimes.py pyspark $(GLUE))
ifeq ($(PYSPARK),)
$(error GLUE=$(GLUE) is not a Glue runtime zfish knows: 5.0, 5.1 or 6.0)
endif
ifeq ($(shell python3 zfish_assets/runtimes.py local $(GLUE)),false)
ifneq ($(filter-out test-glue6,$(or $(MAKECMDGOALS),demo)),)
$(error GLUE=$(GLUE) is deployed, not run locally (no Hudi bundle for its Spark on Maven Central): run local targets with GLUE=5.0 or 5.1; `make test-glue6` tests the job's Spark-only code on Glue $(GLUE)'s Spark)
endif
endif
VENV := .venv$(RUNTIME_SUFFIX)
# What the virtualenv installs: every package pinned, per Glue runtime, so a fresh clone installs what CI
# tested (`make lock` refreshes them all; `make test-latest` does so and runs the suite).
LOCK := requirements/glue$(GLUE).txt
STAMP := $(VENV)/.installed
JARS_STAMP := .cache/jars$(RUNTIME_SUFFIX)/.complete

.PHONY: demo test test-runtime test-glue6 check check-defs dev jars classes trino venv lock test-latest clean

# What a second Glue runtime must pass beside the whole suite on the default (CI: GLUE=5.1): the
# engine, the walkthrough, the incremental join, the crash points, and the runtime's own facts.
RUNTIME_TESTS := zfish_assets_tests/foundation/test_runtimes.py zfish_assets_tests/zfish_etl/test_hudi_roundtrip.py \
	zfish_assets_tests/assets/test_joined.py zfish_assets_tests/assets/test_incremental.py zfish_assets_tests/reliability/test_reliability_crash.py

demo: $(STAMP) $(JARS_STAMP) classes
	$(VENV)/bin/zfish demo

# Two pytest-xdist workers, one per core, each given whole modules (a module's servers and templates
# are built once per worker): much of the suite waits on processes it starts (Dagster runs, Trino,
# moto, Spark's driver work on one core), which a second worker overlaps. Same commit, same machine
# loaded 5-11 by other jobs: 1385 s in one process, 1177 s in two. `make test TEST_WORKERS=` runs one.
TEST_WORKERS ?= -n 2 --dist loadfile
# The suite on in-process Spark, then the walkthrough's tests again on the warm engine (one Spark
# Connect server for that session): the job's one code path proven on both. The 37 evenings of
# test_daily_evenings_equal_one_backfill run the same job calls as the walkthrough's: left out there.
test: $(STAMP) $(JARS_STAMP) classes trino
	$(VENV)/bin/python -m pytest $(TEST_WORKERS) $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest --spark-connect zfish_assets_tests/assets/test_joined.py zfish_assets_tests/backends/test_warm_engine.py \
	  zfish_assets_tests/backends/test_closed_engine.py \
	  --deselect zfish_assets_tests/assets/test_joined.py::test_daily_evenings_equal_one_backfill

test-runtime: $(STAMP) $(JARS_STAMP) classes
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) $(RUNTIME_TESTS)

# Glue 6.0's job on its own Python and Spark: every module of glue_scripts imports on Python 3.13, and the
# job's Spark-only tests (glue_scripts_tests/: the transforms and the read of raw days; no Hudi, no Dagster) pass on pyspark 4.1.1 and
# Java 17, in .venv-glue6 from requirements/glue6.0.txt. The Hudi write is not run: Maven Central has no
# Hudi bundle for Spark 4. PYTHON313=/path/to/python3.13 when it is neither on PATH nor in pyenv.
GLUE6_VENV := .venv-glue6
GLUE6_PYTHON_VERSION := $(shell python3 zfish_assets/runtimes.py python 6.0)
PYTHON313 ?= $(or $(shell python$(GLUE6_PYTHON_VERSION) -c 'import sys; print(sys.executable)' 2>/dev/null),$(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/$(GLUE6_PYTHON_VERSION).*/bin/python$(GLUE6_PYTHON_VERSION)))),python$(GLUE6_PYTHON_VERSION))
test-glue6: $(GLUE6_VENV)/.installed
	$(GLUE6_VENV)/bin/python -m pytest $(PYTEST_ARGS) glue_scripts_tests

$(GLUE6_VENV)/.installed: requirements/glue6.0.txt
	@$(PYTHON313) -c 'import sys; assert sys.version_info[:2] == tuple(map(int, "$(GLUE6_PYTHON_VERSION)".split(".")))' 2>/dev/null || \
	  { echo "zfish: Python $(GLUE6_PYTHON_VERSION) is required for Glue 6.0 ('$(PYTHON313)' is not it); set PYTHON313=/path/to/python$(GLUE6_PYTHON_VERSION)" >&2; exit 1; }
	test -x $(GLUE6_VENV)/bin/python || $(PYTHON313) -m venv $(GLUE6_VENV)
	$(GLUE6_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/glue6.0.txt
	touch $@

# Every asset check over every day of the configured deployment (after `make demo`: the walkthrough's),
# as one Dagster run on the instance in DAGSTER_HOME; JUNIT=FILE also writes JUnit XML. No Spark.
check: $(STAMP)
	$(VENV)/bin/zfish check --all $(if $(JUNIT),--junit $(JUNIT))

# `zfish dev` is `dg dev` (the project's [tool.dg]) with DAGSTER_HOME defaulting to $$ZFISH_DATA_DIR/dagster,
# created with the project's dagster.yaml (run queue, the hudi_writer pool limit, no sign-up dialog), and
# SIGTERM stopping it even when started in the background; the schedule and sensors start RUNNING.
# Runs share the warm engine (a Spark Connect server started here, stopped when dagster dev ends),
# unless ZFISH_SPARK_REMOTE already names one, or the deployment's joins do not run Spark on this
# machine's disk (ZFISH_ENGINE=glue, a lake on S3: none is started). It starts and warms in the background while the UI comes
# up; runs that need Spark wait for it (ZFISH_SPARK_REMOTE=warm, a line in their log). It listens on
# 127.0.0.1 only and requires its secret (new at each start, in ZFISH_DATA_DIR/engine/secret, mode
# 0600; runs read it there; never printed by status or logs). DEV_ARGS go to `zfish dev`
# (e.g. DEV_ARGS="-- -h 127.0.0.1 -p 3001").
dev: $(STAMP) $(JARS_STAMP) classes
	@set -e; \
	if [ -z "$$ZFISH_SPARK_REMOTE" ]; then \
	  ZFISH_SPARK_REMOTE=$$($(VENV)/bin/zfish engine start --background); export ZFISH_SPARK_REMOTE; \
	  if [ -n "$$ZFISH_SPARK_REMOTE" ]; then trap '$(VENV)/bin/zfish engine stop' EXIT; fi; trap 'exit 130' INT TERM; \
	fi; \
	$(VENV)/bin/zfish dev $(DEV_ARGS)

# The definitions load as `dg dev` loads them (the project's [tool.dg]); CI runs it first.
check-defs: $(STAMP)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/dg check defs

venv: $(STAMP)
jars: $(JARS_STAMP) classes
# Spark's class archive beside the jars (backends/class_archive.py, made by domain/warm_evenings.py): made once per machine and Java
# (about 45 s), it takes 20-35% off each fresh JVM's start and first Hudi write; at once done when made.
classes: $(STAMP) $(JARS_STAMP)
	$(VENV)/bin/python -m zfish_assets.domain.warm_evenings
# Trino (Athena's engine) for zfish_assets_tests/resources/test_trino.py; bin/fetch-trino returns at once when it is there.
trino:
	bin/fetch-trino >/dev/null

# Everything from the lock: the virtualenv's own pip (the one Python 3.11 bundles; not upgraded from PyPI) and
# the lock's setuptools to build zfish itself (no build isolation, which would fetch the newest setuptools).
$(STAMP): pyproject.toml zfish_assets/runtimes.py $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "zfish: Python 3.11 is required ('$(PYTHON)' not found); set PYTHON=/path/to/python3.11" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r $(LOCK)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve the runtimes' locks: 5.0's and 5.1's from pyproject.toml's ranges, 6.0's (the job alone, Python 3.13)
# from requirements/glue6.0.in (UPGRADE=1: to the newest versions served). uv resolves for Linux x86-64 and each
# lock's Python whatever runs it; it is installed into the virtualenv on demand, not locked. Each pin carries the
# sha256 of every file PyPI serves for it, and the installs pass --require-hashes: a file that changed since the
# lock (a replaced upload, a tampering mirror or proxy) stops the install instead of being run.
lock: $(STAMP)
	@test -x $(VENV)/bin/uv || $(VENV)/bin/python -m pip install -q uv
	@mkdir -p .cache/lock
	@for glue in 5.0 5.1; do \
	  echo "pyspark[connect]==$$(python3 zfish_assets/runtimes.py pyspark $$glue)" > .cache/lock/pyspark-$$glue.txt; \
	  $(VENV)/bin/uv pip compile -q pyproject.toml --extra test -c .cache/lock/pyspark-$$glue.txt $(if $(UPGRADE),--upgrade) \
	    --generate-hashes --no-strip-extras --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header -o requirements/glue$$glue.txt; \
	done
	@echo "pyspark==$$(python3 zfish_assets/runtimes.py pyspark 6.0)" > .cache/lock/pyspark-6.0.txt
	@$(VENV)/bin/uv pip compile -q requirements/glue6.0.in -c .cache/lock/pyspark-6.0.txt $(if $(UPGRADE),--upgrade) \
	  --generate-hashes --no-strip-extras --python-version $$(python3 zfish_assets/runtimes.py python 6.0) --python-platform x86_64-manylinux_2_28 --no-header \
	  -o requirements/glue6.0.txt
	@bin/lock-bare-extras requirements/glue5.0.txt requirements/glue5.1.txt requirements/glue6.0.txt
	@git diff --stat -- requirements/ || true

# The suite on the newest versions pyproject.toml allows: catches the next drift before a fresh clone does.
test-latest:
	$(MAKE) lock UPGRADE=1
	$(MAKE) test

$(JARS_STAMP): bin/fetch-jars zfish_assets/runtimes.py
	bin/fetch-jars
	touch $(JARS_STAMP)

clean:
	rm -rf .zfish
