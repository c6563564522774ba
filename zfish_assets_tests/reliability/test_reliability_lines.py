"""Reliability II, end to end: what a lab really delivers (encodings, editors, wrong clocks, nested
folders) crawled, joined on Spark + Hudi and checked in DuckDB, then fixed and delivered again.

Each file states by hand the fate its kind must have (`Delivered`); the table the pipeline must
hold is computed from the raw files of the files meant to be accepted, with `json` and `datetime`
alone (no pipeline code). Round one: nothing crashes, no window fails, every DuckDB check passes,
and each row is in the table or quarantined with its named reason. Round two re-delivers the
corrected files: the table then equals the join of the fixed lake, nothing of the first round
sticks (a wrong camera clock, a mangled encoding, a file moved out of a subfolder).
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance

from zfish_assets.tools.cli import main as zfish
from zfish_assets.definitions import build_definitions
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.tools.runs import join_range, land_and_crawl
from zfish_assets_tests.support.scenario import scenario_instance
from zfish_assets_tests.support.lab_delivery import (
    D1, D2, DAYS, FIXES, LABEL_LINES, LABELS, MISNAMED, PREFIX, ROUND_ONE, Delivered, round_two, row, text, write_delivery)


def expected_table(files: dict[tuple[str, str], Delivered]) -> dict[str, tuple]:
    """image_id -> (day, fish, UTC timestamp, label, treatment, length_mm) from the raw bytes of the
    files stated accepted: the labels are both fish's, so every accepted image is in the table."""
    labels = {json.loads(line)["fish_id"]: json.loads(line)["condition_developed"] for line in LABEL_LINES.splitlines()}
    out = {}
    for (day, _), delivered in files.items():
        if delivered.reason is None:
            for line in delivered.content.decode("utf-8-sig").splitlines():
                r = json.loads(line)
                moment = datetime.fromisoformat(r["timestamp"]).astimezone(timezone.utc)
                out[r["image_id"]] = (day, r["fish_id"], moment, labels[r["fish_id"]], r["treatment"], r["length_mm"])
    return out


def stored_table(rows: list[dict]) -> dict[str, tuple]:
    def utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)

    return {r["image_id"]: (r["day"], r["fish_id"], utc(r["timestamp"]), r["condition_developed"], r["treatment"],
                            r["length_mm"]) for r in rows}


@dataclass
class Lab:
    defs: object
    instance: DagsterInstance
    lake: Path
    delivery: Path

    def deliver(self, files: dict[tuple[str, str], Delivered]):
        write_delivery(self.delivery, files)
        for day in (D1, D2, LABELS):
            assert zfish(["upload", str(self.delivery), "--day", day]) == 0
        crawls = land_and_crawl(self.defs, self.instance, DAYS, assets=["observations", "outcomes"])
        joined = join_range(self.defs, self.instance, DAYS[0], DAYS[-1])
        return crawls, joined

    def table(self) -> list[dict]:
        uri = self.defs.resources["hudi_io_manager"].table_uri("joined_fish_data")
        return read_hudi_snapshot(uri, {}).to_pylist()

    def quarantine(self) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        for path in self.lake.glob("quarantine/observations/day=*/quarantine.jsonl"):
            for e in map(json.loads, path.read_text().splitlines()):
                found.setdefault((e["day"], e["file"]), set()).add(e["reason"])
        return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("reliability-lines")
    with scenario_instance(root) as (mp, instance):
        yield Lab(build_definitions(), instance, root / "zfish" / "lake" / PREFIX, root / "lab")


