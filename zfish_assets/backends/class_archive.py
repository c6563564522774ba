"""A cold Spark JVM maps the classes of Spark, Hudi and Parquet from an archive instead of loading them.

A run's own JVM spends most of its first seconds finding, parsing and verifying the classes its
first session, Hudi write and read load. Java 17's class-data sharing (AppCDS) keeps them parsed
and verified in an archive a JVM writes when it exits (`-XX:ArchiveClassesAtExit`) and others map
(`-XX:SharedArchiveFile`). Measured here on a fresh JVM (a session, a first Hudi write, a read and
an upsert): 18.6-19.1 s without the archive, 11.5-13.9 s with it.

The archive is made once per machine and Java, by a JVM that runs the warm engine's evenings of
the job on a throwaway lake, and kept beside Spark's jars: `make jars` makes it (`python -m
zfish_assets.domain.warm_evenings`, at once done when it is there). Its name is a digest of the
Java, pyspark and the session's jars, so another Java or runtime finds none, and a session without one starts as
before; the JVM validates an archive itself and ignores one that does not match, quietly.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
"""The JVM's own notes about the archive (one it skips or ignores) are not the run's business."""


def archive_path(java: str, jars_dir: Path) -> Path:
    """Where the archive for this Java and pyspark is (whether or not it exists). The session's own jars
    (Hudi's bundle, s3a's) need no part in its name: the JVM maps a class of theirs only when its bytes
    are those it archived."""
    import pyspark

    java_file = Path(java).resolve()
    spark_jars = Path(pyspark.__file__).parent / "jars"
    facts = [str(java_file), str(java_file.stat().st_size), pyspark.__version__,
             *sorted(p.name for p in spark_jars.glob("*.jar"))]
    return jars_dir / f"spark-classes-{hashlib.sha256(chr(0).join(facts).encode()).hexdigest()[:16]}.jsa"


def sharing_option(archive: Path) -> str:
    """The driver's JVM option that maps `archive`, or none while it is not made."""
    return f"-XX:SharedArchiveFile={archive} {QUIET}" if archive.is_file() else ""
