"""The AWS Glue runtimes zfish runs locally and deploys to; `ZFISH_GLUE_VERSION` picks one.

Glue 5.0 (the default) is Spark 3.5.4 with Hudi 0.15.0; Glue 5.1 is Spark 3.5.6 with Hudi 1.0.2.
Both are Scala 2.12, Java 17, Python 3.11 and Hadoop 3.3.4 (so the same s3a jars). Each runtime
has its own virtualenv (pyspark differs) and jar folder (the Hudi bundle differs); both write Hudi
table version 6, which Athena and hudi-rs 0.5 read (`glue_scripts/zfish_etl/hudi.py`).

Glue 6.0 is Spark 4.1.1, Scala 2.13, Java 17, Python 3.13 with Hudi 1.1.1: zfish deploys it, but
does not run it locally (`local=False`). Maven Central serves no Hudi bundle for Spark 4, and
zfish's Dagster side runs on Python 3.11; `make test-glue6` runs the job's Spark-only code on
pyspark 4.1.1 under Python 3.13 instead (`glue_scripts_tests/`).

Every version fact is named here once. Run as a script (standard library only) it prints one for
the Makefile and `bin/fetch-jars`: `python3 zfish_assets/runtimes.py pyspark 5.1`. It imports nothing of
zfish: `settings` reads `ZFISH_GLUE_VERSION` and gives the configured runtime (`settings.glue_runtime()`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

GlueVersion = Literal["5.0", "5.1", "6.0"]
VARIABLE = "ZFISH_GLUE_VERSION"  # read by settings.GLUE_VERSION; named here for this script's errors
DEFAULT: GlueVersion = "5.0"
S3A_COORDINATES = ("org.apache.hadoop:hadoop-aws:3.3.4", "com.amazonaws:aws-java-sdk-bundle:1.12.262")
"""s3a for the Hadoop 3.3.4 client both pyspark wheels bundle."""


@dataclass(frozen=True)
class GlueRuntime:
    glue_version: str
    pyspark: str
    hudi: str
    warm_engine: bool = True
    """Whether Spark Connect's server jar of this Spark resolves from Maven Central here (3.5.6's does not)."""
    local: bool = True
    """Whether zfish runs this runtime's Spark and Hudi locally: its Hudi bundle resolves from Maven
    Central here and its Python is the Dagster side's (3.11). Otherwise it is deployed only."""
    python: str = "3.11"
    scala: str = "2.12"
    hudi_spark: str = "3.5"
    """The Spark line in the name of the Hudi bundle built for this Spark."""

    @property
    def hudi_coordinate(self) -> str:
        return f"org.apache.hudi:hudi-spark{self.hudi_spark}-bundle_{self.scala}:{self.hudi}"

    def require_local(self) -> None:
        """A ValueError saying why and what to do instead, when this runtime does not run locally."""
        if not self.local:
            raise ValueError(
                f"Glue {self.glue_version} (Spark {self.pyspark}, Python {self.python}, Hudi {self.hudi}) is deployed, "
                f"not run locally: Maven Central serves no {self.hudi_coordinate}, and zfish's Dagster side runs on "
                f"Python 3.11. Run Spark locally with ZFISH_GLUE_VERSION=5.0 or 5.1; `make test-glue6` tests the "
                f"job's Spark-only code on Spark {self.pyspark}.")

    @property
    def connect_coordinate(self) -> str:
        """Spark Connect's server, for the warm local engine (not in the pyspark wheel)."""
        if not self.warm_engine:
            raise ValueError(f"the warm engine (Spark Connect) runs on Glue 5.0's Spark only: the "
                             f"spark-connect_2.12:{self.pyspark} server jar does not resolve; use GLUE=5.0")
        return f"org.apache.spark:spark-connect_2.12:{self.pyspark}"

    @property
    def jars(self) -> tuple[str, ...]:
        """Maven coordinates of the jars `bin/fetch-jars` fetches: the Hudi bundle and s3a, which a
        local session loads, and Spark Connect's server, which the warm engine adds."""
        self.require_local()
        return (self.hudi_coordinate, *S3A_COORDINATES, *([self.connect_coordinate] if self.warm_engine else []))

    @property
    def suffix(self) -> str:
        """What tells this runtime's virtualenv and jar folder from the default's (`''` for the default)."""
        return "" if self.glue_version == DEFAULT else f"-glue{self.glue_version}"


RUNTIMES: dict[GlueVersion, GlueRuntime] = {
    "5.0": GlueRuntime("5.0", pyspark="3.5.4", hudi="0.15.0"),
    "5.1": GlueRuntime("5.1", pyspark="3.5.6", hudi="1.0.2", warm_engine=False),
    "6.0": GlueRuntime("6.0", pyspark="4.1.1", hudi="1.1.1", warm_engine=False, local=False,
                       python="3.13", scala="2.13", hudi_spark="4.0"),
}


def jar_name(coordinate: str) -> str:
    """The file Maven's `dependency:copy` writes for `group:artifact:version`."""
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def runtime(version: str) -> GlueRuntime:
    """The runtime of `version`, or a ValueError naming a bad one. The configured runtime is
    `settings.glue_runtime()`: this module imports nothing of zfish (it runs as a stdlib-only script, and
    settings imports it)."""
    if version not in RUNTIMES:
        raise ValueError(f"{VARIABLE}={version!r} is not one of {', '.join(get_args(GlueVersion))}")
    return RUNTIMES[version]


def default_jars_dir(repo_root: Path, version: str) -> Path:
    """`.cache/jars` for Glue 5.0, `.cache/jars-glue5.1` for 5.1: the bundles differ (6.0 has none: not local)."""
    return repo_root / ".cache" / f"jars{runtime(version).suffix}"


def _main(argv: list[str]) -> int:
    facts = {
        "pyspark": lambda r: r.pyspark,
        "jars": lambda r: "\n".join(r.jars),
        "suffix": lambda r: r.suffix,
        "glue": lambda r: r.glue_version,
        "local": lambda r: str(r.local).lower(),
        "python": lambda r: r.python,
    }
    if len(argv) not in (1, 2) or argv[0] not in facts:
        print(f"usage: runtimes.py {{{','.join(facts)}}} [GLUE_VERSION (default {DEFAULT})]", file=sys.stderr)
        return 2
    try:
        print(facts[argv[0]](runtime(argv[1] if len(argv) == 2 else DEFAULT)))
    except ValueError as exc:
        print(f"zfish: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
