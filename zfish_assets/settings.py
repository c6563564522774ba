"""Every `ZFISH_*` setting in one place, each with its local default.

Settings are read from the environment when asked for (not at import), so a test or the demo can
set them before building resources. Dagster resources take the same values through `EnvVar`.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timezone
from pathlib import Path

from glue_scripts.zfish_etl.modes import JOIN_MODES
from zfish_assets.runtimes import default_jars_dir

REPO_ROOT = Path(__file__).resolve().parent.parent


def env(name: str, default: str) -> str:
    """The value of `name`, or `default` when unset or empty."""
    value = os.environ.get(name, "")
    return value if value.strip() else default


def data_dir() -> Path:
    """`ZFISH_DATA_DIR`: everything a local run writes (lake, catalog, Dagster home)."""
    return Path(env("ZFISH_DATA_DIR", "./.zfish")).expanduser().resolve()


def jars_dir() -> Path:
    """`ZFISH_JARS_DIR`: the Maven-fetched jars Spark loads (filled by `bin/fetch-jars`); by default
    `.cache/jars`, or `.cache/jars-glue5.1` under `ZFISH_GLUE_VERSION=5.1` (its own Hudi bundle)."""
    return Path(env("ZFISH_JARS_DIR", str(default_jars_dir(REPO_ROOT)))).expanduser().resolve()


def sim_start() -> date:
    """`ZFISH_SIM_START`: the first simulated day, and the first partition."""
    return parse_day(env("ZFISH_SIM_START", "2025-04-05"), "ZFISH_SIM_START")


def simulated() -> bool:
    """Whether `ZFISH_CLOCK` sets a simulated "now"."""
    return bool(env("ZFISH_CLOCK", ""))


def clock() -> datetime:
    """`ZFISH_CLOCK`: the simulated "now" (ISO 8601); unset means the real clock (production)."""
    raw = env("ZFISH_CLOCK", "")
    if not raw:
        return datetime.now(timezone.utc)
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"ZFISH_CLOCK={raw!r} is not an ISO 8601 date-time, e.g. 2025-05-10T18:00:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=-]*$")


def lake_prefix() -> str:
    """`ZFISH_LAKE_PREFIX`: the key prefix of the walkthrough's layout inside the lake.

    It reaches paths and S3 keys: plain `/`-separated names only (no `..`, no empty segment).
    """
    raw = env("ZFISH_LAKE_PREFIX", "use-cases/fish-demo")
    prefix = raw.strip("/")
    if not all(_SEGMENT.match(part) and part != ".." for part in prefix.split("/")):
        raise ValueError(f"ZFISH_LAKE_PREFIX={raw!r} is not a key prefix of plain names separated by '/'")
    return prefix


def database() -> str:
    """`ZFISH_DATABASE`: the catalog database holding the three tables; it reaches SQL and paths, so a plain name."""
    name = env("ZFISH_DATABASE", "zebra_fish_demo")
    if not _NAME.match(name):
        raise ValueError(f"ZFISH_DATABASE={name!r} is not a plain name (letters, digits, _; not starting with a digit)")
    return name


def label_horizon_days() -> int:
    """`ZFISH_LABEL_HORIZON_DAYS`: how many days back an evening run reprocesses (the window)."""
    return int(env("ZFISH_LABEL_HORIZON_DAYS", "36"))


def join_mode() -> str:
    """`ZFISH_JOIN_MODE`: how an evening run writes joined_fish_data.

    `incremental` (default) upserts only the rows that changed, so copy-on-write rewrites only the
    partitions with news; `full` re-upserts every labeled row of the window (the walkthrough's way).
    """
    mode = env("ZFISH_JOIN_MODE", "incremental")
    if mode not in JOIN_MODES:
        raise ValueError(f"ZFISH_JOIN_MODE={mode!r} is not one of {', '.join(JOIN_MODES)}")
    return mode


def parse_day(value: str, what: str = "day") -> date:
    """A `YYYY-MM-DD` day, or a ValueError naming `what` and the bad value.

    Days reach paths and SQL, so nothing but a real calendar date in this exact form passes.
    """
    try:
        parsed = date.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise ValueError(f"{what}={value!r} is not a day in YYYY-MM-DD form")
    return parsed
