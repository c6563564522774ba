"""Names both sides share (the job and the Dagster code), Spark-free: the tables, Hudi's meta columns, and
the parameters the crawl records on a catalog partition."""

from __future__ import annotations

RAW_TABLES = ("observations", "outcomes")  # their contracts: contract.OBSERVATIONS, contract.OUTCOMES
JOINED = "joined_fish_data"

# The columns Hudi adds to every row it writes (not data: left out of reads, schemas and exports).
COMMIT_TIME, FILE_NAME = "_hoodie_commit_time", "_hoodie_file_name"
META_COLUMNS = (COMMIT_TIME, "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path", FILE_NAME)

# Parameters the crawl records on each catalog partition, beside Glue's `recordCount`.
FINGERPRINT = "zfish.fingerprint"  # the day's files when crawled (names, sizes, versions)
DATA_FINGERPRINT = "zfish.fingerprint.data"  # its data files only, as the job lists them (`accepted.data_fingerprint`)
QUARANTINED_ROWS = "zfish.quarantinedRows"
KEYS_DIGEST = "zfish.keysDigest"  # the keys file the crawl wrote (`quarantine.keys_digest`): a re-judging killed
# after writing it and before registering leaves the two apart, which the next crawl finds and finishes
