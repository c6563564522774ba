"""The catalog: databases, tables with columns, partition keys and location, registered partitions.

The local catalog keeps the Glue Data Catalog's shapes in one JSON file per table (read by the Glue
job's code too, see `glue_scripts/zfish_etl/catalog.py`); the Glue catalog lives beside it. A day
is queryable only once its partition is registered, exactly as in the walkthrough. Both
implementations are kept in this one module (~270 lines) so each operation reads side by side.
"""

from __future__ import annotations

import fcntl
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from glue_scripts.zfish_etl.write_errors import writing
from glue_scripts.zfish_etl.catalog import CatalogTable, read_glue_table, read_local_table
from zfish_assets import settings
from zfish_assets.partitions import validate_day
from zfish_assets.resources.aws_connection import AWSConnection
from zfish_assets.settings import CrawlMode

Columns = Sequence[tuple[str, str]]

FORMATS: dict[str, dict[str, str]] = {
    # What a Glue crawler writes for JSON, and what Hudi's hive sync writes for a Hudi table.
    "json": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
    },
    "hudi": {
        "InputFormat": "org.apache.hudi.hadoop.HoodieParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    },
}


class Catalog(ConfigurableResource, ABC):
    """One database of tables, as the Glue Data Catalog holds them."""

    database: str = Field(default=settings.DATABASE.default, description=settings.DATABASE.description)

    @abstractmethod
    def get_table(self, table: str) -> CatalogTable | None:
        """The table with its registered partitions, or None when it does not exist."""

    @abstractmethod
    def put_table(
        self, table: str, columns: Columns, partition_keys: Columns, location: str, classification: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        """Create the table, or update its schema and location (partitions are kept)."""

    @abstractmethod
    def put_partition(self, table: str, day: str, location: str, parameters: Mapping[str, str]) -> None:
        """Register `day=day` (again): idempotent, the latest registration wins."""

    @abstractmethod
    def delete_partition(self, table: str, day: str) -> None:
        """Drop `day=day` (a day retracted from the lake): idempotent, a day not registered is fine."""

    def put_partitions(self, table: str, locations: Mapping[str, str]) -> None:
        """Register each `day=day` at its location (no crawl statistics): idempotent, as `put_partition`."""
        for day, location in locations.items():
            self.put_partition(table, day, location, {})

    @abstractmethod
    def partition_parameters(self, table: str) -> dict[str, dict[str, str]]:
        """Each registered day's partition parameters (what the crawl recorded)."""

    @abstractmethod
    def job_arguments(self) -> dict[str, str]:
        """How the job finds this catalog: its arguments (JobArgs fields: `catalog`, ...) for this catalog."""


def _storage_descriptor(columns: Columns, location: str, classification: str) -> dict[str, Any]:
    return {
        "Columns": [{"Name": n, "Type": t} for n, t in columns],
        "Location": location,
        **{k: v for k, v in FORMATS[classification].items() if k != "SerializationLibrary"},
        "SerdeInfo": {"SerializationLibrary": FORMATS[classification]["SerializationLibrary"]},
    }


class LocalCatalog(Catalog):
    """A Glue-shaped catalog in `$ZFISH_DATA_DIR/catalog/<database>/<table>.json`.

    Writes take a file lock and replace the file atomically: per-day crawls run in parallel.
    """

    root: str = Field(description="Folder of the catalog files (`$ZFISH_DATA_DIR/catalog` in a deployment).")

    def _file(self, table: str) -> Path:
        return Path(self.root) / self.database / f"{table}.json"

    @contextmanager
    def _locked(self, table: str) -> Iterator[dict[str, Any]]:
        """Yields `{"doc": table document or None}`; the document set there is written back."""
        path = self._file(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = json.loads(path.read_text()) if path.is_file() else None
            holder = {"doc": doc}
            yield holder
            if holder["doc"] is not None:
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                try:
                    with writing(path):
                        tmp.write_text(json.dumps(holder["doc"], indent=1, sort_keys=True))
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)  # a write that failed (a full disk) leaves no part behind

    def get_table(self, table: str) -> CatalogTable | None:
        return read_local_table(self.root, self.database, table)

    def put_table(
        self, table: str, columns: Columns, partition_keys: Columns, location: str, classification: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        with self._locked(table) as holder:
            now = datetime.now(timezone.utc).isoformat()
            doc = holder["doc"] or {"Partitions": [], "Table": {"CreateTime": now}}
            doc["Table"].update(
                {
                    "DatabaseName": self.database,
                    "Name": table,
                    "UpdateTime": now,
                    "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": _storage_descriptor(columns, location, classification),
                    "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_keys],
                    "Parameters": {"classification": classification, **(parameters or {})},
                }
            )
            holder["doc"] = doc

    def put_partition(self, table: str, day: str, location: str, parameters: Mapping[str, str]) -> None:
        validate_day(day)
        with self._locked(table) as holder:
            doc = holder["doc"]
            if doc is None:
                raise LookupError(f"table {self.database}.{table} does not exist: cannot register day={day}")
            sd = dict(doc["Table"]["StorageDescriptor"], Location=location)
            partition = {
                "DatabaseName": self.database,
                "TableName": table,
                "Values": [day],
                "StorageDescriptor": sd,
                "Parameters": dict(parameters),
                "CreationTime": datetime.now(timezone.utc).isoformat(),
            }
            doc["Partitions"] = [p for p in doc["Partitions"] if p["Values"] != [day]] + [partition]
            doc["Partitions"].sort(key=lambda p: p["Values"])

    def delete_partition(self, table: str, day: str) -> None:
        validate_day(day)
        with self._locked(table) as holder:
            if holder["doc"] is not None:
                holder["doc"]["Partitions"] = [p for p in holder["doc"]["Partitions"] if p["Values"] != [day]]

    def partition_parameters(self, table: str) -> dict[str, dict[str, str]]:
        path = self._file(table)
        if not path.is_file():
            return {}
        return {p["Values"][0]: p.get("Parameters", {}) for p in json.loads(path.read_text())["Partitions"]}

    def job_arguments(self) -> dict[str, str]:
        return {"catalog": "file", "catalog_dir": str(Path(self.root).resolve())}


class GlueCatalog(Catalog):
    """The AWS Glue Data Catalog, written in the same shapes as the local catalog (boto3)."""

    aws: AWSConnection = Field(default_factory=AWSConnection, description="Where the Glue client connects.")
    crawl_mode: CrawlMode = Field(default="partitions", description=settings.CRAWL_MODE.description)
    crawler_timeout_s: float = Field(default=float(settings.CRAWLER_TIMEOUT_S.default),
                                     description=settings.CRAWLER_TIMEOUT_S.description)
    crawler_poll_interval_s: float = Field(default=float(settings.CRAWLER_POLL_S.default),
                                           description=settings.CRAWLER_POLL_S.description)

    def client(self):
        return self.aws.client("glue")

    def get_table(self, table: str) -> CatalogTable | None:
        return read_glue_table(self.client(), self.database, table)

    def _ensure_database(self, client) -> None:
        try:
            client.get_database(Name=self.database)
        except client.exceptions.EntityNotFoundException:
            try:
                client.create_database(DatabaseInput={"Name": self.database})
            except client.exceptions.AlreadyExistsException:
                pass

    def put_table(
        self, table: str, columns: Columns, partition_keys: Columns, location: str, classification: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        client = self.client()
        self._ensure_database(client)
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": _storage_descriptor(columns, location, classification),
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in partition_keys],
            "Parameters": {"classification": classification, **(parameters or {})},
        }
        try:
            client.create_table(DatabaseName=self.database, TableInput=table_input)
        except client.exceptions.AlreadyExistsException:
            client.update_table(DatabaseName=self.database, TableInput=table_input)

    def put_partition(self, table: str, day: str, location: str, parameters: Mapping[str, str]) -> None:
        validate_day(day)
        client = self.client()
        try:
            found = client.get_table(DatabaseName=self.database, Name=table)["Table"]
        except client.exceptions.EntityNotFoundException as exc:
            raise LookupError(f"table {self.database}.{table} does not exist: cannot register day={day}") from exc
        partition_input = {
            "Values": [day],
            "StorageDescriptor": dict(found["StorageDescriptor"], Location=location),
            "Parameters": dict(parameters),
        }
        response = client.batch_create_partition(
            DatabaseName=self.database, TableName=table, PartitionInputList=[partition_input]
        )
        for error in response.get("Errors", []):
            code = error.get("ErrorDetail", {}).get("ErrorCode", "")
            if code != "AlreadyExistsException":
                raise RuntimeError(f"registering {self.database}.{table} day={day} failed: {error.get('ErrorDetail')}")
            # Re-registering a day is not an error: the latest registration wins.
            client.update_partition(DatabaseName=self.database, TableName=table, PartitionValueList=[day],
                                    PartitionInput=partition_input)

    def delete_partition(self, table: str, day: str) -> None:
        client = self.client()
        try:
            client.delete_partition(DatabaseName=self.database, TableName=table, PartitionValues=[validate_day(day)])
        except client.exceptions.EntityNotFoundException:
            pass  # not registered (or no table): nothing to drop

    def put_partitions(self, table: str, locations: Mapping[str, str]) -> None:
        """Batched: one `BatchCreatePartition` per 100 days, the days already registered updated in batches too."""
        client = self.client()
        try:
            found = client.get_table(DatabaseName=self.database, Name=table)["Table"]
        except client.exceptions.EntityNotFoundException as exc:
            raise LookupError(f"table {self.database}.{table} does not exist: cannot register its days") from exc
        sd = found["StorageDescriptor"]
        inputs = {validate_day(day): {"Values": [day], "StorageDescriptor": dict(sd, Location=location)}
                  for day, location in locations.items()}
        days, existing = sorted(inputs), []
        for i in range(0, len(days), 100):
            response = client.batch_create_partition(DatabaseName=self.database, TableName=table,
                                                     PartitionInputList=[inputs[d] for d in days[i:i + 100]])
            for error in response.get("Errors", []):
                if error.get("ErrorDetail", {}).get("ErrorCode", "") != "AlreadyExistsException":
                    raise RuntimeError(f"registering {self.database}.{table} day={error['PartitionValues'][0]} "
                                       f"failed: {error.get('ErrorDetail')}")
                existing.append(error["PartitionValues"][0])
        for i in range(0, len(existing), 100):
            entries = [{"PartitionValueList": [d], "PartitionInput": inputs[d]} for d in existing[i:i + 100]]
            response = client.batch_update_partition(DatabaseName=self.database, TableName=table, Entries=entries)
            if response.get("Errors"):
                raise RuntimeError(f"updating {self.database}.{table}'s partitions failed: {response['Errors'][0]}")

    def partition_parameters(self, table: str) -> dict[str, dict[str, str]]:
        client = self.client()
        found: dict[str, dict[str, str]] = {}
        try:
            for page in client.get_paginator("get_partitions").paginate(DatabaseName=self.database, TableName=table):
                for p in page["Partitions"]:
                    found[p["Values"][0]] = p.get("Parameters", {})
        except client.exceptions.EntityNotFoundException:
            return {}
        return found

    def job_arguments(self) -> dict[str, str]:
        """The Glue catalog, and this catalog's endpoint and region where set, so the job's clients reach it."""
        return {"catalog": "glue", **self.aws.job_arguments()}
