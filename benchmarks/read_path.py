"""Read path for one-object-per-file days: which way of reading a day's JSON files into Spark is fastest.

`.venv/bin/python benchmarks/read_path.py [--files 10000 100000]` lands one day of that many
one-object files (the simulator's layout, the lake's), crawls it, starts Spark (not timed), and reads
the day into a Spark DataFrame in each way below, forcing a full parse with one aggregate over every
column (whose values must agree across ways, so a fast but unfaithful reader shows):

- spark json: Spark's JSON reader with the catalog's schema (no inference), FAILFAST;
- production read_days: `glue_scripts.zfish_etl.read.read_days` as this checkout has it (up to
  `--production-max-files`: it judges every line in Python workers, and is timed last);
- listing + pyarrow -> spark: Python lists the day and reads the files, pyarrow parses the bytes
  with the catalog's schema, Spark gets the Arrow batches (no pandas in the venv, and Spark 3.5
  takes no Arrow table: `_to_spark` uses what `createDataFrame(pandas)` does inside);
- duckdb read_json: DuckDB reads the day with the catalog's columns, alone and handed to Spark;
- compacted JSON Lines / Parquet: one file per day, written once (by the crawl step, which reads
  every file anyway: its cost is shown as `build`), then read by Spark.

The files were just written, so they are in the page cache: these are warm reads. Spark's first
queries (class loading, JIT) run before any way is timed.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import harness
import pipeline

DAY = harness.day(0)


def _fingerprint_sql(table: str) -> str:
    return (f"SELECT count(*) AS n, count(DISTINCT image_id) AS ids, round(sum(length_mm), 2) AS length, "
            f"round(sum(genetic_markers.gene_a + genetic_markers.gene_b + genetic_markers.gene_c), 3) AS genes, "
            f"sum(age_days) AS ages, count(DISTINCT fish_id || timestamp || treatment || sex) AS strings FROM {table}")


def _consume(spark: Any, df: Any) -> tuple:
    """Parse everything: one aggregate over every column; its values are the read's fingerprint."""
    df.createOrReplaceTempView("day_read")
    return tuple(spark.sql(_fingerprint_sql("day_read")).first())


def _read_bytes(folder: Path) -> list[bytes]:
    """Every `.json` file of the day (listing, then one read each)."""
    with os.scandir(folder) as entries:
        names = sorted(e.name for e in entries if e.name.endswith(".json"))
    contents = []
    for name in names:
        with open(folder / name, "rb") as handle:
            contents.append(handle.read())
    return contents


def _arrow_schema(columns: tuple[tuple[str, str], ...]) -> Any:
    import pyarrow as pa

    simple = {"string": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "boolean": pa.bool_()}

    def arrow_type(hive: str) -> Any:
        if hive.startswith("struct<"):
            return pa.struct([(f.split(":")[0], arrow_type(f.split(":")[1])) for f in hive[7:-1].split(",")])
        return simple[hive]

    return pa.schema([(name, arrow_type(t)) for name, t in columns])


def _parse(contents: list[bytes], schema: Any) -> Any:
    """The files' objects as one Arrow table with the catalog's schema (one parse of their bytes)."""
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    data = b"".join(c if c.endswith(b"\n") else c + b"\n" for c in contents)
    table = pj.read_json(io.BytesIO(data), parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                          unexpected_field_behavior="error"))
    return table.append_column("day", pa.array([DAY] * table.num_rows, pa.string()))


def _to_spark(spark: Any, arrow: Any, ddl: str) -> Any:
    """Arrow record batches into a Spark DataFrame, one batch per core, without pandas.

    What `createDataFrame(pandas_df)` does after converting to Arrow (Spark 3.5's own internals:
    `_serialize_to_jvm` and `PythonSQLUtils.toDataFrame`); Spark 4 takes a pyarrow Table directly.
    """
    from pyspark.sql import DataFrame
    from pyspark.sql.pandas.serializers import ArrowStreamSerializer

    schema = spark.createDataFrame([], ddl).schema
    per_batch = max(1, math.ceil(arrow.num_rows / spark.sparkContext.defaultParallelism))
    batches = arrow.combine_chunks().to_batches(max_chunksize=per_batch)
    jiter = spark.sparkContext._serialize_to_jvm(
        batches, ArrowStreamSerializer(),
        lambda path: spark._jvm.PythonSQLUtils.readArrowStreamFromFile(path),
        lambda: spark._jvm.ArrowIteratorServer())
    return DataFrame(spark._jvm.PythonSQLUtils.toDataFrame(jiter, schema.json(), spark._jsparkSession), spark)


