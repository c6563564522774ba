"""The job's tests' Spark session: the project's where the project is installed, else a plain one.

These tests need nothing but the job (`glue_scripts/`) and pyspark, so they also run where only the
job's dependencies are installed: Glue 6.0's virtualenv (`make test-glue6`: Python 3.13, pyspark 4.1.1,
no Dagster, no Hudi bundle for its Spark). In the project's own virtualenv they share the process's one
session (zfish's, with Hudi's jars), as the rest of the suite does: a second builder there would hand
back whichever session started first, without the jars the other tests need.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

PLAIN_CONF = {
    "spark.master": "local[2]",
    "spark.app.name": "zfish-job-tests",
    "spark.sql.session.timeZone": "UTC",  # the job's (glue_scripts/zfish_etl/spark_conf.py)
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
}


def plain_session():
    """A local session with the job's session settings but Hudi's (whose jars are absent here)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in PLAIN_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@pytest.fixture(scope="session")
def spark():
    if importlib.util.find_spec("dagster") is None:
        session = plain_session()
        yield session
        session.stop()
        return
    from zfish_assets.backends.spark_session import get_spark_session

    yield get_spark_session()
