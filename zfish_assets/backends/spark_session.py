"""The one Spark session factory: Spark 3.5 + Hudi, configured as on AWS Glue (`ZFISH_GLUE_VERSION`).

Everything that needs Spark gets its session here, so the settings that Hudi depends on (Kryo,
the Hudi SQL extension and catalog, UTC) cannot differ between the demo, the tests and a cluster.
A local session takes 7-11 s to start: start it once per process. With `ZFISH_SPARK_REMOTE`
(`sc://host:port`) the session is a client of a warm Spark Connect server started with the same
settings (`connect_server`), refused when that server runs other job code than this checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from glue_scripts.zfish_etl.spark_conf import SESSION_CONF, s3a_encryption_conf
from zfish_assets.backends.class_archive import QUIET, archive_path, sharing_option
from zfish_assets import settings
from zfish_assets.backends.ports import LOOPBACK
from zfish_assets.runtimes import S3A_COORDINATES, jar_name
from zfish_assets.setting_kinds import masked_url  # noqa: F401 (also `spark_session.masked_url`, as before)
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
CODE_CONF = "spark.zfish.code_sha256"  # the job code's digest a Connect server was started with


class SparkEnvironmentError(RuntimeError):
    """Java or the jars Spark needs are missing: the message says what to install or run."""


class StaleEngineError(SparkEnvironmentError):
    """The Spark Connect server is unreachable, or runs other job code than this checkout's."""


@dataclass(frozen=True)
class SparkSettings:
    """How to start Spark. `master` is `local[N]` here and a cluster URL elsewhere."""

    master: str = "local[2]"
    app_name: str = "zfish"
    jars_dir: Path = field(default_factory=settings.jars_dir)
    with_s3a: bool = False
    extra_conf: tuple[tuple[str, str], ...] = ()
    archive_classes_to: Path | None = None  # make the class archive there as the JVM exits (`class_archive.py`)

    @classmethod
    def from_env(cls) -> "SparkSettings":
        """`ZFISH_SPARK_MASTER` (default `local[2]`), `ZFISH_SPARK_S3A` and `ZFISH_JARS_DIR`."""
        return cls(master=settings.SPARK_MASTER.get(), with_s3a=settings.SPARK_S3A.get())

    @property
    def cores(self) -> int:
        """Cores the master offers: N of `local[N]`, all of `local[*]`, 2 for a cluster we cannot see."""
        match = re.fullmatch(r"local\[(\d+|\*)\]", self.master, re.ASCII)
        if match is None:
            return 2 if self.master != "local" else 1
        return os.cpu_count() or 2 if match.group(1) == "*" else int(match.group(1))


def jdk_tool(name: str) -> str | None:
    """The JDK's `name` (java, javac) that Spark's launcher would use: under JAVA_HOME when set, else on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    tool = str(Path(java_home) / "bin" / name) if java_home else shutil.which(name)
    return tool if tool and Path(tool).exists() else None


def check_java() -> None:
    """Fail with what to install when Java 17 is not what Spark would start."""
    java = jdk_tool("java")
    if not java:
        raise SparkEnvironmentError(
            "Java 17 is required (Spark 3.5, as on AWS Glue 5.0) and none was found: "
            "install it (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out, re.ASCII)
    if not match or match.group(1) != "17":
        raise SparkEnvironmentError(
            f"Java 17 is required; {java} reports {out.splitlines()[0] if out else 'nothing'}. "
            "Install openjdk-17 and set JAVA_HOME to it."
        )


def check_pyspark() -> None:
    """Fail naming the virtualenv to use when pyspark is not the chosen Glue runtime's Spark."""
    import pyspark

    wanted = settings.glue_runtime()
    try:
        wanted.require_local()
    except ValueError as exc:
        raise SparkEnvironmentError(f"ZFISH_GLUE_VERSION={wanted.glue_version}: {exc}") from None
    if pyspark.__version__ != wanted.pyspark:
        raise SparkEnvironmentError(
            f"ZFISH_GLUE_VERSION={wanted.glue_version} runs Spark {wanted.pyspark}, and this Python has pyspark "
            f"{pyspark.__version__}: use the runtime's virtualenv (`make venv GLUE={wanted.glue_version}` makes "
            f".venv{wanted.suffix}), or set ZFISH_GLUE_VERSION to this one's runtime."
        )


