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
import gzip
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
from zfish_assets_tests.conftest import scenario_instance

PREFIX = "use-cases/fish-demo"
D1, D2, LABELS = "2025-05-01", "2025-05-02", "2025-05-05"
DAYS = (D1, D2, "2025-05-03", "2025-05-04", LABELS)
GENES = '{"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2}'
MISNAMED = "day=2025-5-03"


def row(image: str, *, fish: str = "zfish_A", timestamp: str = '"2025-05-01T09:00:00Z"', age: str = "12",
        treatment: str = '"drug_a"', length: str = "5.25", extra: str = "") -> str:
    """An observation's JSON text, each value given as the JSON literal a lab's tool wrote."""
    return (f'{{"fish_id": {json.dumps(fish)}, "image_id": {image}, '
            f'"timestamp": {timestamp}, "age_days": {age}, "treatment": {treatment}, "genetic_markers": {GENES}, '
            f'"length_mm": {length}, "sex": "F"{extra}}}')


@dataclass(frozen=True)
class Delivered:
    """One observation file: its kind, its bytes, and the fate stated for it (None: accepted)."""

    kind: str
    content: bytes
    reason: str | None

    def rows(self) -> int:
        """The rows it delivers (a compressed file's too), counted from its bytes."""
        content = gzip.decompress(self.content) if self.content.startswith(b"\x1f\x8b") else self.content
        try:
            if isinstance(json.loads(content), dict):
                return 1  # one object, however many lines it is written over
        except ValueError:
            pass
        return sum(1 for line in content.splitlines() if line.strip())


def text(line: str) -> bytes:
    return (line + "\n").encode()


ROUND_ONE: dict[tuple[str, str], Delivered] = {
    (D1, "good.json"): Delivered("good", text(row('"img-g1"')), None),
    (D1, "big-double.json"): Delivered("number too large for a double", text(row('"img-x1"', length="1e400")),
                                       "out_of_range"),
    (D1, "big-int.json"): Delivered("integer beyond 64 bits", text(row('"img-x2"', age="1" + "0" * 30)), "out_of_range"),
    (D1, "not-exact.json"): Delivered("integer a double cannot hold exactly",
                                      text(row('"img-x3"', length="9007199254740993")), "out_of_range"),
    (D1, "underflow.json"): Delivered("number that underflows to 0", text(row('"img-x4"', length="1e-400")),
                                      "out_of_range"),
    (D1, "utc-overflow.json"): Delivered("timestamp whose UTC leaves the datetime range",
                                         text(row('"img-x5"', timestamp='"0001-01-01T00:30:00+01:00"')), "out_of_range"),
    (D1, "before-1900.json"): Delivered("timestamp before 1900", text(row('"img-x6"', timestamp='"1899-12-31T23:00:00Z"')),
                                        "out_of_range"),
    (D1, "camera-clock.json"): Delivered("far-future timestamp (camera clock)",
                                         text(row('"img-clock"', timestamp='"2099-05-01T09:00:00Z"')), None),
    (D1, "surrogate.json"): Delivered("unpaired surrogate escape", text(row('"img-sur"', treatment='"drug_\\ud800"')),
                                      "not_utf8"),
    (D1, "latin1.json"): Delivered("bytes that are not UTF-8", text(row('"img-lat"', treatment='"caf\u00e9"'))
                                   .decode().encode("latin-1"), "not_utf8"),
    (D1, "empty-key.json"): Delivered("empty image_id", text(row('""')), "empty_key"),
    (D1, "space-key.json"): Delivered("image_id with a space", text(row('"img 7"')), None),
    (D1, "newline-key.json"): Delivered("image_id with an escaped newline", text(row('"img\\n8"')), None),
    (D1, "quoted-key.json"): Delivered("image_id with quotes and unicode", text(row(json.dumps('img "q" \u00fc \U0001f41f'))),
                                       None),
    (D1, "long-key.json"): Delivered("image_id of 10 kB", text(row(json.dumps("k" * 10_240))), None),
    (D1, "dup-field.json"): Delivered("a field twice in one object",
                                      text(row('"img-dup"', extra=', "fish_id": "zfish_B"')), "duplicate_field"),
    (D1, "case-field.json"): Delivered("field names differing only in case", text(row('"img-case"', extra=', "SEX": "M"')),
                                       "duplicate_field"),
    (D1, "deep.json"): Delivered("nesting deeper than any engine's limit",
                                 text(row('"img-deep"', extra=', "notes": ' + "[" * 200 + "]" * 200)), "malformed_json"),
    (D1, "bom-crlf.json"): Delivered("byte-order mark and CRLF line ends",
                                     b"\xef\xbb\xbf" + row('"img-bom1"').encode() + b"\r\n" + row('"img-bom2"').encode() + b"\r\n",
                                     None),
    (D1, "nul.json"): Delivered("NUL and line separator inside a string",
                                text(row('"img-nul"', treatment='"a\\u0000b\\u2028c"')), None),
    (D1, "camera2/img-n1.json"): Delivered("file in a subfolder", text(row('"img-n1"')), "nested_file"),
    (D1, "pretty.json"): Delivered("one object pretty-printed over many lines (an editor)",
                                   json.dumps(json.loads(row('"img-pretty"')), indent=2).encode(), "multiline_json"),
    (D1, "img-z.json.gz"): Delivered("gzip-compressed file", gzip.compress(text(row('"img-z"')), mtime=0),
                                     "not_a_data_file"),
    (D2, "img.json"): Delivered("short ids that a space-split ledger would invent", text(row('"img"', fish="zfish_B")), None),
    (D2, "seven.json"): Delivered("short ids that a space-split ledger would invent", text(row('"7"', fish="zfish_B")), None),
    (D2, "space-key-again.json"): Delivered("image_id with a space, again on another day",
                                            text(row('"img 7"', fish="zfish_B")), "key_in_other_day"),
    (D2, "long-key-again.json"): Delivered("image_id of 10 kB, again on another day",
                                           text(row(json.dumps("k" * 10_240), fish="zfish_B")), "key_in_other_day"),
}
FIXES: dict[tuple[str, str], Delivered] = {  # round two: what the lab sends after reading the quarantine
    (D1, "camera-clock.json"): Delivered("far-future timestamp (camera clock)", text(row('"img-clock"')), None),
    (D1, "surrogate.json"): Delivered("unpaired surrogate escape", text(row('"img-sur"', treatment='"drug_s"')), None),
    (D1, "latin1.json"): Delivered("bytes that are not UTF-8", text(row('"img-lat"', treatment='"caf\u00e9"')), None),
    (D1, "camera2/img-n1.json"): None,  # moved up into the day folder:
    (D1, "img-n1.json"): Delivered("file in a subfolder", text(row('"img-n1"')), None),
    (D1, "pretty.json"): Delivered("one object pretty-printed over many lines (an editor)", text(row('"img-pretty"')),
                                   None),
}
LABEL_LINES = b'{"fish_id": "zfish_A", "condition_developed": true}\n{"fish_id": "zfish_B", "condition_developed": false}\n'


def round_two() -> dict[tuple[str, str], Delivered]:
    return {k: v for k, v in {**ROUND_ONE, **FIXES}.items() if v is not None}


def write_delivery(root: Path, files: dict[tuple[str, str], Delivered]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    for (day, name), delivered in files.items():
        path = root / "observations" / f"day={day}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(delivered.content)
    (root / "outcomes" / f"day={LABELS}").mkdir(parents=True)
    (root / "outcomes" / f"day={LABELS}" / "labels.json").write_bytes(LABEL_LINES)
    return root


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
