"""The contract as a firewall, by property (Hypothesis; no Spark): for any bytes, any JSON value in any
field and any layout of a day's files, judging never raises, every line lands in exactly one place,
what is accepted is inside the declared domains (checked by rules restated here, not the contract's
code), what is inside them is accepted, and the keys ledger returns every key exactly.

The last property runs the real crawl and DuckDB's views over generated days: DuckDB reads exactly
the rows the crawl accepted, with the same values, whatever the day held.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from glue_scripts.zfish_etl.contract import OBSERVATIONS, OUTCOMES, REASONS, UNJUDGEABLE
from glue_scripts.zfish_etl.judging import is_data_file, judge_line
from glue_scripts.zfish_etl.ledger import Entry
from zfish_assets.domain.quarantine import decode_keys, encode_keys, judge_day

VALID = {"fish_id": "zfish_A", "image_id": "img-1", "timestamp": "2025-05-01T09:00:00Z", "age_days": 12,
         "treatment": "drug_a", "genetic_markers": {"gene_a": 0.5, "gene_b": -1.25, "gene_c": 2},
         "length_mm": 5.25, "sex": "F"}
MIN_TS, MAX_TS = datetime(1900, 1, 1, tzinfo=timezone.utc), datetime(2262, 4, 11, tzinfo=timezone.utc)

# ---- values: ordinary ones and the edges every engine has ----

edge_numbers = st.sampled_from(["1e400", "-1e400", "1e-400", "0e-400", "-0.0", "0", "1e308", "4.9e-324",
                                "9007199254740993", "9007199254740992", "9223372036854775807",
                                "9223372036854775808", "-9223372036854775809", "1" * 500, "100000000000000000000",
                                "1E5", "12.5", "NaN", "Infinity", "-Infinity"])
edge_strings = st.sampled_from(["", " ", "img 7", "img\n8", 'q"uote', "\\", "ü🐟", "\u0000", "\u2028",
                                "x" * 10_000, "\ud800", "a\udfffb", "\ud83d\udc1f"])
edge_timestamps = st.sampled_from([
    "2025-05-01T09:00:00Z", "2025-05-01T09:00:00.123456+02:00", "1900-01-01T00:00:00Z",
    "1899-12-31T23:59:59.999999Z", "1900-01-01T00:30:00+01:00", "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:30:00-01:00", "2262-04-10T23:59:59Z", "2262-04-11T00:00:00Z", "2099-05-01T09:00:00Z",
    "2025-02-30T00:00:00Z", "2025-05-01T24:00:00Z", "2025-05-01T09:00:00+24:00", "2025-05-01 09:00:00Z",
    "2025-05-01T09:00:00", "2025-05-01T09:00:00.1234567Z"])
timestamps = st.builds(
    lambda moment, minutes: (moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), st.integers(-1439, 1439))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(), edge_strings)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)


def row_text(fields: dict, name: str, literal: str) -> str:
    """A valid observation's JSON text with field `name` written as the JSON `literal` (json.dumps
    cannot write some literals a lab can: 1e400, 10^500 digits)."""
    return "{" + ", ".join(f"{json.dumps(k)}: {literal if k == name else json.dumps(v)}" for k, v in fields.items()) + "}"


# ---- the domains, restated independently ----

def utf8_text(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


ISO_WITH_ZONE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


def in_domain(kind: str, literal: str) -> bool | None:
    """Whether JSON `literal` is inside `kind`'s declared domain (None: the wrong type, not a range matter)."""
    value = json.loads(literal)  # Python's json takes NaN, Infinity and 1e400 (as inf): judged below
    if kind == "string":
        return isinstance(value, str) and utf8_text(value) if isinstance(value, str) else None
    if kind == "bigint":
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return -(2**63) <= value < 2**63
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, int):
            return float(value) == value if abs(value) < 2**1024 else False
        nonzero_literal = any(c in "123456789" for c in literal.lower().split("e")[0])
        return math.isfinite(value) and not (value == 0 and nonzero_literal)
    if kind == "timestamp":
        if not isinstance(value, str) or not ISO_WITH_ZONE.fullmatch(value):
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:  # 2025-02-30, 24:00, +24:00
            return None
        try:
            return MIN_TS <= moment.astimezone(timezone.utc) < MAX_TS
        except OverflowError:
            return False
    raise AssertionError(kind)


FIELD_KINDS = {"fish_id": "string", "image_id": "string", "timestamp": "timestamp", "age_days": "bigint",
               "treatment": "string", "length_mm": "double", "sex": "string"}


# ---- properties ----

@given(st.binary(max_size=300))
def test_any_bytes_are_judged_never_raised(raw):
    for contract in (OBSERVATIONS, OUTCOMES):
        verdict = judge_line(contract, raw)
        assert verdict.reason in REASONS or (verdict.reason is None and verdict.row is not None)
        assert verdict.reason != UNJUDGEABLE, verdict.detail


