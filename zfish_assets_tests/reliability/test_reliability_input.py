"""Reliability, bad input: every kind of bad row lands in the table, unlabeled, or in quarantine, never nowhere.

One small lab delivery holds every kind at once (observations of 2025-05-01 and 2025-05-02, an
empty day, labels of 2025-05-05 and 2025-05-06). It is uploaded with `zfish upload`, crawled and
joined through the Dagster assets, with real Spark and Hudi, then delivered, crawled and joined a
second time. What the table and the quarantine hold is compared with `oracle`, which judges the
raw files on its own (it shares no code with the pipeline), and every row's fate is accounted for.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, materialize

from zfish_assets.tools.cli import main as zfish
from zfish_assets.definitions import build_definitions
from zfish_assets.backends.hudi_reader import read_hudi_snapshot
from zfish_assets.tools.runs import CheckOutcome, join_range, land_and_crawl
from zfish_assets_tests.support.scenario import scenario_instance

PREFIX = "use-cases/fish-demo"
OBS_DAYS = ("2025-05-01", "2025-05-02", "2025-05-03")
EMPTY_DAY = "2025-05-03"  # its folder holds one empty file
ABSENT_DAY = "2025-05-04"  # no folder at all
LABEL_DAYS = ("2025-05-05", "2025-05-06")
DAYS = (*OBS_DAYS, ABSENT_DAY, *LABEL_DAYS)
GENES = {"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2}
SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAZFISHSENTINEL0001", "AWS_SECRET_ACCESS_KEY": "zfish/Sentinel+Secret/0000000000000000"}


def obs(fish: str, image: str, timestamp: str, **changes) -> dict:
    row = {"fish_id": fish, "image_id": image, "timestamp": timestamp, "age_days": 12, "treatment": "drug_a",
           "genetic_markers": dict(GENES), "length_mm": 5.25, "sex": "F"}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not ...}


def line(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# (day, file) -> content, and each line's kind: what the delivery is meant to exercise.
OBSERVATION_FILES: dict[tuple[str, str], tuple[str, str]] = {
    ("2025-05-01", "img-a1.json"): ("good", line(obs("zfish_A", "img-a1", "2025-05-01T09:00:00Z"))),
    ("2025-05-01", "img-a2.json"): ("time zone +02:00", line(obs("zfish_A", "img-a2", "2025-05-01T11:30:15+02:00"))),
    ("2025-05-01", "img-b1.json"): ("time zone -05:00", line(obs("zfish_B", "img-b1", "2025-04-30T22:00:00.250-05:00"))),
    ("2025-05-01", "img-b2.json"): ("extra unknown fields", line(obs(
        "zfish_B", "img-b2", "2025-05-01T10:00:00Z", microscope="m-7",
        genetic_markers={**GENES, "gene_z": 1.0}))),
    ("2025-05-01", "img-c5.json"): ("good, fish never labeled", line(obs("zfish_C", "img-c5", "2025-05-01T12:00:00Z"))),
    ("2025-05-01", "img-bad.json"): ("malformed JSON", '{"fish_id": "zfish_C", "image_id": "img-bad", "timest'),
    ("2025-05-01", "img-c1.json"): ("missing required field", line(obs("zfish_C", "img-c1", "2025-05-01T12:01:00Z", length_mm=...))),
    ("2025-05-01", "img-c2.json"): ("number as a string", line(obs("zfish_C", "img-c2", "2025-05-01T12:02:00Z", length_mm="5.25"))),
    ("2025-05-01", "img-c3.json"): ("string where a number belongs", line(obs("zfish_C", "img-c3", "2025-05-01T12:03:00Z", age_days="twelve"))),
    ("2025-05-01", "img-c4.json"): ("timestamp without a zone", line(obs("zfish_C", "img-c4", "2025-05-01 12:04:00"))),
    ("2025-05-01", "zz-copy-of-a1.json"): ("duplicate image_id within a day", line(obs("zfish_A", "img-a1", "2025-05-01T09:00:00Z"))),
    ("2025-05-01", "notes.txt"): ("stray non-JSON file", "microscope 7 recalibrated at noon\n"),
    ("2025-05-02", "img-d1.json"): ("good", line(obs("zfish_D", "img-d1", "2025-05-02T08:00:00Z"))),
    ("2025-05-02", "img-a2.json"): ("image_id re-delivered under a different day",
                                    line(obs("zfish_A", "img-a2", "2025-05-01T11:30:15+02:00"))),
    ("2025-05-02", "img-b1-retake.json"): ("duplicate image_id across days",
                                           line(obs("zfish_B", "img-b1", "2025-05-02T09:00:00Z", length_mm=6.5))),
    (EMPTY_DAY, "empty.json"): ("empty day", ""),
}
OUTCOME_LINES: dict[str, list[tuple[str, str]]] = {
    "2025-05-05": [
        ("label flip on a later day", line({"fish_id": "zfish_A", "condition_developed": True})),
        ("two labels for one fish on one day", line({"fish_id": "zfish_B", "condition_developed": False})),
        ("two labels for one fish on one day", line({"fish_id": "zfish_B", "condition_developed": True})),
        ("good", line({"fish_id": "zfish_D", "condition_developed": False})),
        ("outcome for a fish never observed", line({"fish_id": "zfish_GHOST", "condition_developed": True})),
        ("number as a string", line({"fish_id": "zfish_C", "condition_developed": "true"})),
        ("malformed JSON", "fish_id=zfish_C condition_developed=yes"),
        ("missing required field", line({"fish_id": "zfish_C"})),
        ("blank line", "   "),
        ("extra unknown fields", line({"fish_id": "zfish_D", "condition_developed": False, "grader": "kim"})),
    ],
    "2025-05-06": [("label flip on a later day", line({"fish_id": "zfish_A", "condition_developed": False}))],
}


def write_delivery(root: Path) -> Path:
    """The lab's folder, laid out as `zfish upload` reads it."""
    for (day, name), (_, content) in OBSERVATION_FILES.items():
        folder = root / "observations" / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content + ("\n" if content and name.endswith(".json") else ""))
    for day, lines in OUTCOME_LINES.items():
        folder = root / "outcomes" / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"labels-{day}.json").write_text("".join(text + "\n" for _, text in lines))
    return root


