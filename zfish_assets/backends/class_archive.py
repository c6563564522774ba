"""A cold Spark JVM maps the classes of Spark, Hudi and Parquet from an archive instead of loading them.

A run's own JVM spends most of its first seconds finding, parsing and verifying the classes its
first session, Hudi write and read load. Java 17's class-data sharing (AppCDS) keeps them parsed
and verified in an archive a JVM writes when it exits (`-XX:ArchiveClassesAtExit`) and others map
(`-XX:SharedArchiveFile`). Measured here on a fresh JVM (a session, a first Hudi write, a read and
an upsert): 18.6-19.1 s without the archive, 11.5-13.9 s with it.

The archive is made once per machine and Java, by a JVM that runs the warm engine's two evenings
of the job's own steps (`warm_up.run_evenings`), and kept beside Spark's jars: `make jars` (this
module's `main`) makes it, at once done when it is there. Its name is a digest of the Java, pyspark
and the session's jars, so another Java or runtime finds none, and a session without one starts as
before; the JVM validates an archive itself and ignores one that does not match, quietly.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
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


def make_archive(timeout_s: float = 600) -> Path | None:
    """The archive for this machine's Spark settings, made if missing (a JVM running `run_evenings`,
    in a process of its own: the JVM writes the archive as it exits). None when Spark cannot start."""
    from zfish_assets.backends.spark_session import SparkSettings, jdk_tool

    spark_settings = SparkSettings.from_env()
    java = jdk_tool("java")
    if java is None:
        return None
    target = archive_path(java, spark_settings.jars_dir)
    if target.is_file():
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    subprocess.run([sys.executable, "-m", "zfish_assets.backends.class_archive", "--dump", str(partial)], check=True, timeout=timeout_s)
    partial.replace(target)  # whole or not at all: a reader never maps a half-written archive
    return target


def _dump(partial: Path) -> None:
    """In a process of its own: a session whose JVM archives its classes into `partial` at exit, the two
    evenings on it, then the JVM stopped and waited for (it writes the archive as it exits)."""
    from zfish_assets.backends.spark_session import SparkSettings, get_spark_session
    from zfish_assets.backends.warm_up import run_evenings

    spark = get_spark_session(SparkSettings(master="local[2]", archive_classes_to=partial))
    run_evenings(spark, Path(tempfile.mkdtemp(prefix="zfish-classes-")))
    gateway = spark.sparkContext._gateway
    spark.stop()
    gateway.proc.stdin.close()  # PySpark's gateway JVM exits when its stdin closes
    gateway.proc.wait()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--dump"]:
        _dump(Path(argv[1]))
        return
    try:
        made = make_archive()
    except (subprocess.SubprocessError, OSError) as exc:  # an archive only speeds a start: never blocks one
        print(f"Spark's class archive not made ({exc}): sessions start without it", file=sys.stderr)
        return
    print(f"Spark's class archive: {made}" if made else "Spark's class archive: no Java, none made")


if __name__ == "__main__":
    main()