def account(lab: Lab, files: dict[tuple[str, str], Delivered], reliability, category: str,
            kinds: set[str] | None = None) -> None:
    """Every file's rows: in the table with the delivered values, or quarantined with the stated reason;
    the figures of `kinds` (all when None) go to the reliability summary."""
    rows = lab.table()
    stored, expected = stored_table(rows), expected_table(files)
    quarantine = lab.quarantine()
    duplicates = len(rows) - len(stored)
    assert duplicates == 0
    assert {k: {v.reason} for k, v in files.items() if v.reason} == quarantine
    by_kind: dict[str, list] = {}
    for (day, name), delivered in files.items():
        by_kind.setdefault(delivered.kind, []).append((day, name, delivered))
    for kind, delivered_files in sorted(by_kind.items()):
        images = [json.loads(line)["image_id"] for _, _, d in delivered_files if d.reason is None
                  for line in d.content.decode("utf-8-sig").splitlines()]
        quarantined = sum(d.rows() for day, name, d in delivered_files if (day, name) in quarantine)
        out = [i for i in images if i in stored]
        changed = sum(1 for i in out if stored[i] != expected[i])
        lines = sum(d.rows() for _, _, d in delivered_files)
        lost = lines - len(out) - quarantined
        if kinds is None or kind in kinds:
            reliability.add(category, kind, rows_in=lines, rows_out=len(out), quarantined=quarantined,
                            lost=lost, duplicates=duplicates, changed=changed)
        assert lost == 0 and changed == 0, kind
    assert stored == expected


def test_round_one_no_line_crashes_a_crawl_or_fails_a_window(lab, reliability):
    crawls, joined = lab.deliver(ROUND_ONE)
    assert all(r.success for r in crawls) and joined.success
    assert all(c.passed for c in joined.checks), joined.checks  # DuckDB's checks of the window, every one
    crawl_checks = {c.name: c for r in crawls for c in r.checks if c.asset == "observations" and c.name != "quarantine"}
    assert all(c.passed for c in crawl_checks.values()), crawl_checks
    account(lab, ROUND_ONE, reliability, "input")


def test_a_quarantine_entry_names_the_file_line_and_reason_and_keeps_the_bytes(lab):
    entries = {(e["file"], e["line"]): e for e in map(
        json.loads, (lab.lake / f"quarantine/observations/day={D1}/quarantine.jsonl").read_text().splitlines())}
    latin1 = entries["latin1.json", 1]
    assert latin1["reason"] == "not_utf8" and "byte" in latin1["detail"] and "\\xe9" in latin1["raw"]
    assert base64.b64decode(latin1["raw_base64"]) == ROUND_ONE[D1, "latin1.json"].content.rstrip(b"\n")
    assert entries["before-1900.json", 1]["detail"].startswith(
        "timestamp: '1899-12-31T23:00:00Z' is outside 1900-01-01")
    assert entries["camera2/img-n1.json", 0]["reason"] == "nested_file"
    assert "gzip" in entries["img-z.json.gz", 0]["detail"]


def test_round_two_a_fix_repairs_whatever_the_first_delivery_held(lab, reliability):
    _, joined = lab.deliver(round_two())
    assert joined.success and all(c.passed for c in joined.checks), joined.checks
    account(lab, round_two(), reliability, "fix", {d.kind for d in FIXES.values() if d})
    stored = stored_table(lab.table())
    assert stored["img-clock"][2] == datetime(2025, 5, 1, 9, tzinfo=timezone.utc)  # the camera clock's 2099 is gone
    assert stored["img-lat"][4] == "caf\u00e9" and "img-n1" in stored


def test_a_misnamed_day_folder_is_named_never_skipped_or_fatal(lab, capsys):
    """A `day=` folder that is not a date: the upload says so, the weekly checks run and name it."""
    bad = lab.delivery / "observations" / MISNAMED
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "img-m.json").write_bytes(text(row('"img-m"')))
    assert zfish(["upload", str(lab.delivery), "--day", D1]) == 0
    assert f"holds {MISNAMED}: not day=YYYY-MM-DD folders" in capsys.readouterr().err
    shutil.copytree(bad, lab.lake / "observations" / MISNAMED)  # the lab's own script put it in the lake
    land_and_crawl(lab.defs, lab.instance, [D1], assets=["observations"])
    weekly = lab.defs.resolve_job_def("all_days_checks").execute_in_process(instance=lab.instance, raise_on_error=False)
    assert weekly.success
    (quarantine,) = [e for e in weekly.get_asset_check_evaluations()
                     if e.asset_key.path[-1] == "observations" and e.check_name == "quarantine"]
    assert not quarantine.passed and f"never read (rename them): {MISNAMED}" in quarantine.description
    assert "2025-5-03" not in lab.defs.resources["lake"].list_days("observations")
