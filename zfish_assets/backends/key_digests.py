"""Which days can hold a repeated key, from the key digests the job keeps beside the table.

A key of the run's days repeated anywhere in the table repeats its hash there too, so the days
whose digests share a hash with the run's are the only days where a duplicate can be: the check
reads image_ids of those days alone (none, nearly always), and counts them exactly there (hash
collisions only add days to read). A day is taken from its digest only when the digest names the
day's current files (`glue_scripts/zfish_etl/table_keys.py`); any other day's keys are read from
its files and hashed here, so a missing or stale digest changes what is read, never the answer.
Reading and hashing a day's image_ids costs about twice reading them (DuckDB's MD5), and the plain
scan reads every day once and joins: when days without a digest hold more than
`MAX_UNDIGESTED_SHARE` of the table's bytes, `repeated_key_days` says so (None) and the check scans.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


from glue_scripts.zfish_etl.table_keys import FILES_PARTITION, fingerprint, key_hash_sql, keys_root
from zfish_assets.backends.hudi_reader import filesystem_of, base_files_by_day, snapshot_dataset
from zfish_assets.backends.sql import sql_string
from zfish_assets.lazy import lazy_module

duckdb = lazy_module("duckdb")
np = lazy_module("numpy")
pa = lazy_module("pyarrow")
ds = lazy_module("pyarrow.dataset")
pafs = lazy_module("pyarrow.fs")
pq = lazy_module("pyarrow.parquet")

MAX_UNDIGESTED_SHARE = 0.5
def digest_schema() -> pa.Schema:
    """The digests' hive partitioning: `day=D/files=F`."""
    return pa.schema([("day", pa.string()), (FILES_PARTITION, pa.string())])


@dataclass(frozen=True)
class RepeatedKeys:
    """The days to read image_ids of, and how the table's days were compared."""

    days: list[str]  # days holding a hash that a key of the run's days shares with another row
    from_digests: int  # days compared through their digest
    from_table: list[str]  # days whose keys were read from the table (no digest of their current files)


def stored_digests(filesystem: pafs.FileSystem, root: str) -> dict[tuple[str, str], list[str]]:
    """(day, fingerprint) -> the digest's Parquet files, as listed under the keys folder `root`."""
    found: dict[tuple[str, str], list[str]] = {}
    for info in filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True, recursive=True)):
        parts = info.path[len(root):].strip("/").split("/")
        if (info.type == pafs.FileType.File and len(parts) == 3 and parts[2].endswith(".parquet")
                and not parts[2].startswith((".", "_")) and parts[0].startswith("day=")
                and parts[1].startswith(f"{FILES_PARTITION}=")):
            found.setdefault((parts[0][len("day="):], parts[1][len(FILES_PARTITION) + 1:]), []).append(info.path)
    return found


def _digest_view(con: duckdb.DuckDBPyConnection, filesystem: pafs.FileSystem, root: str, files: list[str]) -> str:
    """SQL over the digests' (day, key_hash) rows: DuckDB's own reader for local files, Arrow's elsewhere."""
    if not files:
        return "SELECT CAST(NULL AS VARCHAR) AS day, CAST(NULL AS BIGINT) AS key_hash WHERE false"
    if isinstance(filesystem, pafs.LocalFileSystem):
        listed = ", ".join(sql_string(f) for f in files)
        return (f"SELECT day, key_hash FROM read_parquet([{listed}], hive_partitioning=true, "
                f"hive_types={{'day': 'VARCHAR', '{FILES_PARTITION}': 'VARCHAR'}})")
    con.register("__digests", ds.dataset(files, filesystem=filesystem, format="parquet", partition_base_dir=root,
                                         partitioning=ds.partitioning(digest_schema(), flavor="hive")))
    return "SELECT day, key_hash FROM __digests"