# ---- the oracle: the raw files judged by rules restated here, sharing no code with the pipeline ----

OBS_TYPES = {"fish_id": str, "image_id": str, "timestamp": str, "age_days": int, "treatment": str,
             "genetic_markers": dict, "length_mm": (int, float), "sex": str}
OUT_TYPES = {"fish_id": str, "condition_developed": bool}


def _reason(record_text: str, types: dict) -> str | None:
    try:
        record = json.loads(record_text)
    except ValueError:
        return "malformed_json"
    if not isinstance(record, dict):
        return "malformed_json"
    if any(record.get(k) is None for k in types) or any(record["genetic_markers"].get(g) is None for g in GENES
                                                          if "genetic_markers" in types):
        return "missing_field"
    for k, kind in types.items():
        if isinstance(record[k], bool) and kind is not bool or not isinstance(record[k], kind):
            return "wrong_type"
    if "timestamp" in types:
        try:
            if datetime.fromisoformat(record["timestamp"]).tzinfo is None or "T" not in record["timestamp"]:
                return "bad_timestamp"
        except ValueError:
            return "bad_timestamp"
    return None


@dataclass
class Oracle:
    rows: dict[tuple[str, str, int], dict]  # accepted (day, file, line) -> record
    quarantine: dict[tuple[str, str, int], str]  # (day, file, line) -> reason
    labels: dict[str, bool]  # fish -> latest label

    def table(self) -> dict[str, tuple]:
        """image_id -> (day, fish, UTC timestamp, label, gene_a) of the rows joined_fish_data must hold."""
        out = {}
        for (day, _, _), r in self.rows.items():
            if "image_id" in r and r["fish_id"] in self.labels:
                moment = datetime.fromisoformat(r["timestamp"]).astimezone(timezone.utc)
                out[r["image_id"]] = (day, r["fish_id"], moment, self.labels[r["fish_id"]], r["genetic_markers"]["gene_a"])
        return out


def oracle(lake: Path) -> Oracle:
    """Judge the lake's raw files: days in crawl order, files by name, the first delivery of an image wins."""
    rows, quarantine, kept = {}, {}, set()
    for table, types in (("observations", OBS_TYPES), ("outcomes", OUT_TYPES)):
        for folder in sorted((lake / table).glob("day=*")):
            day = folder.name[4:]
            for path in sorted(folder.iterdir()):
                if path.suffix != ".json":
                    quarantine[(day, path.name, 0)] = "not_a_data_file"
                    continue
                for number, text in enumerate(path.read_text().split("\n"), start=1):
                    if not text.strip():
                        continue
                    key = (day, path.name, number)
                    reason = _reason(text, types)
                    image = json.loads(text).get("image_id") if reason is None else None
                    if image is not None and image in kept:
                        in_day = any(k[0] == day and r.get("image_id") == image for k, r in rows.items())
                        reason = "duplicate_key" if in_day else "key_in_other_day"
                    if reason:
                        quarantine[key] = reason
                    else:
                        rows[key] = json.loads(text)
                        kept.add(image)
    latest: dict[str, tuple[str, bool]] = {}
    for (day, _, _), r in rows.items():
        if "condition_developed" in r:
            latest[r["fish_id"]] = max(latest.get(r["fish_id"], ("", False)), (day, r["condition_developed"]))
    return Oracle(rows, quarantine, {fish: label for fish, (_, label) in latest.items()})


