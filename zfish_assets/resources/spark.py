"""The one Spark session factory: Spark 3.5 + Hudi 0.15, configured as on AWS Glue 5.0.

Everything that needs Spark gets its session here, so the settings that Hudi depends on (Kryo,
the Hudi SQL extension and catalog, UTC) cannot differ between the demo, the tests and a cluster.
A local session takes 7-11 s to start: start it once per process.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zfish_assets import settings

HUDI_BUNDLE = "hudi-spark3.5-bundle_2.12-0.15.0.jar"
S3A_JARS = ("hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar")
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


class SparkEnvironmentError(RuntimeError):
    """Java or the jars Spark needs are missing: the message says what to install or run."""


@dataclass(frozen=True)
class SparkSettings:
    """How to start Spark. `master` is `local[N]` here and a cluster URL elsewhere."""

    master: str = "local[2]"
    app_name: str = "zfish"
    jars_dir: Path = field(default_factory=settings.jars_dir)
    with_s3a: bool = False
    extra_conf: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls) -> "SparkSettings":
        """`ZFISH_SPARK_MASTER` (default `local[2]`), `ZFISH_SPARK_S3A` and `ZFISH_JARS_DIR`."""
        return cls(master=settings.env("ZFISH_SPARK_MASTER", "local[2]"),
                   with_s3a=settings.env("ZFISH_SPARK_S3A", "false") == "true")

    @property
    def cores(self) -> int:
        """Cores the master offers: N of `local[N]`, all of `local[*]`, 2 for a cluster we cannot see."""
        match = re.fullmatch(r"local\[(\d+|\*)\]", self.master)
        if match is None:
            return 2 if self.master != "local" else 1
        return os.cpu_count() or 2 if match.group(1) == "*" else int(match.group(1))


def check_java() -> None:
    """Fail with what to install when Java 17 is not what Spark would start."""
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkEnvironmentError(
            "Java 17 is required (Spark 3.5, as on AWS Glue 5.0) and none was found: "
            "install it (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or match.group(1) != "17":
        raise SparkEnvironmentError(
            f"Java 17 is required; {java} reports {out.splitlines()[0] if out else 'nothing'}. "
            "Install openjdk-17 and set JAVA_HOME to it."
        )


def jar_paths(spark_settings: SparkSettings) -> list[Path]:
    """The jars for this session, failing with the command that fetches them when one is missing."""
    # The s3a jars only when asked for: the SDK bundle alone is 280 MB, and loading it took 1.5-3 s
    # of every local session's start.
    names = [HUDI_BUNDLE, *(S3A_JARS if spark_settings.with_s3a else ())]
    paths = [spark_settings.jars_dir / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SparkEnvironmentError(
            f"Spark jars missing from {spark_settings.jars_dir}: {', '.join(missing)}. "
            "Run `make jars` (or `bin/fetch-jars`) to fetch them with Maven."
        )
    return paths


def spark_conf(spark_settings: SparkSettings) -> dict[str, str]:
    """Every Spark setting zfish relies on, sized for the master's cores."""
    cores = str(spark_settings.cores)
    conf = {
        "spark.jars": ",".join(str(p) for p in jar_paths(spark_settings)),
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
        "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
        "spark.sql.hive.convertMetastoreParquet": "false",
        "spark.sql.session.timeZone": "UTC",
        # UTC everywhere; self-attach lets Hudi size objects without printing a warning per write.
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Djdk.attach.allowAttachSelf=true -Djol.skipHotspotSAAttach=true "
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": cores,
        "spark.default.parallelism": cores,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": settings.env("ZFISH_SPARK_DRIVER_MEMORY", "4g"),
    }
    if spark_settings.master.startswith("local"):
        # Python workers run this interpreter: the job judges raw lines on them with glue_scripts' contract.
        conf["spark.pyspark.python"] = sys.executable
    conf.update(dict(spark_settings.extra_conf))
    return conf


def get_spark_session(spark_settings: SparkSettings | None = None):
    """The process's Spark session with zfish's settings (created on first call, then reused)."""
    from pyspark.sql import SparkSession

    spark_settings = spark_settings or SparkSettings.from_env()
    check_java()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never bind to the machine's network address
    builder = SparkSession.builder.master(spark_settings.master).appName(spark_settings.app_name)
    for key, value in spark_conf(spark_settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.env("ZFISH_SPARK_LOG_LEVEL", "WARN"))
    return spark


def s3a_conf(endpoint_url: str = "", region: str = "", credentials: dict[str, str] | None = None) -> dict[str, str]:
    """Hadoop settings for s3a (keys without the `spark.hadoop.` prefix); `s3://` paths go through s3a too."""
    conf = {
        "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # Keep folder markers: by default s3a deletes every parent's marker after each write, a
        # DeleteObjects on keys above the lake prefix (`use-cases/`) that a least-privilege writer may not delete.
        "fs.s3a.directory.marker.retention": "keep",
    }
    if endpoint_url:
        conf.update({
            "fs.s3a.endpoint": endpoint_url,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https://")).lower(),
        })
    if region:
        conf["fs.s3a.endpoint.region"] = region
    if credentials:
        conf["fs.s3a.access.key"] = credentials["access_key"]
        conf["fs.s3a.secret.key"] = credentials["secret_key"]
        if credentials.get("token"):
            conf["fs.s3a.session.token"] = credentials["token"]
            conf["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
        else:
            conf["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    return conf


def apply_s3a(spark, conf: dict[str, str]) -> None:
    """Set s3a settings on the running session's Hadoop configuration (the session may predate them).

    Cached s3a filesystems keep their old settings, so they are closed when the settings change.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    changed = any(hadoop.get(k) != v for k, v in conf.items())
    for key, value in conf.items():
        hadoop.set(key, value)
    if changed:
        spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.closeAll()