def jar_paths(spark_settings: SparkSettings) -> list[Path]:
    """The jars for this session, failing with the command that fetches them when one is missing."""
    # The s3a jars only when asked for: the SDK bundle alone is 280 MB, and loading it took 1.5-3 s
    # of every local session's start.
    names = [jar_name(settings.glue_runtime().hudi_coordinate), *(map(jar_name, S3A_COORDINATES) if spark_settings.with_s3a else ())]
    paths = [spark_settings.jars_dir / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SparkEnvironmentError(
            f"Spark jars missing from {spark_settings.jars_dir}: {', '.join(missing)}. "
            f"Run `make jars GLUE={settings.glue_runtime().glue_version}` (or `bin/fetch-jars`) to fetch them with Maven."
        )
    return paths


SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1"
"""A run's own JVM compiles with C1 only: it lives for one run of seconds, in which the C2
compiler's threads spent half of the join's CPU on a fresh JVM (35.5 s of CPU with C2, 19.0 s
without, the same evening on 2 cores; docs/performance.md) and never paid it back. The warm engine, which
lives for many runs, keeps C2."""


def spark_conf(spark_settings: SparkSettings, long_lived: bool = False) -> dict[str, str]:
    """Every Spark setting zfish relies on, sized for the master's cores; `long_lived` for a JVM
    that serves many runs (the warm engine), else one run's own."""
    cores = str(spark_settings.cores)
    jit = "" if long_lived else f"{SHORT_LIVED_JVM} "
    conf = {
        "spark.jars": ",".join(str(p) for p in jar_paths(spark_settings)),
        **SESSION_CONF,
        # UTC everywhere; self-attach lets Hudi size objects without printing a warning per write.
        "spark.driver.extraJavaOptions": f"{jit}-Duser.timezone=UTC -Djdk.attach.allowAttachSelf=true "
        f"-Djol.skipHotspotSAAttach=true -Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} "
        f"{class_sharing(spark_settings)}".rstrip(),
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": cores,
        "spark.default.parallelism": cores,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.driver.memory": settings.SPARK_DRIVER_MEMORY.get(),
    }
    if spark_settings.master.startswith("local"):
        # Python workers run this interpreter: the job judges raw lines on them with glue_scripts' contract.
        conf["spark.pyspark.python"] = sys.executable
    conf.update(dict(spark_settings.extra_conf))
    return conf


def class_sharing(spark_settings: SparkSettings) -> str:
    """The driver's class archive option: make it (`archive_classes_to`), else map this machine's if made."""
    if spark_settings.archive_classes_to is not None:
        return f"-XX:ArchiveClassesAtExit={spark_settings.archive_classes_to} {QUIET}"
    java = jdk_tool("java")
    return sharing_option(archive_path(java, spark_settings.jars_dir)) if java else ""


def remote_url() -> str:
    """`ZFISH_SPARK_REMOTE`: the Spark Connect server runs connect to (empty: an in-process session)."""
    return settings.SPARK_REMOTE.get()


WARM = "warm"
"""`ZFISH_SPARK_REMOTE=warm`: this data dir's warm engine, whatever its port and secret, waited for while it
starts (`make dev` starts it in the background and serves the UI meanwhile)."""


def get_spark_session(spark_settings: SparkSettings | None = None, remote: str | None = None):
    """The process's Spark session with zfish's settings (created on first call, then reused).

    A client of the Spark Connect server at `remote` (default `ZFISH_SPARK_REMOTE`) when that is set, else in
    process. `warm` names a server that may still be starting: `connect_server.resolve_remote` waits for it and
    gives its URL (that module builds on this one, so the wait is asked for by the caller).
    """

    remote = remote_url() if remote is None else remote
    if remote == WARM:
        raise SparkEnvironmentError(f"{settings.SPARK_REMOTE.name}={WARM} reached a session unresolved: pass "
                                    "connect_server.resolve_remote(url) as `remote` (it waits for the warm engine)")
    if remote:
        return remote_session(remote)
    spark_settings = spark_settings or SparkSettings.from_env()
    check_java()
    check_pyspark()
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)  # never bind to the machine's network address
    if spark_settings.master.startswith("local"):
        # PySpark launches its Python workers with PYSPARK_PYTHON (else `python3` on the PATH), not
        # `spark.pyspark.python`: without it they ran another interpreter, lacking pyarrow for mapInArrow.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = pyspark_session({"spark.master": spark_settings.master, "spark.app.name": spark_settings.app_name,
                             **spark_conf(spark_settings)})
    spark.sparkContext.setLogLevel(settings.SPARK_LOG_LEVEL.get())
    return spark