# ---- what the pipeline produced ----

def hudi_rows(defs) -> list[dict]:
    return read_hudi_snapshot(defs.resources["hudi_io_manager"].table_uri("joined_fish_data"), {}).to_pylist()


def as_table(rows: list[dict]) -> dict[str, tuple]:
    def utc(moment: datetime) -> datetime:
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)

    return {r["image_id"]: (r["day"], r["fish_id"], utc(r["timestamp"]), r["condition_developed"], r["gene_a"])
            for r in rows}


def ledgers(lake: Path) -> dict[tuple[str, str, int], dict]:
    return {(e["day"], e["file"], e["line"]): e
            for path in sorted(lake.glob("quarantine/*/day=*/quarantine.jsonl"))
            for e in map(json.loads, path.read_text().splitlines())}


def lake_state(lake: Path, catalog_dir: Path) -> dict:
    """Everything a rerun must leave unchanged: files, quarantine bytes, registered partitions and counts."""
    files = sorted(str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file() and "processed" not in p.parts)
    partitions = {}
    for doc in catalog_dir.rglob("*.json"):
        for p in json.loads(doc.read_text())["Partitions"]:
            params = {k: v for k, v in p["Parameters"].items()
                      if k not in ("zfish.fingerprint", "zfish.fingerprint.data")}  # mtimes change
            partitions[(doc.stem, p["Values"][0])] = params
    quarantine = {str(p.relative_to(lake)): p.read_bytes() for p in lake.glob("quarantine/**/*.jsonl")}
    return {"files": files, "partitions": partitions, "quarantine": quarantine}


@dataclass
class Scenario:
    defs: Definitions
    instance: DagsterInstance
    root: Path
    lake: Path
    delivery: Path
    crawl_checks: dict[tuple[str, str], CheckOutcome]  # (day, table) -> its quarantine check
    join_checks: list[CheckOutcome]

    def deliver_crawl_join(self) -> tuple[dict[tuple[str, str], CheckOutcome], list[CheckOutcome]]:
        """`zfish upload` every day, crawl them in order, join their range: the pipeline's whole path."""
        for day in DAYS:
            if any((self.delivery / t / f"day={day}").is_dir() for t in ("observations", "outcomes")):
                assert zfish(["upload", str(self.delivery), "--day", day]) == 0
        crawls = land_and_crawl(self.defs, self.instance, DAYS, assets=["observations", "outcomes"])
        checks = {(day, c.asset): c for day, run in zip(DAYS, crawls) for c in run.checks if c.name == "quarantine"}
        joined = join_range(self.defs, self.instance, DAYS[0], DAYS[-1])
        assert all(r.success for r in crawls) and joined.success
        return checks, joined.checks


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("reliability-input")
    with scenario_instance(root) as (mp, instance):
        for name, value in SECRETS.items():  # credentials in reach of every step: none may be written anywhere
            mp.setenv(name, value)
        defs = build_definitions()
        s = Scenario(defs, instance, root, root / "zfish" / "lake" / PREFIX, write_delivery(root / "lab"), {}, [])
        s.crawl_checks, s.join_checks = s.deliver_crawl_join()
        yield s


def kinds() -> dict[str, list[tuple[str, str, int]]]:
    """(day, file, line) of each delivered row, by the kind it exercises."""
    found: dict[str, list] = {}
    for (day, name), (kind, content) in OBSERVATION_FILES.items():
        found.setdefault(kind, []).append((day, name, 0 if not name.endswith(".json") else 1))
    for day, lines in OUTCOME_LINES.items():
        for number, (kind, _) in enumerate(lines, start=1):
            found.setdefault(kind, []).append((day, f"labels-{day}.json", number))
    return found


