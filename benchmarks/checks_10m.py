"""The joined table's checks on a 10^7-row joined_fish_data, without a JVM (hudi-rs + DuckDB).

`.venv/bin/python benchmarks/checks_10m.py [--rows 10000000]` builds the table once and keeps it
under `--data-dir` (default /tmp/zfish-bench-cache/checks-<rows>): Spark generates `--rows`
observations over `--days` days and one label per fish, writes them into the lake as one JSON Lines
file per day (10^7 one-object files would take hours to create here), registers both in the catalog,
and bulk-inserts the project's own join of them (`join_labeled`) with the project's Hudi options.
Then it times the joined table's four checks as Dagster runs them, each check on its own (a run of
that check alone), and the reads they are made of, twice, each time in a fresh process that never
starts Java: as an evening's run tags them (its window: the last `--window` days of the table) and
on their own (every day). Target (issues #8, #18): the checks on 10^7 rows in 5 s or less. A table
built before the job kept key digests beside it gets them once, from the job's own function.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import harness
import pipeline
from zfish_assets.dagster_names import JOINED, RANGE_END, RANGE_START

TARGET_S = 5.0
DONE = "benchmark-table.json"
ALL_FOUR = "the 4 checks as one Dagster run"


def build(rows: int, days: int) -> dict[str, Any]:
    """Generate, land, register and bulk-insert the table (in this process, with Spark)."""
    import os

    os.environ["ZFISH_CLOCK"] = f"{harness.day(days + 40)}T18:00:00Z"
    from pyspark.sql import functions as F

    from glue_scripts.zfish_etl.hudi import hudi_options
    from glue_scripts.zfish_etl.table_keys import write_table_keys
    from glue_scripts.zfish_etl.transform import join_labeled
    from zfish_assets.domain.crawl import PARTITION_KEYS
    from zfish_assets.io_managers.hudi_io_manager import hive_type
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot
    from zfish_assets.backends.spark_session import get_spark_session

    defs = pipeline.definitions()
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    spark = get_spark_session()
    began = time.perf_counter()
    fish_per_day = -(-rows // (3 * days))
    ids = spark.range(rows).withColumn("fish", F.floor(F.col("id") / 3))
    ids = ids.withColumn("day_index", F.floor(F.col("fish") / fish_per_day).cast("int"))
    start = F.lit(harness.day(0)).cast("date")
    noise = lambda salt: F.round((F.xxhash64(F.col("fish"), F.lit(salt)) % 20000) / 10000.0, 4)  # noqa: E731
    observations = ids.select(
        F.format_string("zfish_%07d", "fish").alias("fish_id"),
        F.expr("concat_ws('-', substr(md5(concat('zfish', id)), 1, 8), substr(md5(concat('zfish', id)), 9, 4), "
               "substr(md5(concat('zfish', id)), 13, 4), substr(md5(concat('zfish', id)), 17, 4), "
               "substr(md5(concat('zfish', id)), 21, 12))").alias("image_id"),
        F.format_string("%sT%02d:%02d:00Z", F.date_add(start, F.col("day_index")).cast("string"),
                        8 + F.col("id") % 10, F.col("id") % 60).alias("timestamp"),
        (3 + F.col("fish") % 28).alias("age_days"),
        F.element_at(F.array(F.lit("control"), F.lit("drug_a"), F.lit("drug_b")), (F.col("fish") % 3 + 1).cast("int")).alias("treatment"),
        F.struct(noise("a").alias("gene_a"), noise("b").alias("gene_b"), noise("c").alias("gene_c")).alias("genetic_markers"),
        F.round(3.0 + (F.col("id") % 500) / 100.0, 2).alias("length_mm"),
        F.when(F.col("fish") % 2 == 0, "M").otherwise("F").alias("sex"),
        F.date_add(start, F.col("day_index")).cast("string").alias("day"),
    )
    outcomes = observations.select("fish_id", "day").distinct().select(
        "fish_id", (F.xxhash64("fish_id") % 3 == 0).alias("condition_developed"),
        F.date_add(F.col("day").cast("date"), 32).cast("string").alias("day"))
    table_root = lambda table: Path(lake.local_day_dir(table, harness.day(0))).parent  # noqa: E731
    for table, df in (("observations", observations), ("outcomes", outcomes)):
        df.repartition("day").write.mode("overwrite").partitionBy("day").json(str(table_root(table)))
    uri = defs.resources["hudi_io_manager"].table_uri(JOINED)
    joined = join_labeled(spark.read.schema(", ".join([
        "fish_id string", "image_id string", "timestamp string", "age_days bigint", "treatment string",
        "genetic_markers struct<gene_a:double,gene_b:double,gene_c:double>", "length_mm double",
        "sex string", "day string"])).json(str(table_root("observations"))),
        spark.read.schema("fish_id string, condition_developed boolean, day string").json(str(table_root("outcomes"))))
    # bulk_insert's default global sort of 10^7 rows in two tasks ran out of a 4 GiB heap: sort within
    # many small tasks instead (the files' content is the same rows, in another order).
    options = hudi_options("joined_fish_data", catalog.database, spark.sparkContext.defaultParallelism,
                           {"hoodie.datasource.write.operation": "bulk_insert",
                            "hoodie.bulkinsert.sort.mode": "PARTITION_SORT",
                            "hoodie.bulkinsert.shuffle.parallelism": str(max(2, rows // 250_000))})
    joined.write.format("hudi").options(**options).mode("overwrite").save(uri)
    write_table_keys(spark, uri, [harness.day(offset) for offset in range(days)])
    columns = {
        "observations": (("fish_id", "string"), ("image_id", "string"), ("timestamp", "string"), ("age_days", "bigint"),
                         ("treatment", "string"), ("genetic_markers", "struct<gene_a:double,gene_b:double,gene_c:double>"),
                         ("length_mm", "double"), ("sex", "string")),
        "outcomes": (("fish_id", "string"), ("condition_developed", "boolean")),
    }
    counts = {}
    for table, table_columns in columns.items():
        catalog.put_table(table, table_columns, PARTITION_KEYS, lake.table_uri(table), "json")
        per_day = {r["day"]: r["n"] for r in spark.read.schema("fish_id string, day string").json(
            str(table_root(table))).groupBy("day").agg(F.count("*").alias("n")).collect()}
        for day, n in sorted(per_day.items()):
            catalog.put_partition(table, day, lake.day_uri(table, day), {"recordCount": str(n)})
        counts[table] = sum(per_day.values())
    schema = read_hudi_snapshot(uri, lake.storage_options(), days=[harness.day(0)]).schema
    catalog.put_table("joined_fish_data", [(f.name, hive_type(f.type)) for f in schema
                                            if not f.name.startswith("_hoodie") and f.name != "day"],
                      PARTITION_KEYS, uri, "hudi")
    counts["joined_fish_data"] = joined.count()
    counts["build_s"] = round(time.perf_counter() - began)
    counts["keys_s"] = "in build_s"
    return counts


def add_keys(days: int) -> float:
    """Seconds to write the key digests of every day of a table built before the job kept them
    (the job's own `write_table_keys`, in this process, with Spark)."""
    from glue_scripts.zfish_etl.table_keys import write_table_keys
    from zfish_assets.backends.spark_session import get_spark_session

    uri = pipeline.definitions().resources["hudi_io_manager"].table_uri(JOINED)
    spark = get_spark_session()
    began = time.perf_counter()
    write_table_keys(spark, uri, [harness.day(offset) for offset in range(days)])
    return round(time.perf_counter() - began, 1)


def run_checks(defs: Any, instance: Any, selection: Any, days: list[str] | None) -> None:
    """The selected checks as one Dagster run, tagged as a range run of `days` (none: every day); all must pass."""
    from dagster import materialize



    result = materialize(
        [*defs.assets, *defs.asset_checks], selection=selection, resources=defs.resources, instance=instance,
        tags={RANGE_START: days[0], RANGE_END: days[-1]} if days else {}, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    failed = [f"{e.check_name}: {e.description}" for e in result.get_asset_check_evaluations() if not e.passed]
    if failed or not result.success:
        raise RuntimeError(f"checks failed: {failed or 'the run failed'}")


def measure(days: list[str] | None) -> list[dict[str, Any]]:
    """The checks over `days` (None: every day) and their reads, timed in this process; it must end without a JVM."""
    from dagster import AssetCheckKey, AssetKey, AssetSelection, DagsterInstance

    from zfish_assets.assets.joined_checks import joined_checks
    from zfish_assets.backends.hudi_reader import read_hudi_snapshot, snapshot_dataset
    from zfish_assets.backends.key_digests import repeated_key_days

    phases = harness.Phases()
    with phases("imports+definitions"):
        defs = pipeline.definitions()
    query, catalog, lake = defs.resources["query"], defs.resources["catalog"], defs.resources["lake"]
    harness.reset_peak_rss()
    with DagsterInstance.ephemeral() as instance:
        with phases(ALL_FOUR):
            run_checks(defs, instance, AssetSelection.checks_for_assets(AssetKey(JOINED)), days)
        for check in joined_checks:
            name = next(iter(check.check_specs)).name
            with phases(f"check {name} alone (its own run)"):
                run_checks(defs, instance, AssetSelection.checks(AssetCheckKey(AssetKey(JOINED), name)), days)
    peak = harness.peak_rss_mib()["python_peak_MiB"]
    uri, options = catalog.get_table(JOINED).location, lake.storage_options()
    db = f'"{catalog.database}"'
    of_days = "day <> ''" if days is None else f"day IN ({', '.join(repr(d) for d in days)})"

    def count(sql: str, table: str, whole: bool = False) -> int:
        """Rows counted by `sql` over `table` (of the run's days, or every day), whose conditions make
        DuckDB decode the columns, not read a footer's count."""
        return query.query(sql, {table: None if whole else days}).column(0)[0].as_py()

    reads = {
        "hudi-rs: the snapshot's files (labeled_rows, labels_are_latest)":
            lambda: len(snapshot_dataset(uri, options, days).files),
        "hudi-rs: the snapshot's files, every day (unique_image_id)": lambda: len(snapshot_dataset(uri, options).files),
        "DuckDB: day column (labeled_rows)": lambda: count(f"SELECT count(*) FROM {db}.{JOINED} WHERE {of_days}", JOINED),
        "the key digests of every day, listed and compared (unique_image_id)":
            lambda: len(repeated_key_days(uri, options, days).days),
        "DuckDB: image_id column of every day (unique_image_id without digests)":
            lambda: count(f"SELECT count(*) FROM {db}.{JOINED} WHERE image_id <> ''", JOINED, whole=True),
        "DuckDB: raw observations (labeled_rows)":
            lambda: count(f"SELECT count(*), sum(length_mm) FROM {db}.observations WHERE {of_days}", "observations"),
        "DuckDB: every label (labeled_rows, labels_are_latest)":
            lambda: count(f"SELECT count(*), count(condition_developed) FROM {db}.outcomes", "outcomes", whole=True),
        "hudi-rs: every column (what each check read before)": lambda: read_hudi_snapshot(uri, options, days).num_rows,
    }
    rows = {}
    for name, read in reads.items():
        with phases(name):
            rows[name] = read()
    if harness.jvm_pids():
        raise RuntimeError("a JVM started: the checks are meant to run without one")
    return [{"step": name, "seconds": round(s, 2), "rows": rows.get(name, ""),
             **({"python_peak_MiB": round(peak)} if name == ALL_FOUR else {})}
            for name, s in phases.seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=400, help="days the rows are spread over")
    parser.add_argument("--window", type=int, default=36, help="days an evening's run covers (the label horizon)")
    parser.add_argument("--data-dir", type=Path, help="where the table is kept (default /tmp/zfish-bench-cache/checks-ROWS)")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(f"/tmp/zfish-bench-cache/checks-{args.rows}")
    results = harness.Results("checks_10m", {"rows": args.rows, "days": args.days, "data_dir": str(data_dir)})
    with harness.scratch_data_dir(keep=data_dir):
        marker = data_dir / DONE
        if not marker.is_file():
            print(f"building the {args.rows:,}-row table in {data_dir} (once) ...", flush=True)
            marker.write_text(json.dumps(harness.in_fresh_process(build, args.rows, args.days)))
        built = json.loads(marker.read_text())
        if "keys_s" not in built:
            print("writing the table's key digests (once) ...", flush=True)
            built["keys_s"] = harness.in_fresh_process(add_keys, args.days)
            marker.write_text(json.dumps(built))
        window = [harness.day(offset) for offset in range(args.days - args.window, args.days)]
        scopes = {f"evening ({window[0]}..{window[-1]})": window, "every day": None}
        measured = {scope: harness.in_fresh_process(measure, days) for scope, days in scopes.items()}
    results.document.update(table=built, window=[window[0], window[-1]])
    for scope, rows in measured.items():
        for row in rows:
            results.add({"scope": scope, **row})
        harness.print_table(rows, f"joined_fish_data checks over {scope}, {built['joined_fish_data']:,} rows "
                                  f"({built['observations']:,} observations), no JVM")
    totals = {scope: next(r["seconds"] for r in rows if r["step"] == ALL_FOUR) for scope, rows in measured.items()}
    for scope, total in totals.items():
        print(f"target checks on 10^7 rows <= {TARGET_S:.0f} s, {scope}: "
              f"{'met' if total <= TARGET_S else 'missed'} ({total} s)")
    results.document.update(target_s=TARGET_S, met={scope: total <= TARGET_S for scope, total in totals.items()})
    results.write()


if __name__ == "__main__":
    main()
