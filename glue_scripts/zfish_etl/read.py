"""Reading the crawled tables into Spark: registered partitions only, with the catalog's schema."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from glue_scripts.zfish_etl.catalog import CatalogTable


def read_days(spark: SparkSession, table: CatalogTable, days: list[str] | None = None) -> DataFrame:
    """The table's registered partitions among `days` (all when None) as one DataFrame.

    No schema inference: the catalog's columns are the schema, and a file that does not parse
    fails the read (FAILFAST) instead of becoming a row of nulls.
    """
    wanted = table.partitions if days is None else {d: loc for d, loc in table.partitions.items() if d in set(days)}
    if not wanted:
        return spark.createDataFrame([], table.ddl())
    return (
        spark.read.schema(table.ddl())
        .option("basePath", table.location)
        .option("pathGlobFilter", "*.json")
        .option("mode", "FAILFAST")
        .json(list(wanted.values()))
    )
