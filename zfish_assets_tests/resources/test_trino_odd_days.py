"""Athena's SQL on odd days: what Trino reads through the catalog is the contract's answer, typed as declared.

Each case changes the lab's raw files as a lab would (a day whose every line is bad, an outcomes day
with bad lines, a day re-delivered with fewer then more bad lines, a day retracted and restored, an
undeclared field, a new gene given as an integer then a double, nulls in required and optional fields,
non-ASCII text, an image delivered again on another day), crawls, and asks Trino the walkthrough's
questions: rows per day, `SELECT * ... LIMIT 10`, `SELECT *`, and a read of typed columns. The answer
expected is computed here from the raw files by the contract's rules as docs/contract.md states them
(`contract_rows`), never by zfish's code; DuckDB's local views must give the same answer. Catalog
partitions reach Trino with their own columns, as Glue holds them (a day registered before a new gene
keeps the narrower struct): no HIVE_* error either way. One Trino per test session (the `trino` fixture).
"""

from __future__ import annotations

import json
import math
from collections import Counter

from zfish_assets import settings
from zfish_assets.tools.runs import land_and_crawl
from zfish_assets_tests.support.trino import as_delivered, canonical, on_trino, run_statement, write_metastore

DAYS = ["2025-05-06", "2025-05-07", "2025-05-08", "2025-05-09", "2025-05-10"]
GENES = ("gene_a", "gene_b", "gene_c")


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def accepted(table: str, record) -> dict | None:
    """The row the contract makes of one parsed line (declared fields only, numbers for doubles as
    floats), or None when it refuses it."""
    if not isinstance(record, dict):
        return None
    if table == "outcomes":
        ok = isinstance(record.get("fish_id"), str) and isinstance(record.get("condition_developed"), bool)
        return {"fish_id": record["fish_id"], "condition_developed": record["condition_developed"]} if ok else None
    genes = record.get("genetic_markers")
    if not (all(isinstance(record.get(f), str) for f in ("fish_id", "image_id", "timestamp", "treatment", "sex"))
            and record["image_id"] and isinstance(record.get("age_days"), int)
            and not isinstance(record["age_days"], bool) and is_number(record.get("length_mm"))
            and isinstance(genes, dict) and all(is_number(genes.get(g)) for g in GENES)
            and all(v is None or is_number(v) for v in genes.values())):
        return None
    return {"fish_id": record["fish_id"], "image_id": record["image_id"], "timestamp": record["timestamp"],
            "age_days": record["age_days"], "treatment": record["treatment"], "sex": record["sex"],
            "length_mm": float(record["length_mm"]),
            "genetic_markers": {g: None if v is None else float(v) for g, v in genes.items()}}


def contract_rows(data_dir, table: str) -> list[dict]:
    """The rows the contract accepts from the raw files, `day` added: each line judged alone, and an image
    held by the earliest day (then file, then line) that delivers it usably."""
    rows, holders = [], set()
    for folder in sorted((data_dir / "lake" / settings.lake_prefix() / table).glob("day=*")):
        for f in sorted(folder.glob("*.json")):
            for line in f.read_text().split("\n"):  # lines end at \n only (not U+2028)
                try:
                    row = accepted(table, json.loads(line))
                except ValueError:
                    continue
                if row is None or (table == "observations" and row["image_id"] in holders):
                    continue
                holders.add(row.get("image_id"))
                rows.append({**row, "day": folder.name.removeprefix("day=")})
    return rows


def assert_contract_answers(defs, trino, data_dir, table: str) -> None:
    """Trino's answers to the walkthrough's questions against the contract's, and DuckDB's against Trino's."""
    db, expected = settings.database(), contract_rows(data_dir, table)
    query = on_trino(defs, trino).resources["query"]
    duckdb = defs.resources["query"]

    def both(sql: str, same: bool = True) -> list[dict]:
        """Trino's rows; DuckDB's the same (`same`: a LIMIT without an order picks any rows on each)."""
        write_metastore(trino.metastore, query.catalog, query.lake, [table], trino.version)
        columns, rows = run_statement(trino.url, sql, "hive", db)
        found = [as_delivered(columns, r) for r in rows]
        local = duckdb.query(sql, {table: None}).to_pylist() if expected and same else found
        assert canonical(local) == canonical(found), (sql, local[:3], found[:3])
        return found

    every = both(f'SELECT * FROM "{db}"."{table}"')
    columns = set(every[0]) if every else set()
    got, want = canonical(every), canonical(expected, columns or None)
    assert got == want, (table, sorted(set(got) - set(want))[:3], sorted(set(want) - set(got))[:3])
    assert Counter(r["day"] for r in both(f'SELECT day FROM "{db}"."{table}"')) == Counter(r["day"] for r in expected)
    counts = both(f'SELECT day, count(*) AS n FROM "{db}"."{table}" GROUP BY day')
    assert {r["day"]: r["n"] for r in counts} == dict(Counter(r["day"] for r in expected)), table
    first = both(f'SELECT * FROM "{db}"."{table}" LIMIT 10', same=False) if expected else []
    assert len(first) == min(10, len(expected)) and set(canonical(first)) <= set(canonical(every))
    if table == "observations" and expected:
        read = both(f'SELECT day, CAST(sum(age_days) AS bigint) AS ages, round(sum(length_mm), 6) AS lengths, '
                    f'count(genetic_markers.gene_a) AS genes FROM "{db}"."{table}" GROUP BY day')
        for r in read:
            mine = [e for e in expected if e["day"] == r["day"]]
            assert r["ages"] == sum(e["age_days"] for e in mine) and r["genes"] == len(mine), r
            assert math.isclose(r["lengths"], sum(e["length_mm"] for e in mine), abs_tol=1e-6), r