def pyspark_session(spark_config: dict[str, str]):
    """The session dagster-pyspark's `LazyPySparkResource` builds from `spark_config` (Spark's builder, each
    key set with `config`, then `getOrCreate`: the process's session once made).

    It is used here as a plain object, not as a Dagster resource: the session is one per process, shared by
    the IO manager's reads, the local engine and the checks, whichever resource asks first. A Spark Connect
    session is made by `connect_session` instead (the resource's `spark.remote` cost a 10-minute wait there).
    """
    from dagster_pyspark import LazyPySparkResource

    return LazyPySparkResource(spark_config=spark_config).spark_session


def remote_session(url: str):
    """A Spark Connect session at `url`, once the server is known to run this checkout's job code.

    Its Python workers import `glue_scripts` as it was when the server started (and keep it: workers
    are reused), so a server started before the code changed would judge and join with old code.
    Messages show the URL with its secret masked.
    """
    from urllib.parse import urlparse

    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    from zfish_assets.backends.job_code import script_sha256

    parsed, shown = urlparse(url), masked_url(url)
    if parsed.scheme != "sc" or not parsed.hostname:
        raise StaleEngineError(f"{settings.SPARK_REMOTE.name}={shown!r} is not a Spark Connect URL such as "
                               "sc://127.0.0.1:15002/;x-zfish-token=... (`zfish engine start` prints it)")
    try:
        # The client retries an absent server for minutes; a closed port is known at once.
        _connect(url)
    except OSError as exc:
        raise StaleEngineError(
            f"no Spark Connect server answers at {shown} ({settings.SPARK_REMOTE.name}): {exc}. Start it with "
            f"`zfish engine start` (`make dev` does), or unset {settings.SPARK_REMOTE.name} for an in-process session."
        ) from None
    spark = connect_session(url)
    try:
        served, expected = spark.conf.get(CODE_CONF, "") or "none", script_sha256()
    except SparkConnectGrpcException as exc:
        if "UNAUTHENTICATED" not in str(exc) and "PERMISSION_DENIED" not in str(exc):
            raise
        _discard(spark)
        raise StaleEngineError(
            f"the Spark Connect server at {shown} ({settings.SPARK_REMOTE.name}) refused this client: "
            f"{_grpc_details(str(exc))}") from None
    if served != expected:
        raise StaleEngineError(
            f"the Spark Connect server at {shown} runs other job code than this checkout ({CODE_CONF} {served}, "
            f"code {expected}): restart it with `zfish engine start` (it replaces a stale server)."
        )
    return spark


ENGINE_RETRIES = {"max_retries": 5, "initial_backoff": 50, "backoff_multiplier": 4.0, "max_backoff": 5000}
"""How long a Connect client retries a server that does not answer: about 10 s (0.05 + 0.2 + 0.8 + 3.2 + 5). pyspark's
own policy retries `UNAVAILABLE` for at least 10 minutes, made for a remote cluster that restarts; the warm engine
is this machine's process, and when it ends (killed, out of memory, `zfish engine stop`) it does not come back by
itself: a run then waited 10 minutes with no line saying why."""