def measure(files: int, production_max_files: int) -> list[dict[str, Any]]:
    """Land and crawl the day, then time each read in this process (Spark started first, untimed)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.environ["ZFISH_CLOCK"] = f"{DAY}T18:00:00Z"
    from glue_scripts.zfish_etl.read import read_days
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.backends.duckdb_views import duckdb_type
    from zfish_assets.backends.spark_session import get_spark_session
    from zfish_assets.synthetic import SimSettings, write_day

    defs = pipeline.definitions()
    lake, catalog = defs.resources["lake"], defs.resources["catalog"]
    folder = Path(lake.local_day_dir("observations", DAY))
    rows: list[dict[str, Any]] = []

    def timed(way: str, step: str, action: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        value = action()
        rows.append({"files": files, "way": way, "step": step, "seconds": round(time.perf_counter() - began, 2)})
        return value

    sim = SimSettings(start=harness.SIM_START, fish_per_day=math.ceil(files / 3), images_per_fish=3)
    timed("(setup)", "land", lambda: write_day(sim, "observations", harness.SIM_START, folder))
    timed("(setup)", "crawl (this checkout)", lambda: crawl_day(lake, catalog, "observations", DAY))
    table = catalog.get_table("observations")
    spark = get_spark_session()
    ddl, schema = table.ddl(), _arrow_schema(table.columns)
    # The session's first queries pay for class loading and JIT: pay it before any way is timed.
    for _ in range(2):
        _consume(spark, spark.read.schema(ddl).json(str(next(folder.glob("*.json")))))
    prints: dict[str, tuple] = {}

    def json_reader() -> Any:
        return (spark.read.schema(ddl).option("basePath", table.location).option("pathGlobFilter", "*.json")
                .option("mode", "FAILFAST").json([table.partitions[DAY]]))

    prints["spark json"] = timed("spark json", "read+parse", lambda: _consume(spark, json_reader()))
    contents = timed("listing + pyarrow -> spark", "list+read files", lambda: _read_bytes(folder))
    arrow = timed("listing + pyarrow -> spark", "parse (pyarrow)", lambda: _parse(contents, schema))
    prints["listing + pyarrow -> spark"] = timed("listing + pyarrow -> spark", "to spark+aggregate",
                                                 lambda: _consume(spark, _to_spark(spark, arrow, ddl)))
    columns = ", ".join(f"\"{n}\": '{duckdb_type(t)}'" for n, t in table.columns)
    duck_sql = (f"SELECT * FROM read_json('{folder}/*.json', columns={{{columns}}}, format='newline_delimited', "
                "hive_partitioning=true, hive_types={'day': 'VARCHAR'})")
    # DuckDB's Arrow output uses its own string layouts: cast to the plain types Spark's reader takes.
    with_day = schema.append(pa.field("day", pa.string()))
    from_duck = timed("duckdb read_json", "read+parse (to Arrow)",
                      lambda: duckdb.sql(duck_sql).to_arrow_table().cast(with_day))
    duck = duckdb.sql(_fingerprint_sql("from_duck")).fetchall()[0]
    prints["duckdb read_json"] = timed("duckdb read_json", "to spark+aggregate",
                                       lambda: _consume(spark, _to_spark(spark, from_duck, ddl)))
    compacted = folder.parent.parent / "_compacted" / f"day={DAY}"
    compacted.mkdir(parents=True, exist_ok=True)
    jsonl, parquet = compacted / "observations.jsonl", compacted / "observations.parquet"
    timed("compacted JSON Lines", "build (concatenate)", lambda: jsonl.write_bytes(b"".join(_read_bytes(folder))))
    prints["compacted JSON Lines"] = timed("compacted JSON Lines", "spark read+parse", lambda: _consume(
        spark, spark.read.schema(ddl.replace(", `day` string", "")).option("mode", "FAILFAST").json(str(jsonl))
        .selectExpr("*", f"'{DAY}' AS day")))
    timed("compacted Parquet", "build (read+parse+write)",
          lambda: pq.write_table(_parse(_read_bytes(folder), schema).drop(["day"]), parquet))
    prints["compacted Parquet"] = timed("compacted Parquet", "spark read+parse", lambda: _consume(
        spark, spark.read.parquet(str(parquet)).selectExpr("*", f"'{DAY}' AS day")))
    if files <= production_max_files:
        prints["production read_days"] = timed("production read_days", "read+parse",
                                               lambda: _consume(spark, read_days(spark, table, [DAY])))
    reference = prints["spark json"]
    for way, value in prints.items():
        if value != reference:
            raise RuntimeError(f"{way} read different data: {value} vs spark json's {reference}")
    if duck != reference:
        raise RuntimeError(f"duckdb read different data: {duck} vs spark json's {reference}")
    for row in rows:
        row["rows"] = reference[0]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--production-max-files", type=int, default=10_000,
                        help="measure the production read_days up to this many files (it parses in Python: slow)")
    args = parser.parse_args()
    results = harness.Results("read_path", vars(args))
    table = []
    for files in args.files:
        with harness.scratch_data_dir(ZFISH_FISH_PER_DAY=str(math.ceil(files / 3)), ZFISH_IMAGES_PER_FISH="3"):
            measured = harness.in_fresh_process(measure, files, args.production_max_files)
        table += measured
        for row in measured:
            results.add(row)
        results.write()  # after each size: a long run stopped midway keeps what it measured
    harness.print_table(table, "reading one day of one-object files into Spark (every way read the same data)")
    totals: dict[tuple[int, str], float] = {}
    for row in table:
        if row["way"] != "(setup)" and not row["step"].startswith("build"):
            totals[(row["files"], row["way"])] = totals.get((row["files"], row["way"]), 0.0) + row["seconds"]
    summary = [{"files": f, "way": w, "read seconds": round(s, 2), "files/s": round(f / s)} for (f, w), s in totals.items()]
    harness.print_table(summary, "per way: seconds to a parsed Spark DataFrame (compaction build not included)")
    results.document.update(summary=summary)
    results.write()


if __name__ == "__main__":
    main()
