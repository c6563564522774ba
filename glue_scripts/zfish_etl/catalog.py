"""Reading the crawled tables' schema and registered partitions, from Glue or a local file.

Both sources speak the Glue Data Catalog API's shapes (`GetTable`'s `Table`, `GetPartitions`'
`Partitions`), so the job reads registered partitions only, with the catalog's schema, whether it
runs on Glue or on a laptop. The local catalog file is `<dir>/<database>/<table>.json` holding
`{"Table": {...}, "Partitions": [...]}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CatalogTable:
    """A catalog table as the job needs it: schema, partition key, and registered partitions."""

    database: str
    name: str
    columns: tuple[tuple[str, str], ...]
    partition_keys: tuple[tuple[str, str], ...]
    location: str
    classification: str
    partitions: dict[str, str]  # partition value (the day) -> location
    parameters: dict[str, dict[str, str]] = field(default_factory=dict)  # the day -> its partition's Parameters
    # the day -> its partition's own columns: Glue keeps those of the table when the day was registered, so
    # a day registered before a new member arrived holds the narrower struct (Athena reads each day by them)
    partition_columns: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    @classmethod
    def from_glue(cls, table: dict[str, Any], partitions: list[dict[str, Any]]) -> "CatalogTable":
        sd = table.get("StorageDescriptor", {})
        return cls(
            database=table["DatabaseName"],
            name=table["Name"],
            columns=tuple((c["Name"], c["Type"]) for c in sd.get("Columns", [])),
            partition_keys=tuple((c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])),
            location=sd.get("Location", ""),
            classification=table.get("Parameters", {}).get("classification", ""),
            partitions={
                "/".join(p["Values"]): p["StorageDescriptor"]["Location"]
                for p in sorted(partitions, key=lambda p: p["Values"])
            },
            parameters={"/".join(p["Values"]): dict(p.get("Parameters") or {}) for p in partitions},
            partition_columns={"/".join(p["Values"]): tuple((c["Name"], c["Type"])
                                                            for c in p["StorageDescriptor"].get("Columns", []))
                               for p in partitions},
        )

    def ddl(self) -> str:
        """The table's columns, partition key last, as a Spark DDL schema string."""
        return ", ".join(f"`{name}` {ctype}" for name, ctype in (*self.columns, *self.partition_keys))


def _local_file(catalog_dir: str, database: str, table: str) -> Path:
    return Path(catalog_dir) / database / f"{table}.json"


def read_local_table(catalog_dir: str, database: str, table: str) -> CatalogTable | None:
    """The table from the local catalog file, or None when it was never crawled."""
    path = _local_file(catalog_dir, database, table)
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return CatalogTable.from_glue(doc["Table"], doc["Partitions"])


def read_glue_table(glue_client: Any, database: str, table: str) -> CatalogTable | None:
    """The table from the Glue Data Catalog, or None when it does not exist."""
    try:
        found = glue_client.get_table(DatabaseName=database, Name=table)["Table"]
    except glue_client.exceptions.EntityNotFoundException:
        return None
    partitions: list[dict[str, Any]] = []
    for page in glue_client.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
        partitions.extend(page["Partitions"])
    return CatalogTable.from_glue(found, partitions)