def connect_session(url: str):
    """The process's Spark Connect session at `url` (made on first call, then reused), with `ENGINE_RETRIES`
    set before its first call to the server.

    Made from a `ChannelBuilder`, not the builder's `spark.remote` (`pyspark_session`): given that, pyspark
    3.5's builder sets `spark.remote` on the server as a session setting, twice, each with its own default
    policy of 10 minutes' retries that no setting reaches, and a server killed at that moment held the run
    20 minutes; it also copied the URL, secret included, into the server's session settings."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession as ClassicSession
    from pyspark.sql.connect.client import ChannelBuilder
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    # What pyspark's own builder checks and sets on its way to a Connect session (pyspark 3.5's `session.py`).
    if SparkContext._active_spark_context is not None or ClassicSession._instantiatedSession is not None:
        raise SparkEnvironmentError(f"this process already runs an in-process Spark session: a Spark Connect session "
                                    f"({settings.SPARK_REMOTE.name}) cannot start beside it")
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark's functions build Connect columns from now on
    spark = ConnectSession.builder.channelBuilder(ChannelBuilder(url)).getOrCreate()
    spark.client._retry_policy.update(ENGINE_RETRIES)  # pyspark 3.5's builder takes no policy: its client's dict
    return spark


def _connect(url: str) -> None:
    """Open and close a TCP connection to the Connect server of `url`: OSError when nothing listens there."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    socket.create_connection((parsed.hostname, parsed.port or 15002), timeout=5).close()


def _answers(url: str) -> bool:
    """Whether the Connect server of `url` still listens. A bool, not the OSError: raised as the context of an
    error, a refused connection would read as an AWS endpoint that cannot be reached (`aws_errors.unreachable`)."""
    try:
        _connect(url)
    except OSError:
        return False
    return True


@contextmanager
def naming_a_gone_engine(url: str) -> Iterator[None]:
    """Run a block on the session of `url` (a Spark Connect URL, or "" in process): when it fails and the server
    no longer listens, the failure names the warm engine and the fix instead of gRPC's `UNAVAILABLE` text.
    zfish's own refusals (`SparkEnvironmentError`: no server at all, a stale one) already say so: left as they are."""
    try:
        yield
    except SparkEnvironmentError:
        raise
    except Exception as exc:
        if url and not _answers(url):
            raise StaleEngineError(
                f"the warm engine at {masked_url(url)} ({settings.SPARK_REMOTE.name}) stopped answering during the "
                f"run ({type(exc).__name__}): its server ended or was stopped. Start it again with `zfish engine "
                f"start` (`make dev` does) and re-run, or unset {settings.SPARK_REMOTE.name} for an in-process session."
            ) from exc
        raise


def _discard(spark) -> None:
    """Stop a refused session (else it stays the process's default, whatever URL comes next) and
    collect it now, on this thread: pyspark 3.5 closes a collected session from `__del__`, and when
    that runs on a thread of its shared release pool while another thread stops a session, each
    waits for the other forever (`ExecutePlanResponseReattachableIterator.shutdown`)."""
    import gc

    spark.stop()
    del spark
    gc.collect()


def _grpc_details(message: str) -> str:
    """The server's own words from a gRPC error's text (`details = "..."`), else the text."""
    found = re.search(r'details = "([^"]*)"', message)
    return found.group(1) if found else message.strip()


REFRESHING_PROVIDER = "com.amazonaws.auth.DefaultAWSCredentialsProviderChain"


def s3a_conf(endpoint_url: str = "", region: str = "", credentials: dict[str, str] | None = None,
             kms_key_arn: str = "") -> dict[str, str]:
    """Hadoop settings for s3a (keys without the `spark.hadoop.` prefix); `s3://` paths go through s3a too.

    Credentials that expire (`refreshable`: a role's, an instance's or container's, as boto3 found them)
    are not copied: s3a resolves them itself through the AWS SDK's default chain (environment, profile
    with `role_arn`, web identity, container and instance roles), which renews them before they expire,
    so a join longer than a role session's life keeps writing. Static keys are passed as they are.
    """
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
    conf.update(s3a_encryption_conf(kms_key_arn))
    if credentials and credentials.get("refreshable"):
        conf["fs.s3a.aws.credentials.provider"] = REFRESHING_PROVIDER
    elif credentials:
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
    In-process sessions only: a Spark Connect client cannot reach the server's Hadoop configuration.
    """
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    changed = any(hadoop.get(k) != v for k, v in conf.items())
    for key, value in conf.items():
        hadoop.set(key, value)
    if changed:
        spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.closeAll()
