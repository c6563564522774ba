"""Trino for the tests: Athena engine v3 is Trino, so the checks' Athena SQL is run on a local one.

What is here, and why:
- `find_java_home`: Trino 476 needs Java 24+, while Spark needs Java 17 on PATH; the server gets its
  own JAVA_HOME and nothing else changes.
- `TrinoServer`: one local server (coordinator and worker in one JVM, 2 GB heap) with the two
  catalogs Athena's one catalog stands for: `hive` (the JSON tables, OpenX JSON SerDe as Athena
  reads them) and `hudi` (the Hudi table). `hive` hands a table registered with Hudi's input format
  to `hudi` (`hive.hudi-catalog-name`), so one session catalog answers `<database>.<table>` for all
  three, as Athena's `AwsDataCatalog` does.
- `write_metastore`: the server's file metastore written from zfish's catalog, table by table, in
  the Glue shapes zfish registers (columns, partition key, formats from `FORMATS`, every registered
  partition with its location and its own columns). Trino's `CREATE TABLE` cannot say Hudi's input
  format; the file metastore can. A Hudi table the catalog holds without partitions (registered by hand, as a benchmark
  does) gets every partition of its latest snapshot, what the IO manager would register.
- `TrinoQuery`: a `Query` speaking Trino's HTTP API, so the checks' SQL reaches Trino
  exactly as they hand it to Athena (`AthenaQuery` sends the same text unchanged).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from hudi import HudiReadOptions, HudiTableBuilder
from dagster import Definitions
from pydantic import Field

from glue_scripts.zfish_etl.catalog import CatalogTable
from zfish_assets.backends.ports import LOOPBACK
from zfish_assets.resources.data_catalog import FORMATS, Catalog
from zfish_assets.resources.lake import Lake
from zfish_assets.resources.query import Query, Tables
from zfish_assets_tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file: zfish_assets_tests/resources/)
MIN_JAVA = 24
JAVA_HOME_VARIABLE = "ZFISH_TRINO_JAVA_HOME"
SCHEMA_FILE = ".trinoSchema"
ENGINE_SOURCE = "zfish-query-engine"  # the client name of `TrinoQuery`'s statements


def java_major(home: Path) -> int | None:
    """The major version of the JDK at `home`, from its `release` file (None when it is not a JDK)."""
    release = home / "release"
    if not (home / "bin" / "java").is_file() or not release.is_file():
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else None


def find_java_home() -> Path | None:
    """A Java 24+ home: `ZFISH_TRINO_JAVA_HOME`, else `JAVA_HOME`, else the newest under /usr/lib/jvm or /opt."""
    named = [os.environ.get(JAVA_HOME_VARIABLE, ""), os.environ.get("JAVA_HOME", "")]
    candidates = [Path(p) for p in named if p]
    for folder in (Path("/usr/lib/jvm"), Path("/opt")):
        if folder.is_dir():
            candidates += sorted(folder.iterdir(), key=lambda p: java_major(p) or 0, reverse=True)
    return next((home for home in candidates if (java_major(home) or 0) >= MIN_JAVA), None)


def fetch_trino() -> Path:
    """The unpacked Trino server, fetched through `bin/fetch-trino` (Maven) the first time."""
    done = subprocess.run([str(ROOT / "bin" / "fetch-trino")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bin/fetch-trino failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class TrinoServer:
    """A local Trino started in its own process group, with the `hive` and `hudi` catalogs on one file metastore."""

    def __init__(self, home: Path, java_home: Path, work: Path, heap: str = "2G") -> None:
        self.home, self.java_home, self.work, self.heap = home, java_home, work, heap
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.metastore = work / "metastore"
        self.log = work / "server.log"
        self.process: subprocess.Popen | None = None
        self.version = ""

    def _write_config(self) -> Path:
        etc = self.work / "etc"
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        self.metastore.mkdir(parents=True, exist_ok=True)
        (etc / "node.properties").write_text(
            f"node.environment=zfish\nnode.id=zfish-test\nnode.data-dir={self.work / 'data'}\n"
            f"node.bind-ip={LOOPBACK}\nnode.internal-address={LOOPBACK}\n")
        (etc / "jvm.config").write_text("\n".join([
            "-server", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError", "-Djdk.attach.allowAttachSelf=true", ""]))
        (etc / "config.properties").write_text("\n".join([
            "coordinator=true", "node-scheduler.include-coordinator=true",
            f"http-server.http.port={self.port}", f"discovery.uri={self.url}",
            "query.max-memory=1GB", "query.max-memory-per-node=1GB", "query.max-history=10000", f"catalog.config-dir={etc / 'catalog'}", ""]))
        # The lake's file:// locations are read through Trino's local file system (scheme local://).
        storage = ["hive.metastore=file", f"hive.metastore.catalog.dir=local://{self.metastore}",
                   "fs.native-local.enabled=true", "local.location=/"]
        (etc / "catalog" / "hive.properties").write_text(
            "\n".join(["connector.name=hive", *storage, "hive.hudi-catalog-name=hudi", ""]))
        (etc / "catalog" / "hudi.properties").write_text("\n".join(["connector.name=hudi", *storage, ""]))
        return etc

    def start(self, timeout_s: float = 300.0) -> None:
        """Start the server and wait until it answers queries; the error names the log when it does not."""
        etc = self._write_config()
        env = dict(os.environ, JAVA_HOME=str(self.java_home),
                   PATH=f"{self.java_home / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.home / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={self.work / 'data'}"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Trino exited with {self.process.returncode} while starting; see {self.log}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/v1/info", timeout=5) as response:
                    info = json.load(response)
                if not info.get("starting", True):
                    self.version = info["nodeVersion"]["version"]
                    # The first query also waits for the worker (this JVM) to announce itself.
                    run_statement(self.url, "SELECT 1", "system", "runtime", timeout_s=deadline - time.monotonic())
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, TrinoQueryError):
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"Trino did not start within {timeout_s:g}s; see {self.log}")

    def stop(self) -> None:
        """Stop the server's process group (the launcher and its JVM)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class TrinoQueryError(RuntimeError):
    """A statement Trino refused or failed; the message names the query id and Trino's error."""


