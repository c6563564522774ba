"""ZFISH_GLUE_VERSION: one runtime's facts everywhere they are used (jars, Spark check, deployed job)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zfish_assets import runtimes, settings
from zfish_assets.backends.spark_session import SparkEnvironmentError, SparkSettings, check_pyspark, jar_paths


def test_each_runtime_names_its_spark_hudi_jars_and_folders(monkeypatch):
    monkeypatch.delenv("ZFISH_JARS_DIR", raising=False)
    monkeypatch.setenv("ZFISH_GLUE_VERSION", "5.1")
    assert (settings.glue_runtime().pyspark, settings.glue_runtime().hudi) == ("3.5.6", "1.0.2")
    assert settings.jars_dir() == (settings.REPO_ROOT / ".cache" / "jars-glue5.1").resolve()
    monkeypatch.delenv("ZFISH_GLUE_VERSION")
    assert (settings.glue_runtime().pyspark, settings.glue_runtime().hudi) == ("3.5.4", "0.15.0")
    assert settings.jars_dir() == (settings.REPO_ROOT / ".cache" / "jars").resolve()


def test_an_unknown_runtime_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("ZFISH_GLUE_VERSION", "4.0")
    with pytest.raises(ValueError, match=r"ZFISH_GLUE_VERSION='4.0' is not one of 5.0, 5.1"):
        settings.glue_runtime()
    script = subprocess.run([sys.executable, str(settings.REPO_ROOT / "zfish_assets" / "runtimes.py"), "pyspark", "4.0"],
                            capture_output=True, text=True)
    assert script.returncode == 2 and "is not one of 5.0, 5.1" in script.stderr


def test_the_script_prints_what_make_and_fetch_jars_read():
    def fact(*args: str) -> str:
        return subprocess.run([sys.executable, str(settings.REPO_ROOT / "zfish_assets" / "runtimes.py"), *args],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert fact("pyspark", "5.1") == "3.5.6" and fact("suffix", "5.1") == "-glue5.1" and fact("suffix", "5.0") == ""
    assert fact("jars", "5.1").splitlines()[0] == "org.apache.hudi:hudi-spark3.5-bundle_2.12:1.0.2"


def test_the_other_runtimes_spark_is_refused_before_a_session_starts(monkeypatch, tmp_path):
    import pyspark

    other = next(v for v, r in runtimes.RUNTIMES.items() if r.pyspark != pyspark.__version__)
    monkeypatch.setenv("ZFISH_GLUE_VERSION", other)
    with pytest.raises(SparkEnvironmentError, match=rf"ZFISH_GLUE_VERSION={other} runs Spark .*make venv GLUE={other}"):
        check_pyspark()
    monkeypatch.setenv("ZFISH_JARS_DIR", str(tmp_path))
    with pytest.raises(SparkEnvironmentError, match=rf"hudi-spark3.5-bundle_2.12-{runtimes.RUNTIMES[other].hudi}.jar"):
        jar_paths(SparkSettings(jars_dir=tmp_path))


@pytest.mark.parametrize("version", sorted(runtimes.RUNTIMES))
def test_the_deployed_job_runs_the_chosen_glue_version(monkeypatch, version):
    from zfish_assets.tools.deploy import DeploySettings, job_definition

    monkeypatch.setenv("ZFISH_GLUE_VERSION", version)
    for name, value in (("ZFISH_S3_BUCKET", "lake"), ("ZFISH_GLUE_ROLE_ARN", "arn:aws:iam::000000000000:role/zfish"),
                        ("ZFISH_AWS_REGION", "eu-west-1")):
        monkeypatch.setenv(name, value)
    assert job_definition(DeploySettings.from_env())["GlueVersion"] == version


def test_glue_6_is_deployed_and_refused_locally_naming_what_to_run(monkeypatch):
    """Glue 6.0 (AWS: Spark 4.1.1, Scala 2.13, Python 3.13, Hudi 1.1.1) has no Hudi bundle on Maven Central for
    its Spark, and its Python is not the Dagster side's: a local session, the jar fetch and the Makefile's local
    targets refuse it, each saying what runs instead."""
    six = runtimes.RUNTIMES["6.0"]
    assert (six.pyspark, six.python, six.hudi, six.local) == ("4.1.1", "3.13", "1.1.1", False)
    assert six.hudi_coordinate == "org.apache.hudi:hudi-spark4.0-bundle_2.13:1.1.1"
    monkeypatch.setenv("ZFISH_GLUE_VERSION", "6.0")
    with pytest.raises(SparkEnvironmentError, match=r"ZFISH_GLUE_VERSION=6.0: Glue 6.0 .* is deployed, not run locally: "
                       r"Maven Central serves no org.apache.hudi:hudi-spark4.0-bundle_2.13:1.1.1.*make test-glue6"):
        check_pyspark()
    script = subprocess.run([sys.executable, str(settings.REPO_ROOT / "zfish_assets" / "runtimes.py"), "jars", "6.0"],
                            capture_output=True, text=True)
    assert script.returncode == 2 and "ZFISH_GLUE_VERSION=5.0 or 5.1" in script.stderr
    make = subprocess.run(["make", "-n", "demo", "GLUE=6.0"], cwd=settings.REPO_ROOT, capture_output=True, text=True)
    assert make.returncode != 0 and "GLUE=6.0 is deployed, not run locally" in make.stderr
    glue6 = subprocess.run(["make", "-n", "test-glue6", "GLUE=6.0"], cwd=settings.REPO_ROOT, capture_output=True, text=True)
    assert glue6.returncode == 0 and "pytest" in glue6.stdout and "glue_scripts_tests" in glue6.stdout, glue6.stderr
