"""Metadata stays bounded, and a refused value is shown (no Spark).

A crawl of a day whose row carries 50,000 undeclared fields records a sample of their names and
their count, not all 50,000; any nested list or mapping recorded as metadata is cut to a sample
plus its count (Hypothesis); a timestamp the contract refuses is named in the refusal, `24:00:00`
and `2025-02-30` included.
"""

from __future__ import annotations

import json
import re
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from glue_scripts.zfish_etl.judging import utc_timestamp
from zfish_assets.assets.crawled import crawl_metadata
from zfish_assets.bounded import MAX_LEAVES, MAX_SHOWN, MAX_TEXT, bounded
from zfish_assets.domain.crawl import crawl_day
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake

EXTRA = 50_000


def test_a_crawl_names_a_sample_of_50000_unknown_fields_and_their_count(tmp_path):
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    row = {"fish_id": "zfish_00000", "image_id": "img-1", "timestamp": "2025-04-05T10:28:42Z", "age_days": 4,
           "treatment": "drug_b", "genetic_markers": {"gene_a": 0.6721, "gene_b": -0.4004, "gene_c": -1.3496},
           "length_mm": 3.58, "sex": "F", **{f"extra_{n:05d}": n for n in range(EXTRA)}}

    def write(folder):
        (folder / "img-1.json").write_text(json.dumps(row) + "\n")

    lake.land_day("observations", "2025-04-05", write)
    crawled = crawl_day(lake, catalog, "observations", "2025-04-05")
    assert crawled.rows == 1  # the row is kept, its extra fields dropped
    unknown = crawl_metadata(lake, catalog, crawled)["unknown_fields"].value
    assert unknown["count"] == EXTRA and unknown["not_shown"] == EXTRA - MAX_SHOWN
    assert len(unknown["shown"]) == MAX_SHOWN and set(unknown["shown"]) <= {f"extra_{n:05d}" for n in range(EXTRA)}
    assert len(json.dumps(unknown)) < 5_000


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=250) | st.dictionaries(st.text(max_size=8), inner, max_size=250),
                    max_leaves=2_000)