def _repeated_hashes(con: duckdb.DuckDBPyConnection, days: Sequence[str] | None) -> pa.Table:
    """The hashes of the `keys` view's rows of `days` (every day when None) that occur more than once in it.

    Of every day: sorted in numpy, neighbours compared (DuckDB's GROUP BY of 10^7 distinct hashes
    took 2-4 s, the sort 1 s). Of some days: their hashes' rows, a semi join, grouped.
    """
    if days is None:
        hashes = np.sort(con.sql("SELECT key_hash FROM keys").to_arrow_table().column(0).to_numpy())
        return pa.table({"key_hash": np.unique(hashes[1:][hashes[1:] == hashes[:-1]])})
    of_days = ", ".join(sql_string(d) for d in days) or "NULL"
    return con.sql(f"SELECT key_hash FROM keys WHERE key_hash IN (SELECT key_hash FROM keys WHERE day IN ({of_days})) "
                   "GROUP BY key_hash HAVING count(*) > 1").to_arrow_table()


def repeated_key_days(table_uri: str, storage_options: Mapping[str, str], days: Sequence[str] | None) -> RepeatedKeys | None:
    """The days where a key of `days` (every day when None) may occur more than once in the table.

    Days without a digest of their current files are read from those files (their image_id
    column, in process, whichever engine answers the checks' SQL: Athena would page every key
    back). None when those hold more than `MAX_UNDIGESTED_SHARE` of the table's bytes (scan instead).
    """
    filesystem, root = filesystem_of(keys_root(table_uri), storage_options)
    return compare_keys(base_files_by_day(table_uri, storage_options), filesystem, root, days,
                        lambda undigested: snapshot_dataset(table_uri, storage_options, undigested))


def compare_keys(current: Mapping[str, list[tuple[str, int]]], filesystem: pafs.FileSystem, root: str,
                 days: Sequence[str] | None,
                 read_keys: Callable[[list[str]], pa.Table | ds.Dataset]) -> RepeatedKeys | None:
    """`repeated_key_days` given the table's current files by day ((name, bytes) each), where its
    digests are, and how to read the (day, image_id) rows of the days without one."""
    digests = stored_digests(filesystem, root)
    try:
        return _compare(current, digests, filesystem, root, days, read_keys)
    except (duckdb.Error, pa.ArrowException):
        # A digest that cannot be read (cut short by a copy, edited) is as good as missing: its day is read from
        # the table. Looked for only when a read failed: on S3 each look is a request.
        unreadable = {f for found in digests.values() for f in found if not _readable(filesystem, f)}
        if not unreadable:
            raise
        kept = {where: found for where, found in digests.items() if not unreadable & set(found)}
        return _compare(current, kept, filesystem, root, days, read_keys)


def _readable(filesystem: pafs.FileSystem, path: str) -> bool:
    """Whether a digest file is Parquet whose footer can be read."""
    try:
        with filesystem.open_input_file(path) as handle:
            pq.read_metadata(handle)
        return True
    except (OSError, pa.ArrowException):
        return False


def _compare(current: Mapping[str, list[tuple[str, int]]], digests: Mapping[tuple[str, str], list[str]],
             filesystem: pafs.FileSystem, root: str, days: Sequence[str] | None,
             read_keys: Callable[[list[str]], pa.Table | ds.Dataset]) -> RepeatedKeys | None:
    """`compare_keys` with the digests to use."""
    covered = {day: digests.get((day, fingerprint(n for n, _ in files))) for day, files in current.items()}
    undigested = sorted(day for day, found in covered.items() if found is None)
    size = {day: sum(b for _, b in files) for day, files in current.items()}
    if sum(size[d] for d in undigested) > MAX_UNDIGESTED_SHARE * sum(size.values()):
        return None
    con = duckdb.connect()
    try:
        views = [_digest_view(con, filesystem, root, sorted(f for found in covered.values() if found for f in found))]
        if undigested:
            con.register("__read_keys", read_keys(undigested))
            views.append(f"SELECT day, {key_hash_sql('image_id')} AS key_hash FROM __read_keys "
                         "WHERE image_id IS NOT NULL")
        con.execute(f"CREATE VIEW keys AS {' UNION ALL '.join(views)}")
        con.register("__repeated", _repeated_hashes(con, days))
        found = con.sql("SELECT DISTINCT day FROM keys WHERE key_hash IN (SELECT key_hash FROM __repeated) "
                        "ORDER BY day").fetchall()
    finally:
        con.close()
    return RepeatedKeys(days=[d for d, in found], from_digests=len(current) - len(undigested), from_table=undigested)
