"""Every entry of a day folder in the local lake has a fate, when the lab writes into the lake itself.

`zfish upload` refuses a day folder holding entries that are no file (`test_upload_entries.py`); a
lab that copies its files into the lake folder itself (the lake sensor crawls such a day) can leave
them there. The crawl must name each one in the day's quarantine without opening it (a named pipe
blocks its reader), and the job's listing must pass over them as the crawl did: before, the crawl
dropped a dangling link, a link loop and a pipe in silence and registered the day, and the next
join of a window holding it failed on the loop (`OSError: Too many levels of symbolic links`).
The expectations are the entries the test itself made, never the crawl's records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from glue_scripts.zfish_etl.catalog import read_local_table
from glue_scripts.zfish_etl.ledger import read_ledger
from glue_scripts.zfish_etl.read import day_files
from zfish_assets.assets.crawled_checks import partitions_match_lake, rows_match_landed
from zfish_assets.domain.glue_crawler import crawl
from zfish_assets.resources.data_catalog import LocalCatalog
from zfish_assets.resources.lake import LocalLake
from zfish_assets.resources.query import DuckDBQuery

DAY = "2025-04-25"


def line(key: str) -> str:
    return json.dumps({"fish_id": "zfish_A", "image_id": key, "timestamp": f"{DAY}T09:00:00Z", "age_days": 5,
                       "treatment": "control", "genetic_markers": {"gene_a": 0.1, "gene_b": 0.2, "gene_c": 0.3},
                       "length_mm": 4.5, "sex": "F"}) + "\n"


def test_entries_that_are_no_file_are_quarantined_unopened_and_the_job_lists_what_the_crawl_read(tmp_path):
    lake = LocalLake(root=str(tmp_path / "lake"), prefix="p")
    catalog = LocalCatalog(root=str(tmp_path / "catalog"), database="db")
    lake.land_day("observations", DAY, lambda f: (f / "a.json").write_text(line("X")))
    folder = lake.local_day_dir("observations", DAY)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.json").write_text(line("Y"))
    (folder / "linked.json").symlink_to(outside / "b.json")  # a link to a file: read as the file
    special = {
        "dangling.json": lambda p: p.symlink_to(tmp_path / "gone.json"),
        "loop1.json": lambda p: p.symlink_to(folder / "loop2.json"),
        "loop2.json": lambda p: p.symlink_to(folder / "loop1.json"),
        "folder.json": lambda p: p.symlink_to(outside),
        "pipe.json": lambda p: os.mkfifo(p),
        "empty": lambda p: p.mkdir(),  # an empty subfolder: named as well, not dropped in silence
    }
    for name, make in special.items():
        make(folder / name)

    crawled = crawl(lake, catalog, "observations", DAY)  # a pipe opened would block here

    assert crawled.registered and crawled.rows == 2 and crawled.files == 2
    entries = {e.file: e for e in read_ledger(lake.get_bytes, "observations", DAY)}
    assert set(entries) == set(special)
    assert {(e.line, e.reason) for e in entries.values()} == {(0, "not_a_data_file")}
    for name, words in (("dangling.json", "dangling"), ("loop1.json", "cannot be followed"),
                        ("folder.json", "folder"), ("pipe.json", "pipe"), ("empty", "empty folder")):
        assert words in entries[name].detail and "remove it" in entries[name].detail, entries[name].detail
    assert partitions_match_lake("observations", [DAY], lake, catalog).passed
    check = rows_match_landed("observations", [DAY], DuckDBQuery(catalog=catalog, lake=lake), catalog,
                              lambda _, day, files: 2)
    assert check.passed, check.description
    # The job lists the day as the crawl read it: the two files, no error on the loop or the pipe.
    table = read_local_table(catalog.root, "db", "observations")
    assert [name for _, name, _, _ in day_files(table, [DAY])] == ["a.json", "linked.json"]


def test_a_day_left_with_only_such_entries_is_retracted_and_names_them(tmp_path):
    lake = LocalLake(root=str(tmp_path / "lake"), prefix="p")
    catalog = LocalCatalog(root=str(tmp_path / "catalog"), database="db")
    lake.land_day("observations", DAY, lambda f: (f / "a.json").write_text(line("X")))
    assert crawl(lake, catalog, "observations", DAY).registered
    folder: Path = lake.local_day_dir("observations", DAY)
    (folder / "a.json").unlink()
    (folder / "a.json").symlink_to(tmp_path / "moved-away.json")
    crawled = crawl(lake, catalog, "observations", DAY)
    assert not crawled.registered and crawled.dropped
    assert [(e.file, e.reason) for e in read_ledger(lake.get_bytes, "observations", DAY)] == [
        ("a.json", "not_a_data_file")]


def test_a_day_folder_before_the_first_partition_is_named_by_the_quarantine_check(tmp_path, monkeypatch):
    """No run can crawl a day before ZFISH_SIM_START (it has no partition): the check says so rather than
    pass over a folder of the lake in silence."""
    from zfish_assets.assets.crawled_checks import quarantine

    monkeypatch.setenv("ZFISH_SIM_START", "2025-04-05")
    lake = LocalLake(root=str(tmp_path / "lake"), prefix="p")
    catalog = LocalCatalog(root=str(tmp_path / "catalog"), database="db")
    for day in ("2025-04-04", "2025-04-05"):
        lake.land_day("observations", day, lambda f: (f / "a.json").write_text(line("X" + day)))
    crawl(lake, catalog, "observations", "2025-04-05")
    check = quarantine("observations", ["2025-04-05"], lake, catalog)
    assert not check.passed and "before ZFISH_SIM_START=2025-04-05" in check.description, check.description
    assert "day=2025-04-04" in check.description and "day=2025-04-05" not in check.description, check.description