def assert_judged_by_its_domain(name: str, literal: str) -> None:
    """Field `name` of a valid row written as `literal`: accepted, unchanged, exactly when in its domain."""
    verdict = judge_line(OBSERVATIONS, row_text(VALID, name, literal).encode())
    assert verdict.reason != UNJUDGEABLE, verdict.detail
    kind = FIELD_KINDS[name]
    expected = in_domain(kind, literal)
    if name == "image_id" and literal == '""':
        assert verdict.reason == "empty_key", verdict
        return
    if expected:
        assert verdict.reason is None, (literal, verdict)
        stored, value = verdict.row[name], json.loads(literal)
        if kind == "timestamp":
            assert datetime.fromisoformat(stored) == datetime.fromisoformat(value) and stored.endswith("Z")
        else:
            assert stored == value and type(stored) is {"string": str, "bigint": int, "double": float}[kind]
    else:
        assert verdict.reason is not None, (literal, verdict.row)
        if expected is False:
            assert verdict.reason in ("out_of_range", "not_utf8", "malformed_json"), (literal, verdict)


EDGES = [*edge_numbers.elements, *map(json.dumps, edge_strings.elements), *map(json.dumps, edge_timestamps.elements)]


@pytest.mark.parametrize("name", sorted(FIELD_KINDS))
def test_every_edge_value_in_every_field_is_judged_by_its_domain(name):
    for literal in EDGES:
        assert_judged_by_its_domain(name, literal)


@given(st.sampled_from(sorted(FIELD_KINDS)),
       st.one_of(json_values.map(json.dumps), timestamps.map(json.dumps), st.floats().map(repr),
                 st.integers(min_value=-(2**70), max_value=2**70).map(str)))
def test_any_value_in_any_field_is_judged_by_its_domain(name, literal):
    if literal in ("nan", "inf", "-inf"):
        literal = {"nan": "NaN", "inf": "1e999", "-inf": "-1e999"}[literal]
    assert_judged_by_its_domain(name, literal)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4), st.booleans())
def test_a_field_named_twice_is_refused_at_any_depth(extra, nested):
    names = list(VALID)
    twice = json.dumps(extra)[1:-1]
    body = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in VALID.items())
    if nested:
        text = "{" + body + ', "extra": {"a": 1, "A": 2' + (", " + twice if twice else "") + "}}"
    else:
        text = "{" + body + f', {json.dumps(names[0].upper())}: "x"' + "}"
    assert judge_line(OBSERVATIONS, text.encode()).reason == "duplicate_field"


line_kinds = st.one_of(  # one line's bytes: a valid row (of a few keys), anything, or a known bad shape
    st.builds(lambda image, fish: json.dumps({**VALID, "image_id": image, "fish_id": fish}).encode(),
              st.sampled_from(["a", "b", "c", "a b", "a\nb", ""]), st.sampled_from(["f1", "f2"])),
    st.binary(max_size=40),
    st.sampled_from([b"", b"   ", b"\t", b'{"fish_id": 1}', b"[1]", b"{broken", b'{"a": 1, "a": 2}',
                     b'{"fish_id": "caf\xe9"}', b'{"x": "\\ud800"}']),
)
file_names = st.sampled_from(["a.json", "b.json", "notes.txt", ".hidden.json", "_SUCCESS", "sub/c.json",
                              "x.json.gz", "deep/er/d.json", "bell\x07.json", "caf\udce9.json"])


@given(st.dictionaries(file_names, st.lists(line_kinds, max_size=6), min_size=1, max_size=5),
       st.dictionaries(st.sampled_from(["a", "b", "c", "a b", "a\nb"]), st.just("2025-04-30"), max_size=2),
       st.booleans(), st.booleans())
def test_every_line_of_a_day_lands_in_exactly_one_place(layout, taken, bom, crlf):
    """judge_day's accounting: each non-blank line of a data file is a row or one quarantine entry, each
    other file one whole-file entry; accepted keys are unique and none was taken by another day."""
    contents = {name: b"\xef\xbb\xbf" * bom + (b"\r\n" if crlf else b"\n").join(lines)
                for name, lines in layout.items()}
    data = sorted((n, c) for n, c in contents.items() if is_data_file(n))
    stray = sorted((n, c) for n, c in contents.items() if not is_data_file(n))
    judged = judge_day(OBSERVATIONS, "2025-05-01", data, stray, taken)
    lines = {(name, number) for name, content in data
             for number, text in enumerate(content.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1)
             if text.strip(b" \t\r")}
    entries = [(e.file, e.line) for e in judged.entries]
    assert len(entries) == len(set(entries))
    assert {(n, 0) for n, _ in stray} == {k for k in entries if k[1] == 0}
    quarantined = {k for k in entries if k[1]}
    assert quarantined <= lines and judged.rows == len(lines) - len(quarantined)
    assert len(judged.keys) == len(set(judged.keys)) == judged.rows and not set(judged.keys) & set(taken)
    assert all(e.reason in REASONS and e.reason != UNJUDGEABLE and e.detail for e in judged.entries)