def _request(url: str, data: bytes | None, headers: Mapping[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers=dict(headers))
    attempt = 0
    while True:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            attempt += 1
            if exc.code not in (502, 503, 504) or attempt == 5:  # the protocol's "retry" answers
                raise
            time.sleep(0.2 * attempt)


def run_statement(url: str, sql: str, catalog: str, schema: str, timeout_s: float = 600.0,
                  source: str = "zfish-tests") -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Columns and rows of one statement through Trino's client protocol (POST, then follow `nextUri`).

    `source` names the client in Trino's query list (`system.runtime.queries`).
    """
    headers = {"X-Trino-User": "zfish", "X-Trino-Catalog": catalog, "X-Trino-Schema": schema,
               "X-Trino-Source": source}
    page = _request(f"{url}/v1/statement", sql.encode(), headers)
    columns: list[dict[str, Any]] | None = None
    rows: list[list[Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        columns = columns or page.get("columns")
        rows.extend(page.get("data") or [])
        if "error" in page:
            error = page["error"]
            raise TrinoQueryError(f"Trino query {page.get('id')} failed: {error.get('errorName')}: "
                                  f"{error.get('message')}\n{sql}")
        if "nextUri" not in page:
            return columns or [], rows
        if time.monotonic() > deadline:
            raise TrinoQueryError(f"Trino query {page.get('id')} still running after {timeout_s:g}s\n{sql}")
        page = _request(page["nextUri"], None, headers)


_ARROW = {"boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(), "integer": pa.int32(),
          "bigint": pa.int64(), "real": pa.float32(), "double": pa.float64(), "varchar": pa.string(),
          "date": pa.date32()}


def arrow_column(trino_type: str, values: list[Any]) -> pa.Array:
    """A result column as Arrow: scalars typed; rows, arrays, maps, timestamps kept as Trino's text (JSON)."""
    base = trino_type.split("(", 1)[0]
    if base in ("double", "real"):  # Trino sends NaN and the infinities as strings
        values = [float(v) if isinstance(v, str) else v for v in values]
    if base == "date":
        import datetime as dt

        values = [None if v is None else dt.date.fromisoformat(v) for v in values]
    if base in _ARROW:
        return pa.array(values, type=_ARROW[base])
    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values], type=pa.string())


def _location(uri: str) -> str:
    """A catalog location as Trino's file systems spell it: `file:///x` is `local:///x`."""
    return "local://" + uri.removeprefix("file://") if uri.startswith("file://") else uri


def _columns(columns: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"name": name, "type": ctype, "properties": {}} for name, ctype in columns]


def hive_synced_partitions(table: CatalogTable, storage_options: Mapping[str, str]) -> dict[str, str]:
    """The partitions Hudi's hive sync registers for a Hudi table: every partition of its latest snapshot."""
    slices = HudiTableBuilder.from_base_uri(table.location).with_storage_options(dict(storage_options)).build() \
        .get_file_slices(HudiReadOptions())
    paths = sorted({s.partition_path for s in slices})
    return {path.removeprefix("day="): f"{table.location.rstrip('/')}/{path}" for path in paths}