def entries(value) -> int:
    """Leaves and containers of a JSON value, counted independently of `bounded`."""
    if isinstance(value, dict):
        return 1 + sum(entries(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(entries(v) for v in value)
    return 1


def check_capped(original, shown) -> None:
    """Every container of `shown` is the original's shape, or a capped one: at most MAX_SHOWN entries
    shown, with the original's count and how many are not shown."""
    if isinstance(original, (dict, list)):
        if isinstance(shown, dict) and set(shown) == {"count", "shown", "not_shown"} and not (
                isinstance(original, dict) and set(original) == {"count", "shown", "not_shown"}):
            assert shown["count"] == len(original) and shown["not_shown"] == len(original) - len(shown["shown"])
            assert len(shown["shown"]) <= MAX_SHOWN and shown["not_shown"] > 0
            pairs = zip(original, shown["shown"]) if isinstance(original, list) else []
        else:
            assert type(shown) is type(original) and len(shown) == len(original)
            pairs = zip(original.values(), shown.values()) if isinstance(original, dict) else zip(original, shown)
        for a, b in pairs:
            check_capped(a, b)
    else:
        assert shown == original


def leaves(value) -> int:
    """Values (not containers) of the original a bounded JSON value shows: a capped container's count and
    not_shown are not among them."""
    if isinstance(value, dict):
        if set(value) == {"count", "shown", "not_shown"}:
            return leaves(value["shown"])
        return sum(leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaves(v) for v in value)
    return 1


@given(JSON)
def test_every_list_and_mapping_in_metadata_is_a_sample_and_a_count(value):
    shown = bounded(value)
    check_capped(value, shown)
    json.dumps(shown)
    assert leaves(shown) <= MAX_LEAVES
    if entries(value) <= MAX_SHOWN:
        assert shown == value  # small values keep their shape


def test_a_mapping_of_counts_shows_its_largest_first():
    counts = Counter({f"field_{n}": n for n in range(MAX_SHOWN * 3)})
    assert list(bounded(counts)["shown"]) == [f"field_{n}" for n in range(MAX_SHOWN * 3 - 1, MAX_SHOWN * 2 - 1, -1)]


MOMENT = st.builds(lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
                   st.integers(1, 9999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
                   st.integers(0, 99), st.integers(0, 99))


@given(MOMENT)
def test_a_refused_timestamp_is_shown_in_its_refusal(text):
    try:
        utc_timestamp(text)
    except (ValueError, OverflowError) as exc:
        assert repr(text) in str(exc), str(exc)


def test_24_00_00_is_refused_showing_the_value():
    for text in ("2025-05-10T24:00:00Z", "2025-02-30T10:00:00Z"):
        try:
            utc_timestamp(text)
        except ValueError as exc:
            assert re.search(rf"'{text}' is not a real date and time \(", str(exc)), str(exc)
        else:
            raise AssertionError(f"{text} accepted")


def test_a_run_that_places_labels_on_400_old_days_records_a_sample_of_them_and_their_count():
    """A table's first run over a long history indexes every older day and may redo hundreds for late
    labels: the run's metadata names a sample of those days and their count, as every list it records."""
    from datetime import date, timedelta

    from glue_scripts.zfish_etl.job_args import JobResult
    from zfish_assets.io_managers.metadata import Written, run_metadata

    old = [(date(2024, 1, 1) + timedelta(days=n)).isoformat() for n in range(400)]
    window = tuple((date(2025, 4, 1) + timedelta(days=n)).isoformat() for n in range(36))
    result = JobResult(first_day=window[0], last_day=window[-1], observations_read=1, rows_upserted=1,
                       rows_per_day={d: 1 for d in [*old, *window]}, commit_instant="1", files_written=1,
                       bytes_written=1, join_mode="incremental", rows_labeled=1, days_read=[*old, *window],
                       partitions_touched=[*old, *window], files_replaced=0, bytes_replaced=0,
                       days_placed=old, days_indexed=old)
    written = Written("file:///t", window, result, 1.0, None, {}, {}, ["1"], 0)
    recorded = run_metadata(written, "joined_fish_data")
    for name in ("late_labels", "days_beyond_window"):
        text = json.dumps(recorded[name].value)
        assert len(re.findall(r"\d{4}-\d{2}-\d{2}", text)) <= 2 * MAX_SHOWN, (name, len(text))
    assert recorded["days_beyond_window"].value == {"count": 400, "shown": old[:MAX_SHOWN], "not_shown": 300}
    assert recorded["late_labels"].value["days"]["count"] == 400


def test_every_json_value_the_package_records_goes_through_bounded_json():
    """The rule as code: no JSON metadata value is built but by `bounded_json` (the cap's one place)."""
    from pathlib import Path

    import zfish_assets

    package = Path(zfish_assets.__file__).parent
    raw = [f"{path.relative_to(package)}:{n}" for path in sorted(package.rglob("*.py")) if path.name != "bounded.py"
           for n, text in enumerate(path.read_text().splitlines(), 1) if "MetadataValue.json(" in text]
    assert raw == [], raw


def test_a_crawl_names_undeclared_fields_of_a_megabyte_each_in_a_few_kilobytes(tmp_path):
    """Names from the data can be any length: 100 undeclared fields of 100,000 characters each were
    recorded whole (10 MB in one event); each is shown by its start and its length."""
    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    names = [f"{n:03d}" + "x" * 100_000 for n in range(100)]
    row = {"fish_id": "zfish_00000", "image_id": "img-1", "timestamp": "2025-04-05T10:28:42Z", "age_days": 4,
           "treatment": "drug_b", "genetic_markers": {"gene_a": 0.6721, "gene_b": -0.4004, "gene_c": -1.3496},
           "length_mm": 3.58, "sex": "F", **{name: 1 for name in names}}
    lake.land_day("observations", "2025-04-05",
                  lambda folder: (folder / "img-1.json").write_text(json.dumps(row) + "\n"))
    crawled = crawl_day(lake, catalog, "observations", "2025-04-05")
    assert crawled.rows == 1
    metadata = crawl_metadata(lake, catalog, crawled)
    unknown = metadata["unknown_fields"].value
    assert len(unknown) == 100 and sum(unknown.values()) == 100  # every field counted, none merged
    for shown in unknown:
        assert len(shown) < 300 and shown.endswith("(100003 characters)"), shown[:80]
    assert sorted(s[:3] for s in unknown) == sorted(n[:3] for n in names)
    assert len(json.dumps(unknown)) < 30_000


LONG_TEXT = st.text(max_size=3) | st.text(min_size=190, max_size=1_000)


@given(st.recursive(st.none() | st.integers() | LONG_TEXT,
                    lambda inner: st.lists(inner, max_size=120) | st.dictionaries(LONG_TEXT, inner, max_size=120),
                    max_leaves=300))
def test_every_string_in_metadata_is_capped_and_says_its_length(value):
    def strings(v):
        if isinstance(v, dict):
            return [*v.keys(), *(s for x in v.values() for s in strings(x))]
        if isinstance(v, list):
            return [s for x in v for s in strings(x)]
        return [v] if isinstance(v, str) else []

    shown = bounded(value)
    for text in strings(shown):
        assert len(text) <= MAX_TEXT + len("… (1000 characters) #120"), len(text)
    mappings = [value] if isinstance(value, dict) else []
    if mappings and len(value) <= MAX_SHOWN:
        assert len(shown) == len(value)  # shortened keys never merge two entries
    json.dumps(shown)


def test_the_joined_preview_keeps_one_short_cell_per_value():
    """The preview of the joined table in its metadata: a value of any length, with `|` and line breaks,
    stays one cell of at most PREVIEW_CELL characters (plus its length), each row one line."""
    import pyarrow as pa

    from zfish_assets.io_managers.metadata import PREVIEW_CELL, _preview

    long = "a|b\nc" + "z" * 100_000
    table = pa.table({"image_id": [long, "short"], "treatment": ["x\r\ny", "drug_a"], "day": ["2025-04-05"] * 2})
    text = _preview(table)
    header, _, *rows = text.split("\n\n", 1)[1].splitlines()
    assert len(rows) == 2 and len(text) < 1_000, text[:300]
    for line in (header, *rows):
        cells = [c for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 3, line
        assert all(len(c.strip()) <= PREVIEW_CELL + len("… (100005 characters)") + 2 for c in cells), line
    assert rows[0].split(" | ")[0].startswith("| a\\|b c") and "(100005 characters)" in rows[0]


def test_the_weekly_quarantine_check_names_at_most_a_thousand_values_of_months_of_bad_files(tmp_path):
    """120 days with 30 quarantined files each: the check's per-day metadata named 100 days x 30 files
    (3,000 names, the caps multiplied by nesting); now a thousand values in all, and every day counted."""
    from zfish_assets.assets.crawled_checks import quarantine

    lake, catalog = LocalLake(root=str(tmp_path / "lake")), LocalCatalog(root=str(tmp_path / "catalog"))
    from datetime import date, timedelta

    days = [(date(2024, 5, 1) + timedelta(days=n)).isoformat() for n in range(120)]
    for day in days:
        lake.land_day("observations", day, lambda folder: [(folder / f"bad-{n:02d}.json").write_text("{\n")
                                                             for n in range(30)])
        crawl_day(lake, catalog, "observations", day)
    result = quarantine("observations", None, lake, catalog)
    per_day = result.metadata["per_day"].value
    assert per_day["count"] == 120 and result.metadata["quarantined"].value == 120 * 30
    text = json.dumps(per_day)
    assert text.count("bad-") <= MAX_LEAVES and leaves(per_day) <= MAX_LEAVES and len(text) < 100_000
