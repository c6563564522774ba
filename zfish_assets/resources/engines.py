"""Engines: where the Glue job's code runs for a range of days. Local Spark here, a Glue job on AWS.

The Hudi IO manager hands an engine the job's arguments and gets the job's result back; it never
knows which engine ran.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import replace

from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

from glue_scripts.joined_fish_data import JobArgs, JobResult, run
from zfish_assets import settings
from zfish_assets.resources.spark import SparkSettings, get_spark_session


class Engine(ConfigurableResource, ABC):
    """Runs the joined_fish_data job for a window and reports what it wrote."""

    @abstractmethod
    def run_job(self, args: JobArgs) -> JobResult:
        """Run the job to completion; raise with the engine's own error when it fails."""


class LocalSparkEngine(Engine):
    """The job's code in this process on the shared Spark session (`local[2]` by default)."""

    master: str = Field(
        default_factory=lambda: settings.env("ZFISH_SPARK_MASTER", "local[2]"),
        description="Spark master: local[N] or a cluster URL.",
    )

    def run_job(self, args: JobArgs) -> JobResult:
        log = get_dagster_logger()
        started = time.monotonic()
        spark = get_spark_session(replace(SparkSettings.from_env(), master=self.master))
        log.info(f"Spark session ready in {time.monotonic() - started:.1f}s ({self.master})")
        started = time.monotonic()
        result = run(spark, args)
        log.info(
            f"job {args.first_day}..{args.last_day}: {result.observations_read} observations read, "
            f"{result.rows_upserted} labeled rows upserted in {time.monotonic() - started:.1f}s, "
            f"commit {result.commit_instant or 'none (nothing to write)'}"
        )
        return result