@given(st.lists(st.text(), max_size=20))
def test_the_keys_ledger_returns_every_key_exactly(keys):
    assert decode_keys(encode_keys(keys)) == keys


@given(st.binary(max_size=200), st.sampled_from(["not_utf8", "malformed_json"]))
def test_a_quarantine_entry_keeps_the_delivered_bytes(raw, reason):
    entry = Entry.of("observations", "2025-05-01", "a.json", 1, reason, "why", raw)
    back = Entry(**json.loads(entry.to_json()))
    assert back == entry
    try:
        assert back.raw == raw.decode("utf-8") and back.raw_base64 == ""
    except UnicodeDecodeError:
        import base64

        assert base64.b64decode(back.raw_base64) == raw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["a.json", "b.json", "sub/c.json", "n.txt", "caf\udce9.json"]),
                       st.lists(line_kinds, min_size=1, max_size=5), min_size=1, max_size=3))
def test_duckdb_reads_exactly_what_the_crawl_accepted(scratch, layout):
    """The real crawl over a generated day, then DuckDB's view of it: the same rows, the same values."""
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import LocalLake
    from zfish_assets.resources.query import DuckDBQuery

    root = Path(tempfile.mkdtemp(dir=scratch))
    lake, catalog = LocalLake(root=str(root / "lake"), prefix="p"), LocalCatalog(root=str(root / "catalog"),
                                                                                 database="db")
    day = "2025-05-01"

    def write(folder: Path) -> None:
        for name, lines in layout.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(b"\n".join(lines))

    lake.land_day("observations", day, write)
    crawled = crawl_day(lake, catalog, "observations", day)
    assume(crawled.registered)
    expected = sorted({json.loads(raw)["image_id"] for name, lines in layout.items() if is_data_file(name)
                       for raw in b"\n".join(lines).split(b"\n") if judge_line(OBSERVATIONS, raw).reason is None})
    got = DuckDBQuery(catalog=catalog, lake=lake).query(
        'SELECT image_id, fish_id, length_mm FROM "db"."observations" ORDER BY image_id', {"observations": None}).to_pylist()
    assert [r["image_id"] for r in got] == expected == sorted(crawled.judged.keys)
    assert all(r["length_mm"] == VALID["length_mm"] for r in got)


@given(st.lists(st.text(min_size=1, max_size=8), unique=True, max_size=8),
       st.lists(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\r\n \t\r\n", b"\n   \n"]), min_size=8, max_size=8),
       st.booleans(), st.booleans(), st.booleans())
def test_every_row_is_read_whatever_the_line_ends_blank_lines_mark_and_final_newline(ids, ends, bom, final, blank_first):
    """LF or CRLF line ends mixed in one file, blank lines (spaces, tabs, CR) anywhere, a byte-order mark,
    a last line with or without its newline: every row is accepted, nothing is quarantined."""
    rows = [json.dumps({**VALID, "image_id": i}).encode() for i in ids]
    body = b"".join(row + end for row, end in zip(rows, ends))
    if rows and not final:
        body = body[: len(body) - len(ends[len(rows) - 1])]
    content = b"\xef\xbb\xbf" * bom + b"\r\n" * blank_first + body
    judged = judge_day(OBSERVATIONS, "2025-05-01", [("a.json", content)], [], {})
    assert judged.entries == [] and judged.keys == ids


@pytest.mark.parametrize("line, named", [
    (b"null", "a JSON null"), (b"[1]", "a JSON array"), (b'"x"', "a JSON string"), (b"4", "a JSON number"),
    (b"1.5", "a JSON number"), (b"true", "a JSON true or false"),
    (json.dumps(VALID).encode() + b"\r" + json.dumps(VALID).encode(), "carriage return alone"),
    ("\ufeff".encode() + json.dumps(VALID).encode(), "starts with a byte-order mark"),
])
def test_a_line_that_is_no_object_or_no_line_says_so_in_the_lab_s_terms(line, named):
    """Python's names (`NoneType`, `list`, "decode using utf-8-sig") meant nothing to a lab; the detail says what
    the line is and, where a known cause explains it (CR-only line ends, a mark joined into a file), the fix."""
    verdict = judge_line(OBSERVATIONS, line)
    assert verdict.reason == "malformed_json" and named in verdict.detail, verdict.detail
    assert not re.search(r"NoneType|\blist\b|\bstr\b|\bint\b|\bbool\b|utf-8-sig", verdict.detail), verdict.detail