def day_files(data_dir, table: str, day: str) -> dict:
    return {f: f.read_text() for f in sorted((data_dir / "lake" / settings.lake_prefix() / table / f"day={day}")
                                             .glob("*.json"))}


def crawl(defs, instance, table: str, day: str) -> None:
    (summary,) = land_and_crawl(defs, instance, [day], assets=[table], raise_on_error=False)
    # a crawl registers what it can; a blocking check may stop the run on these deliveries, never the crawl
    assert summary.success or "check" in summary.error or summary.error.endswith("quarantine"), summary.error


def test_quarantined_redelivered_and_retracted_days_read_as_the_contract_says(defs, instance, data_dir, trino,
                                                                              monkeypatch):
    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "1")  # these deliveries are mostly bad on purpose
    land_and_crawl(defs, instance, DAYS)
    every_bad, redelivered, retracted = DAYS[:3]
    for f in day_files(data_dir, "observations", every_bad):  # a day whose every line is quarantined
        f.write_text(f.read_text()[:30] + "\n")
    crawl(defs, instance, "observations", every_bad)
    assert_contract_answers(defs, trino, data_dir, "observations")

    labels = next(iter(day_files(data_dir, "outcomes", DAYS[-1])))  # an outcomes day with bad lines
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[0][:20], json.dumps({**json.loads(lines[1]), "condition_developed": "yes"}),
                                 json.dumps({**json.loads(lines[2]), "condition_developed": None}), *lines[3:]]) + "\n")
    crawl(defs, instance, "outcomes", DAYS[-1])
    assert_contract_answers(defs, trino, data_dir, "outcomes")

    files = day_files(data_dir, "observations", redelivered)
    for bad in (3, 1, 6):  # re-delivered with 3 bad lines, then 1, then 6
        for n, (f, text) in enumerate(files.items()):
            f.write_text(text[:25] + "\n" if n < bad else text)
        crawl(defs, instance, "observations", redelivered)
        assert_contract_answers(defs, trino, data_dir, "observations")

    saved = day_files(data_dir, "observations", retracted)  # retracted whole, then delivered again
    for f in saved:
        f.unlink()
    crawl(defs, instance, "observations", retracted)
    assert_contract_answers(defs, trino, data_dir, "observations")
    for f, text in saved.items():
        f.write_text(text)
    crawl(defs, instance, "observations", retracted)
    assert_contract_answers(defs, trino, data_dir, "observations")


def test_new_fields_types_nulls_text_and_moved_images_read_as_the_contract_says(defs, instance, data_dir, trino,
                                                                                monkeypatch):
    monkeypatch.setenv("ZFISH_QUARANTINE_MAX_RATE", "1")
    land_and_crawl(defs, instance, DAYS)
    first, _, _, fourth, last = DAYS

    def edit(f, change):
        record = json.loads(f.read_text())
        change(record)
        f.write_text(json.dumps(record, ensure_ascii=False) + "\n")

    files = list(day_files(data_dir, "observations", fourth))
    edit(files[0], lambda r: r.update(operator="anna", site={"room": 3}))  # undeclared: dropped
    edit(files[1], lambda r: r["genetic_markers"].update(gene_d=3))  # a new gene, an integer first
    edit(files[2], lambda r: r["genetic_markers"].update(gene_d=3.25))  # then a double
    edit(files[3], lambda r: r["genetic_markers"].update(gene_d=None))  # optional and null: kept
    edit(files[4], lambda r: r.update(sex=None))  # required and null: quarantined
    edit(files[5], lambda r: r.update(age_days=4.5))  # a bigint given a double: quarantined
    edit(files[6], lambda r: r.update(length_mm=7))  # a double given an integer: kept, as 7.0
    edit(files[7], lambda r: r.update(treatment="Behandlung ä ß 治疗 🐟 \"q\" \\ \u2028", fish_id="fish_ø"))
    moved = next(iter(day_files(data_dir, "observations", first)))  # delivered again on a later day
    (moved.parent.parent / f"day={fourth}" / f"again-{moved.name}").write_text(moved.read_text())
    crawl(defs, instance, "observations", fourth)
    assert_contract_answers(defs, trino, data_dir, "observations")

    later = next(iter(day_files(data_dir, "observations", last)))  # moved: to an earlier day, gone from its own
    (later.parent.parent / f"day={first}" / later.name).write_text(later.read_text())
    later.unlink()
    crawl(defs, instance, "observations", first)
    crawl(defs, instance, "observations", last)
    assert_contract_answers(defs, trino, data_dir, "observations")
