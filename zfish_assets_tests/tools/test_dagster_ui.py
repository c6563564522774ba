"""Through the running product: `dagster dev` (webserver + daemon) in a subprocess, driven by the
GraphQL API the UI uses. One `dagster dev` serves the module's tests, in order: the UI's backfill
(60 rows), the lake sensor and its chained join for 2025-05-11 (75 rows), then two join runs at once
held apart by the `hudi_writer` pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from zfish_assets.definitions import build_definitions
from zfish_assets.partitions import days_between
from zfish_assets.settings import REPO_ROOT
from zfish_assets_tests.support.ports import free_port

pytestmark = pytest.mark.long_module  # minutes of work: scheduled first (conftest)

CLOCK = "2025-05-11T18:00:00Z"
ASSETS = ["raw_observations", "raw_outcomes", "observations", "outcomes", "joined_fish_data"]
ACTIVE = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


class DagsterDev:
    """A `dagster dev` process group and a GraphQL client for it."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.env = {**os.environ, "ZFISH_DATA_DIR": str(root / "zfish"), "DAGSTER_HOME": str(root / "zfish" / "dagster"),
                    "ZFISH_CLOCK": CLOCK, "ZFISH_DEPLOYMENT": "local", "PYTHONWARNINGS": "ignore"}
        self.log = open(root / "dagster-dev.log", "wb")
        # What `make dev` runs (the project's instance settings: queue, pool limit), started as a
        # script's background job is: with SIGINT ignored, which once made `dagster dev` ignore SIGTERM.
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "zfish"), "dev", "--", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=REPO_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
        self.stopped_by: signal.Signals | None = None

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_loaded(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            try:
                data = self.graphql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")
                if data["repositoriesOrError"].get("nodes"):
                    return
            except OSError:
                pass
            time.sleep(2)
        raise AssertionError(f"dagster dev did not load in {timeout}s\n{self.tail()}")

    def runs(self, **filter_) -> list[dict]:
        data = self.graphql(
            "query($f: RunsFilter) { runsOrError(filter: $f, limit: 500) { ... on Runs { results "
            "{ runId status jobName tags { key value } startTime endTime } } } }", {"f": filter_})
        return data["runsOrError"]["results"]

    def wait(self, done, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            if done():
                return
            time.sleep(3)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return (self.root / "dagster-dev.log").read_text(errors="replace")[-4000:]

    def group_alive(self) -> bool:
        """Whether any process of the group is left (`dagster dev` itself reaped first, not counted as a zombie)."""
        self.proc.poll()
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> signal.Signals | None:
        """Terminate the whole process group (webserver, daemon, code server, run workers, JVMs).

        Returns the signal that ended the group: SIGTERM when every process left within 20 s.
        """
        if self.stopped_by is not None or self.proc.poll() is not None:
            return self.stopped_by
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while self.group_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self.group_alive():
                self.stopped_by = sig
                break
        self.log.close()
        return self.stopped_by


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    server = DagsterDev(tmp_path_factory.mktemp("dagster_dev"))
    try:
        server.wait_loaded()
        yield server
    finally:
        server.stop()


def _joined_rows(dev: DagsterDev) -> list[dict]:
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot, table_exists

    uri = f"file://{dev.root / 'zfish' / 'lake' / 'use-cases/fish-demo' / 'processed' / 'joined_fish_data'}"
    return read_hudi_snapshot(uri, {}).to_pylist() if table_exists(uri, {}) else []


def _checks(dev: DagsterDev) -> dict[str, str]:
    """check name -> status of its latest execution, for every asset check of the five assets."""
    out = {}
    for asset in ASSETS:
        data = dev.graphql(
            "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { ... on AssetNode { assetChecksOrError "
            "{ ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }",
            {"k": {"path": [asset]}})
        for check in data["assetNodeOrError"]["assetChecksOrError"].get("checks", []):
            execution = check["executionForLatestMaterialization"]
            out[f"{asset}/{check['name']}"] = execution["status"] if execution else "NONE"
    return out


def test_backfill_from_the_ui_gives_60_rows_and_passing_checks(dev):
    days = days_between("2025-04-05", "2025-05-10")
    data = dev.graphql(
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
        "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack } } }",
        {"p": {"assetSelection": [{"path": [a]} for a in ASSETS], "partitionNames": days, "fromFailure": False}})
    result = data["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    status = {}

    def finished() -> bool:
        status.update(dev.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }",
            {"id": result["backfillId"]})["partitionBackfillOrError"])
        return status["status"] not in ("REQUESTED", "CANCELING", "FAILING")

    dev.wait(finished, "the backfill", timeout=1200)
    runs = dev.runs(tags=[{"key": "dagster/backfill", "value": result["backfillId"]}])
    assert status["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (status, [r["status"] for r in runs])
    assert runs and all(r["status"] == "SUCCESS" for r in runs)
    # The joined asset ran once over the whole range (single-run policy), not once per day.
    join_runs = [r for r in runs if {t["key"]: t["value"] for t in r["tags"]}.get("dagster/asset_partition_range_end")]
    assert len(join_runs) == 1
    # Landing and crawling too: the range in one run (or as many as Dagster groups them in), not a run per day.
    ranges = {({t["key"]: t["value"] for t in r["tags"]}.get("dagster/asset_partition_range_start"),
               {t["key"]: t["value"] for t in r["tags"]}.get("dagster/asset_partition_range_end")) for r in runs}
    assert ranges == {(days[0], days[-1])} and len(runs) <= 3, [r["tags"] for r in runs]

    rows = _joined_rows(dev)
    assert len(rows) == 60 and len({r["image_id"] for r in rows}) == 60
    checks = _checks(dev)
    assert len(checks) == 15 and set(checks.values()) == {"SUCCEEDED"}, checks  # 5 per table


def test_the_lake_sensor_crawls_an_uploaded_day_and_joins_its_window(dev):
    from dagster import build_schedule_context

    from zfish_assets.resources.lake import LocalLake
    from zfish_assets.resources.simulator import SimulatorResource

    lake = LocalLake(root=str(dev.root / "zfish" / "lake"))
    simulator = SimulatorResource(start="2025-04-05")
    # The lab uploads 2025-05-11 itself: the sensor notices the new day= folders.
    for table in ("observations", "outcomes"):
        lake.land_day(table, "2025-05-11", lambda folder, t=table: simulator.write_day(t, "2025-05-11", folder))

    def joined() -> bool:
        runs = dev.runs(statuses=["SUCCESS", "FAILURE", "CANCELED"], tags=[{"key": "zfish/join_through", "value": "2025-05-11"}])
        assert all(r["status"] == "SUCCESS" for r in runs), runs
        return {r["jobName"] for r in runs} == {"land_and_crawl", "join_window"}

    dev.wait(joined, "the lake sensor's crawl and join of 2025-05-11", timeout=420)
    join = next(r for r in dev.runs(tags=[{"key": "zfish/join_through", "value": "2025-05-11"}]) if r["jobName"] == "join_window")
    tags = {t["key"]: t["value"] for t in join["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == ("2025-04-06", "2025-05-11")
    rows = _joined_rows(dev)
    assert len(rows) == 75 and len({r["image_id"] for r in rows}) == 75
    assert set(_checks(dev).values()) == {"SUCCEEDED"}

    # The 18:00 schedule asks for the same evening under the simulated clock.
    from zfish_assets.definitions import build_definitions  # conftest sets ZFISH_CLOCK to CLOCK

    defs = build_definitions()
    schedule = defs.get_repository_def().get_schedule_def("evening")
    with build_schedule_context(repository_def=defs.get_repository_def(),
                                scheduled_execution_time=datetime(2026, 1, 1, 18, tzinfo=timezone.utc)) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2025-05-11" and request.tags["zfish/join_through"] == "2025-05-11"


def test_two_join_runs_at_once_take_turns_in_the_hudi_writer_pool(dev):
    launch = (
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
        "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }")
    run_ids = []
    for first in ("2025-04-05", "2025-04-06"):
        params = {
            "selector": {"repositoryLocationName": "zfish", "repositoryName": "__repository__", "jobName": "join_window"},
            "executionMetadata": {"tags": [{"key": "dagster/asset_partition_range_start", "value": first},
                                           {"key": "dagster/asset_partition_range_end", "value": "2025-05-11"}]},
        }
        result = dev.graphql(launch, {"p": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        run_ids.append(result["run"]["runId"])

    def both_done() -> bool:
        runs = {r["runId"]: r for r in dev.runs(runIds=run_ids)}
        statuses = [r["status"] for r in runs.values()]
        return all(s not in ACTIVE for s in statuses)

    dev.wait(both_done, "both join runs", timeout=600)
    runs = sorted(dev.runs(runIds=run_ids), key=lambda r: r["startTime"])
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"]
    assert runs[0]["endTime"] <= runs[1]["startTime"], "the two writers overlapped"
    rows = _joined_rows(dev)
    assert len(rows) == 75 and len({r["image_id"] for r in rows}) == 75


CHROMIUM = Path("/usr/bin/chromium")


def _chromium(dev: DagsterDev, tmp_path: Path, path: str, *args: str) -> str:
    """Chromium's own headless mode: load `path`, let the page's scripts run, then act (`args`)."""
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,900",
         "--virtual-time-budget=20000", *args, f"http://127.0.0.1:{dev.port}{path}"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_browser_shows_the_asset_graph_and_the_checks(dev, tmp_path, request):
    chosen = request.config.getoption("--screenshots")
    screenshots = Path(chosen) if chosen else tmp_path / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    # The instance's `nux: enabled: false`: the question the UI asks before showing its community sign-up
    # dialog on a first visit is answered no, so the screenshots show the pages, not the dialog.
    assert dev.graphql("{ shouldShowNux }")["shouldShowNux"] is False
    pages = {"asset-graph": "/assets/joined_fish_data?view=lineage&lineageScope=upstream&lineageDepth=3",
             "joined_fish_data": "/assets/joined_fish_data?view=checks"}
    for name, path in pages.items():
        shot = screenshots / f"{name}.png"
        _chromium(dev, tmp_path, path, f"--screenshot={shot}")
        assert shot.stat().st_size > 10_000
    graph = _chromium(dev, tmp_path, pages["asset-graph"], "--dump-dom")
    assert all(a in graph for a in ASSETS) and all(g in graph for g in ("ingest", "catalog", "transform"))
    per_asset = Counter(spec.asset_key.to_user_string()
                        for checks in build_definitions().asset_checks for spec in checks.check_specs)
    for asset in ("observations", "joined_fish_data"):  # each asset's node shows "n / n Passed"
        assert f"{per_asset[asset]} / {per_asset[asset]} Passed" in _text(graph), _text(graph)
    checks = _text(_chromium(dev, tmp_path, pages["joined_fish_data"], "--dump-dom"))
    assert all(c in checks for c in ("labeled_rows", "unique_image_id", "labels_are_latest", "flattened_schema"))
    assert "Passed" in checks and "Failed" not in checks, checks


def _text(html: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    import re

    html = re.sub(r"<(script|style).*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_sigterm_stops_make_devs_dagster_dev_within_20_s(dev):
    """Last: `zfish dev` (what `make dev` runs), started with SIGINT ignored, leaves on SIGTERM alone."""
    began = time.monotonic()
    assert dev.stop() == signal.SIGTERM, dev.tail()
    assert time.monotonic() - began < 20 and not dev.group_alive()
