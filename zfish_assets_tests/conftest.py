"""Shared fixtures: one Spark session per test process, a clean data dir per test, moto's server.

Fixtures only: the plain helpers test modules share are in `support/`.

Every test gets the same data dir path, emptied first: catalog locations are absolute, so a
landed-and-crawled walkthrough prepared once per session can be restored by copying it back.
Runs use an in-memory Dagster instance: the sqlite one spends most of a run storing events.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field

import pytest
from hypothesis import settings as hypothesis_settings

from zfish_assets.backends.ports import LOOPBACK
from zfish_assets_tests.support.aws_proxy import AwsProxy
from zfish_assets_tests.support.deploy import JOB, ROLE, serve_what_moto_lacks
from zfish_assets_tests.support.listening import Watch
from zfish_assets_tests.support.moto import BUCKET, REGION, no_default_endpoint
from zfish_assets_tests.support.scenario import keep_as_template, restore

# Property tests assert what a function returns, never how fast: on a machine shared with Spark
# and other workers, one example of a pure function once took 254 ms against Hypothesis's default
# 200 ms deadline (a failure of nothing the test checks). Tests that mean a time limit set their own.
hypothesis_settings.register_profile("zfish", deadline=None)
hypothesis_settings.load_profile("zfish")

# The walkthrough's clock: partitions run through the evening of 2025-05-11.
os.environ.setdefault("ZFISH_CLOCK", "2025-05-11T18:00:00Z")
# The suite's one Spark session serves the local lake and the S3 (moto) tests alike.
os.environ.setdefault("ZFISH_SPARK_S3A", "true")


def pytest_addoption(parser) -> None:
    parser.addoption("--spark-connect", action="store_true",
                     help="run every Spark session of the tests on one Spark Connect server this test session starts")
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="where the Dagster UI test saves its screenshots (default: the test's temporary folder); "
                          "`--screenshots docs/screenshots` refreshes README's")


@pytest.fixture(scope="session", autouse=True)
def listen_watch():
    """Every listening socket of this test session, watched from its start (before any server): nothing zfish or
    its tests start may listen beyond loopback (`support/listening.py`)."""
    watch = Watch().start()
    yield watch
    watch.stop()


@pytest.fixture(autouse=True)
def loopback_only(listen_watch):
    """Fails the test during which (or during whose fixtures' set-up) a process of the session listened on an
    address other than loopback."""
    yield
    beyond = listen_watch.unreported()
    if beyond:
        pytest.fail("listening beyond loopback (bind it to 127.0.0.1): " + "; ".join(beyond), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def spark_engine(request, tmp_path_factory):
    """With `--spark-connect`: the warm engine (Spark's Connect server), started once for the test
    session and stopped after it; every run and the `spark` fixture connect through ZFISH_SPARK_REMOTE."""
    if not request.config.getoption("--spark-connect"):
        yield None
        return
    from zfish_assets import settings
    from zfish_assets.backends import connect_server
    from zfish_assets.domain.warm_evenings import warm_up

    home = tmp_path_factory.mktemp("engine")
    state = connect_server.start(home=home, warm_up=warm_up)  # on a free port the kernel picks
    os.environ[settings.SPARK_REMOTE.name] = state.url
    try:
        yield state
    finally:
        del os.environ[settings.SPARK_REMOTE.name]
        connect_server.stop(home)


@pytest.fixture(scope="session")
def spark(spark_engine):
    from zfish_assets.backends.spark_session import get_spark_session

    return get_spark_session()


@pytest.fixture(scope="session")
def trino(tmp_path_factory):
    """A Trino server (Athena's engine) for the session, stopped at its end; skipped without Java 24+."""
    from zfish_assets_tests.support.trino import MIN_JAVA, TrinoServer, fetch_trino, find_java_home

    java_home = find_java_home()
    if java_home is None:
        pytest.skip(f"Trino needs Java {MIN_JAVA}+ and none was found (ZFISH_TRINO_JAVA_HOME, JAVA_HOME, "
                    "/usr/lib/jvm, /opt): install a JDK 24+ to run Athena's SQL on Trino")
    server = TrinoServer(fetch_trino(), java_home, tmp_path_factory.mktemp("trino"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, request):
    """A folder for one module's property tests, removed with the module: each Hypothesis example makes its
    own folder under it (`tempfile.mkdtemp(dir=scratch)`), where `tmp_path` is one folder for every example."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir_path(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "zfish"


@pytest.fixture
def data_dir(data_dir_path, monkeypatch):
    """An empty `ZFISH_DATA_DIR` (and Dagster home in it), the same path for every test."""
    shutil.rmtree(data_dir_path, ignore_errors=True)
    data_dir_path.mkdir(parents=True)
    monkeypatch.setenv("ZFISH_DATA_DIR", str(data_dir_path))
    monkeypatch.setenv("DAGSTER_HOME", str(data_dir_path / "dagster"))
    return data_dir_path


@pytest.fixture
def defs(data_dir):
    """The project's Definitions, built for this test's data dir and environment."""
    from zfish_assets.definitions import build_definitions

    return build_definitions()


@pytest.fixture
def instance():
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="session")
def walkthrough_template(data_dir_path, tmp_path_factory):
    """2025-04-05..2025-05-10 landed and crawled once, kept aside to be restored per test."""
    from dagster import DagsterInstance

    from zfish_assets.definitions import build_definitions
    from zfish_assets.tools.runs import land_and_crawl_range

    shutil.rmtree(data_dir_path, ignore_errors=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZFISH_DATA_DIR", str(data_dir_path))
        with DagsterInstance.ephemeral() as inst:
            run = land_and_crawl_range(build_definitions(), inst, "2025-04-05", "2025-05-10")  # as a backfill does
    assert run.success and run.checks and all(c.passed for c in run.checks), run.checks
    return keep_as_template(data_dir_path, tmp_path_factory, "walkthrough")


@pytest.fixture
def walkthrough(walkthrough_template, data_dir):
    """The data dir holding 2025-04-05..2025-05-10 landed and crawled (not yet joined)."""
    return restore(walkthrough_template, data_dir)


@dataclass(frozen=True)
class ReliabilityRow:
    """One reliability scenario's figures: what went in, where every row ended up."""

    category: str  # "input" (a kind of bad input), "crash" (a crash point), "rerun"
    kind: str
    rows_in: int
    rows_out: int
    quarantined: int
    lost: int
    duplicates: int
    changed: int = 0  # rows stored with values other than delivered (0 where a test asserts equal values)


@dataclass
class ReliabilityReport:
    """Figures the reliability tests record; printed as one table at the end of the run."""

    rows: list[ReliabilityRow] = field(default_factory=list)

    def add(self, category: str, kind: str, *, rows_in: int, rows_out: int, quarantined: int, lost: int,
            duplicates: int, changed: int = 0) -> None:
        self.rows.append(ReliabilityRow(category, kind, rows_in, rows_out, quarantined, lost, duplicates, changed))

    def table(self) -> str:
        header = ("category", "kind", "rows in", "rows out", "quarantined", "lost", "duplicates", "changed")
        body = [(r.category, r.kind, r.rows_in, r.rows_out, r.quarantined, r.lost, r.duplicates, r.changed)
                for r in self.rows]
        widths = [max(len(str(v)) for v in col) for col in zip(header, *body)]

        def line(values) -> str:
            return "| " + " | ".join(str(v).ljust(w) for v, w in zip(values, widths)) + " |"

        kinds = {r.category: sum(1 for x in self.rows if x.category == r.category) for r in self.rows}
        totals = ", ".join(f"{n} {c}" for c, n in kinds.items())
        return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body),
                          f"tried: {totals}; rows lost: {sum(r.lost for r in self.rows)}, "
                          f"duplicates: {sum(r.duplicates for r in self.rows)}, changed: {sum(r.changed for r in self.rows)}"])


_RELIABILITY = ReliabilityReport()


@pytest.fixture(scope="session")
def reliability() -> ReliabilityReport:
    """Where reliability tests record their figures (see `pytest_terminal_summary`)."""
    return _RELIABILITY


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "long_module: a module that runs for minutes; collected first (see below)")