def write_metastore(root: Path, catalog: Catalog, lake: Lake, tables: Sequence[str], writer_version: str) -> None:
    """Trino's file metastore under `root` holding `tables` exactly as the catalog has them now.

    Each table's folder is rewritten whole, so a partition the catalog dropped is gone here too.
    Table formats are the serde and input/output formats zfish registers (`FORMATS`); a partition
    record can only name one of Trino's storage formats, which is OPENX_JSON for the JSON days
    (the same three classes) and PARQUET for Hudi's partitions, whose files the `hudi` catalog
    reads through the table's Hudi format.
    """
    database = catalog.database
    (root / database).mkdir(parents=True, exist_ok=True)
    schema_file = root / f".{database}{SCHEMA_FILE}"
    if not schema_file.exists():
        schema_file.write_text(json.dumps({"writerVersion": writer_version, "ownerName": "zfish",
                                           "ownerType": "USER", "parameters": {}}))
    for name in tables:
        table = catalog.get_table(name)
        if table is None:
            continue
        folder = root / database / name
        shutil.rmtree(folder, ignore_errors=True)
        formats = FORMATS[table.classification]
        folder.mkdir()
        (folder / SCHEMA_FILE).write_text(json.dumps({
            "writerVersion": writer_version, "owner": "zfish", "tableType": "EXTERNAL_TABLE",
            "dataColumns": _columns(table.columns), "partitionColumns": _columns(table.partition_keys),
            "parameters": {"EXTERNAL": "TRUE", "classification": table.classification},
            "originalStorageFormat": {"serde": formats["SerializationLibrary"], "inputFormat": formats["InputFormat"],
                                      "outputFormat": formats["OutputFormat"]},
            "serdeParameters": {}, "externalLocation": _location(table.location), "columnStatistics": {},
        }))
        is_hudi = table.classification == "hudi"
        partitions = table.partitions or (hive_synced_partitions(table, lake.storage_options()) if is_hudi else {})
        (key, _), = table.partition_keys
        for value, location in partitions.items():
            (folder / f"{key}={value}").mkdir()
            (folder / f"{key}={value}" / SCHEMA_FILE).write_text(json.dumps({
                # a JSON day's own columns, as Glue hands them to Athena (a day registered before a new
                # gene keeps the narrower struct); Hudi's days (read through the table's Hudi schema) and a
                # day that records none: the table's
                "columns": _columns((not is_hudi and table.partition_columns.get(value)) or table.columns),
                "parameters": {},
                "storageFormat": "PARQUET" if is_hudi else "OPENX_JSON", "serdeParameters": {},
                "externalLocation": _location(location), "columnStatistics": {},
            }))


class TrinoQuery(Query):
    """The checks' SQL on Trino, with the catalog database as the session schema (Athena's query context).

    Before each statement, the metastore is rewritten from the catalog for the tables the caller
    names, so Trino sees what Athena would see in Glue at that moment.
    """

    catalog: Catalog
    lake: Lake
    url: str = Field(description="The Trino server, http://host:port.")
    metastore_dir: str = Field(description="The server's file metastore folder (hive.metastore.catalog.dir).")
    writer_version: str = Field(description="The server's version, which its file metastore requires of every record.")

    def query(self, sql: str, tables: Tables) -> pa.Table:
        """The statement's result; the tables' days are not needed: Trino prunes partitions on the
        statement's `day IN`."""
        write_metastore(Path(self.metastore_dir), self.catalog, self.lake, sorted(tables), self.writer_version)
        columns, rows = run_statement(self.url, sql, "hive", self.catalog.database, source=ENGINE_SOURCE)
        arrays = [arrow_column(c["type"], [r[i] for r in rows]) for i, c in enumerate(columns)]
        return pa.Table.from_arrays(arrays, names=[c["name"] for c in columns])


def on_trino(defs: Definitions, server: TrinoServer) -> Definitions:
    """The same definitions, their `query` resource answered by Trino."""
    resources = dict(defs.resources)
    resources["query"] = TrinoQuery(catalog=resources["catalog"], lake=resources["lake"], url=server.url,
                                          metastore_dir=str(server.metastore), writer_version=server.version)
    return Definitions(assets=defs.assets, asset_checks=defs.asset_checks, resources=resources)


def as_delivered(columns: list[dict], row: list) -> dict:
    """A Trino result row as a dict of the columns a raw line holds: a struct as a dict of its members."""
    found = {}
    for column, value in zip(columns, row):
        if column["type"].startswith("row(") and value is not None:
            members = [m.strip().split(" ")[0] for m in column["type"][len("row("):-1].split(",")]
            value = dict(zip(members, value)) if isinstance(value, list) else value
        found[column["name"]] = value
    return found


def canonical(rows: list[dict], keep: set[str] | None = None) -> list[str]:
    """Rows as sorted JSON texts (a multiset), null struct members and columns outside `keep` dropped."""
    def clean(row: dict) -> dict:
        return {k: ({m: x for m, x in v.items() if x is not None} if isinstance(v, dict) else v)
                for k, v in row.items() if keep is None or k in keep}
    return sorted(json.dumps(clean(r), sort_keys=True) for r in rows)