def test_the_oracle_sees_each_kind_as_the_delivery_intends(scenario):
    """Guard the guard: the independent judgement gives each planted row the fate its kind names."""
    expected = {"malformed JSON": "malformed_json", "missing required field": "missing_field",
                "number as a string": "wrong_type", "string where a number belongs": "wrong_type",
                "timestamp without a zone": "bad_timestamp", "duplicate image_id within a day": "duplicate_key",
                "duplicate image_id across days": "key_in_other_day", "stray non-JSON file": "not_a_data_file",
                "image_id re-delivered under a different day": "key_in_other_day"}
    truth = oracle(scenario.lake)
    for kind, keys in kinds().items():
        for key in keys:
            assert truth.quarantine.get(key) == expected.get(kind), (kind, key)
    assert truth.labels == {"zfish_A": False, "zfish_B": True, "zfish_D": False, "zfish_GHOST": True}


def test_table_and_quarantine_hold_exactly_what_the_raw_files_say(scenario, reliability):
    truth = oracle(scenario.lake)
    rows = hudi_rows(scenario.defs)
    table = as_table(rows)
    assert len(table) == len(rows), "duplicate image_id in joined_fish_data"
    assert table == truth.table()
    assert sorted(table) == ["img-a1", "img-a2", "img-b1", "img-b2", "img-d1"]
    quarantine = ledgers(scenario.lake)
    assert {k: e["reason"] for k, e in quarantine.items()} == truth.quarantine
    for (day, file, number), entry in quarantine.items():  # the raw content is the delivered line, whole
        text = (scenario.lake / ("observations" if "labels" not in file else "outcomes") / f"day={day}" / file).read_text()
        assert entry["raw"] == (text if number == 0 else text.split("\n")[number - 1]) and entry["detail"]
    # Every delivered row is in the table (an image, or the label its rows carry), quarantined, or left
    # out by a rule: an image of an unlabeled fish, a superseded label, a label with no image.
    applied = {(r["outcome_day"], r["fish_id"], r["condition_developed"]) for r in rows}
    in_table = {k for k, r in truth.rows.items()
                if ("image_id" in r and table.get(r["image_id"], ("",))[0] == k[0])
                or (k[0], r["fish_id"], r.get("condition_developed")) in applied}
    duplicates = sum(n - 1 for n in Counter(r["image_id"] for r in rows).values())
    for kind, keys in sorted(kinds().items()):
        if kind in ("blank line", "empty day"):  # no row: nothing may come of it
            assert not [k for k in keys if k in quarantine or k in truth.rows], kind
            reliability.add("input", kind, rows_in=0, rows_out=0, quarantined=0, lost=0, duplicates=duplicates)
            continue
        out = [k for k in keys if k in in_table]
        quarantined = [k for k in keys if k in quarantine]
        ruled = [k for k in keys if k in truth.rows and k not in in_table]
        lost = len(keys) - len(out) - len(quarantined) - len(ruled)
        assert lost == 0 and duplicates == 0, kind
        reliability.add("input", kind, rows_in=len(keys), rows_out=len(out), quarantined=len(quarantined),
                        lost=lost, duplicates=duplicates)


def test_time_zones_are_normalized_to_utc(scenario):
    table = as_table(hudi_rows(scenario.defs))
    assert table["img-a2"][2] == datetime(2025, 5, 1, 9, 30, 15, tzinfo=timezone.utc)
    assert table["img-b1"][2] == datetime(2025, 5, 1, 3, 0, 0, 250000, tzinfo=timezone.utc)


def test_labels_follow_the_rules(scenario):
    by_fish = {r["fish_id"]: (r["condition_developed"], r["outcome_day"]) for r in hudi_rows(scenario.defs)}
    assert by_fish["zfish_A"] == (False, "2025-05-06")  # a flip on a later day: the later label wins
    assert by_fish["zfish_B"] == (True, "2025-05-05")  # two labels on one day: positive wins
    assert "zfish_C" not in by_fish and "zfish_GHOST" not in by_fish  # unlabeled; a label with no image


def test_unknown_fields_are_dropped_and_named_a_new_gene_becomes_a_column(scenario):
    rows = hudi_rows(scenario.defs)
    assert not {"microscope", "grader"} & set(rows[0])
    # a gene the contract does not name is schema evolution (genetic_markers is open): a column
    assert {r["image_id"]: r["gene_z"] for r in rows if r["gene_z"] is not None} == {"img-b2": 1.0}
    latest = scenario.instance.fetch_materializations(
        AssetKey("observations"), limit=100).records
    metadata = [r.asset_materialization.metadata for r in latest if r.partition_key == "2025-05-01"][0]
    assert metadata["unknown_fields"].value == {"microscope": 1}
    assert metadata["schema_added"].value == {"genetic_markers": ["gene_z"]}


