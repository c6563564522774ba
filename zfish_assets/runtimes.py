"""The AWS Glue runtimes zfish runs locally and deploys to; `ZFISH_GLUE_VERSION` picks one.

Glue 5.0 (the default) is Spark 3.5.4 with Hudi 0.15.0; Glue 5.1 is Spark 3.5.6 with Hudi 1.0.2.
Both are Scala 2.12, Java 17, Python 3.11 and Hadoop 3.3.4 (so the same s3a jars). Each runtime
has its own virtualenv (pyspark differs) and jar folder (the Hudi bundle differs); both write Hudi
table version 6, which Athena and hudi-rs 0.5 read (`glue_scripts/zfish_etl/hudi.py`).

Every version fact is named here once. Run as a script (standard library only) it prints one for
the Makefile and `bin/fetch-jars`: `python3 zfish_assets/runtimes.py pyspark 5.1`. It imports nothing of
zfish: `settings` reads `ZFISH_GLUE_VERSION` and gives the configured runtime (`settings.glue_runtime()`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

GlueVersion = Literal["5.0", "5.1"]
VARIABLE = "ZFISH_GLUE_VERSION"  # read by settings.GLUE_VERSION; named here for errors
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

    @property
    def hudi_coordinate(self) -> str:
        return f"org.apache.hudi:hudi-spark3.5-bundle_2.12:{self.hudi}"

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
        return (self.hudi_coordinate, *S3A_COORDINATES, *([self.connect_coordinate] if self.warm_engine else []))

    @property
    def suffix(self) -> str:
        """What tells this runtime's virtualenv and jar folder from the default's (`''` for the default)."""
        return "" if self.glue_version == DEFAULT else f"-glue{self.glue_version}"


RUNTIMES: dict[GlueVersion, GlueRuntime] = {
    "5.0": GlueRuntime("5.0", pyspark="3.5.4", hudi="0.15.0"),
    "5.1": GlueRuntime("5.1", pyspark="3.5.6", hudi="1.0.2", warm_engine=False),
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
    """`.cache/jars` for Glue 5.0, `.cache/jars-glue5.1` for 5.1: the bundles differ."""
    return repo_root / ".cache" / f"jars{runtime(version).suffix}"


def _main(argv: list[str]) -> int:
    facts = {
        "pyspark": lambda r: r.pyspark,
        "jars": lambda r: "\n".join(r.jars),
        "suffix": lambda r: r.suffix,
        "glue": lambda r: r.glue_version,
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
