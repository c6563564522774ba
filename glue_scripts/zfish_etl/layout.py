"""The lake's layout: every folder and key zfish keeps in the lake, spelled here once for both sides.

Keys are relative to the lake prefix (`<bucket>/<prefix>/` on S3, `$ZFISH_DATA_DIR/lake/<prefix>/`
locally); folders "beside a table" take the table's own path (any URI scheme) and add a suffix.

    <table>/day=D/...                               a raw day (the walkthrough's layout, untouched)
    quarantine/<table>/day=D/quarantine.jsonl       the day's quarantine ledger
    processed/<table>                               a Hudi table the join writes
    ml/training_set/commit=I/config=C/...           a training set's export
    _zfish/accepted/<table>/day=D/<digest>/...      the crawl's accepted rows (accepted.py)
    _zfish/landing/<table>/day=D.json | day=D/...   an S3 landing's marker and its copy (landing.py)
    _zfish/keys/<table>/day=D.jsonl                 the keys a crawled day delivered
    _zfish/keys/<table>.lease                       held by each crawl of the table (one at a time)
    _zfish/news/<table>/<first>..<last>.json        what a window's last join read
    _zfish/pipes/...                                each Glue run's Dagster Pipes context
    _zfish/glue/sha256/<digest>/<file>              the job's code, content-addressed
    _zfish/athena-results/                          Athena's results (unless ZFISH_ATHENA_OUTPUT)
    <table path>.lease | .keys/v1/ | .fish/v1/      beside a table: its writer's lease, key digests, fish index

zfish's own folder starts with `_`: Glue crawlers and Hive-style readers skip such paths, and Hudi
keeps commit-metadata keys with that prefix (`LABEL_STATE_KEY`). Every name is read through a
function at call time, so the policies, the deploy and both runtimes follow a change made here.
"""

from __future__ import annotations

OWN = "_zfish"  # zfish's own folder under the lake prefix: never a table, never crawled
PROCESSED = "processed"
QUARANTINE = "quarantine"
EXPORTS = "ml/training_set"


def own(folder: str = "") -> str:
    """A folder of zfish's own under the lake prefix (no trailing `/`)."""
    return f"{OWN}/{folder}" if folder else OWN


def accepted_dir() -> str:
    """The crawl's accepted rows, where the catalog's partitions point."""
    return own("accepted")


def landing_dir() -> str:
    """An S3 landing's markers and the copies of the days it replaces."""
    return own("landing")


def keys_dir() -> str:
    """The keys each crawled day delivered (the crawl's duplicate check across days)."""
    return own("keys")


def news_dir() -> str:
    """What each join window's last successful run read."""
    return own("news")


def pipes_dir() -> str:
    """Each Glue run's Dagster Pipes context: put by the runner, read by the job."""
    return own("pipes")


def code_dir() -> str:
    """The job's code, content-addressed: written by the deployer only."""
    return own("glue")


def athena_results_dir() -> str:
    """Athena's query results, when no other location is configured."""
    return own("athena-results")


def label_state_key() -> str:
    """The Hudi commit-metadata key of the label state (`_`: Hudi's commit-metadata key prefix,
    `hoodie.datasource.write.commitmeta.key.prefix`)."""
    return f"{OWN}.label_state"


def processed(table: str) -> str:
    """The folder of a Hudi table the join writes."""
    return f"{PROCESSED}/{table}"


def ledger_key(table: str, day: str) -> str:
    """A day's quarantine ledger (beside the table folders, outside any crawled prefix)."""
    return f"{QUARANTINE}/{table}/day={day}/quarantine.jsonl"


def day_keys_key(table: str, day: str) -> str:
    """The keys a crawled day delivered, one JSON value a line."""
    return f"{keys_dir()}/{table}/day={day}.jsonl"


def crawl_lease_key(table: str) -> str:
    """The lease each crawl of `table` holds: crawls of one table take turns (beside its keys files, which
    every crawl reads and writes, so no other right is needed)."""
    return f"{keys_dir()}/{table}{LEASE_SUFFIX}"


def news_key(table: str, window: str) -> str:
    """The record of what the last successful run of `window` (`<first>..<last>`) read."""
    return f"{news_dir()}/{table}/{window}.json"


def landing_table_dir(table: str) -> str:
    """The folder of a table's landing markers."""
    return f"{landing_dir()}/{table}"


def marker_key(table: str, day: str) -> str:
    """The marker of a day being replaced."""
    return f"{landing_table_dir(table)}/day={day}.json"


def staging_prefix(table: str, day: str) -> str:
    """The folder (trailing `/`) of a landing's copies of the previous day."""
    return f"{landing_table_dir(table)}/day={day}/"


def accepted_day(table: str, day: str) -> str:
    """The folder (no trailing `/`) of a day's accepted versions."""
    return f"{accepted_dir()}/{table}/day={day}"


def code_key(code_prefix: str, sha256: str, name: str) -> str:
    """One file of the job's code under `code_prefix` (the lake prefix's `code_dir()`), by its digest."""
    return f"{code_prefix}/sha256/{sha256}/{name}"


def export_folder(instant: str, digest: str) -> str:
    """A training set's export, versioned by the table's commit and the export's configuration."""
    return f"{EXPORTS}/commit={instant}/config={digest}"


LEASE_SUFFIX = ".lease"


def lease_path(table_path: str) -> str:
    """The lease of the table at `table_path`, beside it."""
    return table_path.rstrip("/") + LEASE_SUFFIX


def table_keys_root(table_path: str, version: str) -> str:
    """The key digests of the table at `table_path`, beside it (a new version gets a new folder)."""
    return f"{table_path.rstrip('/')}.keys/{version}"


def fish_index_root(table_path: str, version: str) -> str:
    """The fish index of the table at `table_path`, beside it (a new version gets a new folder)."""
    return f"{table_path.rstrip('/')}.fish/{version}"