def pytest_collection_modifyitems(items) -> None:
    """Modules marked `long_module` first, the rest in their order: with pytest-xdist (`make test` runs
    two workers) a long module dispatched last would leave one worker running it alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long_module") is None)


def pytest_sessionfinish(session) -> None:
    """On a pytest-xdist worker, hand this worker's reliability rows to the controller, which prints the table."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability"] = [asdict(row) for row in _RELIABILITY.rows]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist's controller: collect a finished worker's reliability rows (see `pytest_sessionfinish`)."""
    for row in getattr(node, "workeroutput", {}).get("reliability", []):
        _RELIABILITY.rows.append(ReliabilityRow(**row))


def pytest_terminal_summary(terminalreporter) -> None:
    if _RELIABILITY.rows:
        terminalreporter.write_sep("=", "reliability summary")
        terminalreporter.write_line(_RELIABILITY.table())


@pytest.fixture(scope="module")
def moto_url():
    """moto's server on a free loopback port, one per test module: what a module's tests leave in it never
    reaches another module's."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, data_dir, monkeypatch):
    """S3 lake + Glue catalog + local Spark + DuckDB, every client pointed at moto; a fresh bucket."""
    import boto3

    for name, value in {
        "ZFISH_LAKE": "s3", "ZFISH_CATALOG": "glue", "ZFISH_ENGINE": "spark", "ZFISH_QUERY": "duckdb",
        "ZFISH_S3_BUCKET": BUCKET, "ZFISH_AWS_REGION": REGION, "ZFISH_AWS_ENDPOINT_URL": moto_url,
        # What boto3 in the job's own code (and every default client) resolves.
        "AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    s3.create_bucket(Bucket=BUCKET)
    glue = boto3.client("glue", region_name=REGION, endpoint_url=moto_url)
    yield moto_url
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)
    for name in glue.list_jobs()["JobNames"]:
        glue.delete_job(JobName=name)
    for name in glue.list_crawlers()["CrawlerNames"]:
        glue.delete_crawler(Name=name)
    try:
        glue.delete_database(Name="zebra_fish_demo")
    except glue.exceptions.EntityNotFoundException:
        pass


@pytest.fixture
def proxy(aws, monkeypatch, tmp_path):
    """Every zfish client pointed at the proxy in front of moto; a client on boto3's default endpoint fails."""
    from zfish_assets.resources.aws_connection import aws_client

    front = AwsProxy(aws)
    serve_what_moto_lacks(front, aws)
    monkeypatch.setenv("ZFISH_AWS_ENDPOINT_URL", front.url)
    no_default_endpoint(monkeypatch, tmp_path)
    for name, value in {"ZFISH_GLUE_ROLE_ARN": ROLE, "ZFISH_GLUE_JOB_NAME": JOB, "ZFISH_GLUE_POLL_S": "0.05"}.items():
        monkeypatch.setenv(name, value)
    aws_client.cache_clear()
    yield front
    aws_client.cache_clear()
    front.close()