def test_empty_days_register_nothing_and_quarantine_nothing(scenario):
    catalog = scenario.defs.resources["catalog"]
    observed = catalog.partition_parameters("observations")
    assert observed[EMPTY_DAY]["recordCount"] == "0" and ABSENT_DAY not in observed
    assert not (scenario.lake / "quarantine/observations" / f"day={ABSENT_DAY}").exists()
    assert (scenario.lake / "quarantine/observations" / f"day={EMPTY_DAY}/quarantine.jsonl").read_text() == ""


def test_quarantine_check_warns_per_day_with_counts_per_reason(scenario):
    check = scenario.crawl_checks[("2025-05-01", "observations")]
    assert not check.passed
    assert check.description.startswith("day=2025-05-01: 7 of 12 quarantined (58%): bad_timestamp 1, duplicate_key 1, "
                                        "malformed_json 1, missing_field 1, not_a_data_file 1, wrong_type 2")
    assert scenario.crawl_checks[("2025-05-02", "observations")].description.startswith(
        "day=2025-05-02: 2 of 3 quarantined (67%): key_in_other_day 2")
    assert scenario.crawl_checks[(EMPTY_DAY, "observations")].passed
    assert all(c.passed for c in scenario.join_checks), scenario.join_checks


def test_quarantine_check_errors_above_the_max_rate(scenario, monkeypatch):
    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "0.6")
    result = materialize(
        [*scenario.defs.assets, *scenario.defs.asset_checks],
        selection=AssetSelection.checks_for_assets(AssetKey("observations")),
        resources=scenario.defs.resources, instance=scenario.instance, raise_on_error=False,
    )
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "quarantine"]
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert "above the 60% allowed (ZFISH_QUARANTINE_MAX_RATE): 2025-05-02" in evaluation.description
    assert evaluation.metadata["reasons"].value == {"bad_timestamp": 1, "duplicate_key": 1, "key_in_other_day": 2,
                                                    "malformed_json": 1, "missing_field": 1, "not_a_data_file": 1,
                                                    "wrong_type": 2}


def test_redelivering_recrawling_and_rejoining_changes_nothing(scenario, reliability):
    catalog_dir = scenario.root / "zfish" / "catalog"
    before, rows_before = lake_state(scenario.lake, catalog_dir), as_table(hudi_rows(scenario.defs))
    scenario.deliver_crawl_join()
    after, rows = lake_state(scenario.lake, catalog_dir), hudi_rows(scenario.defs)
    assert after == before
    assert as_table(rows) == rows_before and len(rows) == len(rows_before) == 5
    raw_files = [f for f in after["files"] if not f.startswith(("quarantine/", "_zfish/"))]
    delivered = len(OBSERVATION_FILES) + len(OUTCOME_LINES)
    assert len(raw_files) == len(set(raw_files)) == delivered
    registered = sum(int(p["recordCount"]) for (table, _), p in after["partitions"].items()
                     if table in ("observations", "outcomes"))  # joined_fish_data's partitions count no rows
    reliability.add("rerun", "land, crawl and join the same days twice", rows_in=registered,
                    rows_out=len(rows), quarantined=len(ledgers(scenario.lake)),
                    lost=len(rows_before) - len(rows), duplicates=len(rows) - len({r["image_id"] for r in rows}))


def test_the_join_refuses_lines_the_crawl_never_judged(scenario):
    """Files changed after the crawl: the job fails naming the line instead of dropping or guessing."""
    victim = scenario.lake / "observations/day=2025-05-02/img-d1.json"
    saved = victim.read_text()
    victim.write_text(saved + "{broken\n")
    try:
        with pytest.raises(Exception, match=r"day=2025-05-02 img-d1.json:2 malformed_json"):
            join_range(scenario.defs, scenario.instance, "2025-05-02", "2025-05-02")
    finally:
        victim.write_text(saved)


def test_no_credential_reaches_logs_metadata_or_the_lake(scenario):
    """Every event of every run (logs and metadata) and every file written, scanned for the credentials."""
    runs = scenario.instance.get_run_records()
    assert len(runs) >= 2 * len(DAYS)
    events = "\n".join(repr(e) for r in runs for e in scenario.instance.all_logs(r.dagster_run.run_id))
    assert "registered zebra_fish_demo.observations" in events and "quarantine_reasons" in events
    written = [p for p in (scenario.root / "zfish").rglob("*") if p.is_file()]
    for secret in SECRETS.values():
        assert secret not in events
        assert not [p for p in written if secret.encode() in p.read_bytes()]
