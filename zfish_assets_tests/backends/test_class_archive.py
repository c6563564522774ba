"""Spark's class archive (`backends/class_archive.py`): a run's JVM maps the classes `make jars` archived."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from zfish_assets.backends.spark_session import SparkSettings, spark_conf


def _jvm_facts(spark) -> tuple[str, str, list[str]]:
    """The session JVM's java binary, class path and options, as the JVM itself reports them."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        pytest.skip("a Spark Connect client has no JVM of its own")
    jvm = spark.sparkContext._jvm
    options = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    return f"{jvm.System.getProperty('java.home')}/bin/java", jvm.System.getProperty("java.class.path"), options


def test_a_runs_jvm_maps_spark_classes_from_the_archive_make_jars_made(spark):
    """The session's JVM was started on this machine's archive, and a JVM on the same class path takes
    Spark's classes from it (its class-load log says where each class came from)."""
    java, class_path, options = _jvm_facts(spark)
    archives = [o.split("=", 1)[1] for o in options if o.startswith("-XX:SharedArchiveFile=")]
    assert archives, f"the session's JVM maps no class archive: run `make jars` to make it ({options})"

    def spark_classes(*archive: str) -> dict[str, str]:
        log = subprocess.run([java, "-cp", class_path, *archive, "-Xlog:class+load=info",
                              "org.apache.spark.deploy.SparkSubmit", "--version"],
                             capture_output=True, text=True, timeout=120).stdout
        return {line.split()[1]: line.split("source: ", 1)[-1] for line in log.splitlines()
                if " org.apache.spark." in line and "source: " in line}

    mapped = spark_classes(f"-XX:SharedArchiveFile={archives[0]}")
    assert mapped["org.apache.spark.deploy.SparkSubmit"] == "shared objects file (top)", mapped
    assert sum(source == "shared objects file (top)" for source in mapped.values()) >= 50
    assert "shared objects file (top)" not in spark_classes().values()  # without it: none


def test_without_an_archive_a_session_starts_as_before(tmp_path):
    """No archive for this Java and these jars (another machine, a new runtime): no option to map one."""
    settings = SparkSettings.from_env()
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in {p.name for p in settings.jars_dir.glob("*.jar")}:
        (jars / name).symlink_to(settings.jars_dir / name)
    options = spark_conf(replace(settings, jars_dir=jars))["spark.driver.extraJavaOptions"]
    assert "SharedArchive" not in options and "ArchiveClassesAtExit" not in options
    with_archive = spark_conf(settings)["spark.driver.extraJavaOptions"]
    assert f"-XX:SharedArchiveFile={settings.jars_dir}/spark-classes-" in with_archive
