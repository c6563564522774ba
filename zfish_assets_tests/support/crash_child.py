"""The child process the crash tests kill (test_reliability_crash.py: the Spark job; test_reliability_landing_crash.py:
a landing or a crawl), held at a crash point.

A crash test must kill the writer at a known phase, not whenever a poller happens to look. So the
child stops itself at the phase and says so, and the parent then kills it with SIGKILL:

- `join`: the production job (`glue_scripts.joined_fish_data.run`, `--catalog file` arguments, the
  session from `get_spark_session`), exactly as the local engine runs it. The only difference is
  the Hadoop filesystem serving `file://` paths: `HoldingLocalFileSystem` below, the local
  filesystem except that creating (or renaming onto) a path matching `$ZFISH_CRASH_HOLD` writes
  the path to `$ZFISH_CRASH_SIGNAL` and never returns. Hudi writes every timeline and data file
  through that filesystem, so the pattern picks the phase: e.g. `<instant>.inflight` holds the
  write with only `.commit.requested` on the timeline. `$ZFISH_CRASH_LOG` lists every file
  created, in order. Nothing in the job, its options or its Hudi settings changes. With
  `$ZFISH_CRASH_GO` the child starts Spark, then waits for that file before running the job.
- `land`: `LocalLake.land_day` with the simulator, then `crawl_day`, as the raw and catalog assets
  do; held inside the landing (files in staging), just before or just after the exchange of the
  staging and day folders (`lake_storage.swap_folders`, wrapped here), between landing
  and registering the partition, or inside the crawl: after it wrote the day's accepted rows, or
  after it registered them and before it removed the version they replace.
- `land-s3`: `S3Lake.land_day` with the simulator against an S3 server, one upload thread so the
  requests come in a fixed order; held before the n-th S3 request of one operation whose key
  matches a pattern (a botocore `before-parameter-build` hook on the lake's own client, which sends the
  request only after the hook returns).

Usage: `python crash_child.py join '<JobArgs as JSON>' <classes dir>`,
`python crash_child.py land '<landing as JSON>'` or `python crash_child.py land-s3 '<landing as JSON>'`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HOLD_FS_CLASS = "zfishcrash.HoldingLocalFileSystem"

HOLD_FS_SOURCE = r"""
package zfishcrash;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.EnumSet;
import java.util.regex.Pattern;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

/** The local filesystem; creating a path that matches $ZFISH_CRASH_HOLD announces it and never returns. */
public class HoldingLocalFileSystem extends LocalFileSystem {
  private static final String HOLD = System.getenv("ZFISH_CRASH_HOLD");
  private static final Pattern PATTERN = HOLD == null || HOLD.isEmpty() ? null : Pattern.compile(HOLD);
  private static final String SIGNAL = System.getenv("ZFISH_CRASH_SIGNAL");
  private static final String LOG = System.getenv("ZFISH_CRASH_LOG");
  private static boolean announced = false;

  private static synchronized void log(String op, Path path) {
    if (LOG == null || LOG.isEmpty()) return;
    try {
      Files.write(Paths.get(LOG), (op + " " + path + "\n").getBytes(StandardCharsets.UTF_8),
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (IOException e) {
      // the log is a diagnostic; the hold is what matters
    }
  }

  private static void maybeHold(String op, Path path) {
    log(op, path);
    if (PATTERN == null || !PATTERN.matcher(path.toString()).find()) return;
    synchronized (HoldingLocalFileSystem.class) {
      if (!announced && SIGNAL != null) {
        try {
          java.nio.file.Path tmp = Paths.get(SIGNAL + ".tmp");
          Files.write(tmp, (op + " " + path).getBytes(StandardCharsets.UTF_8));
          Files.move(tmp, Paths.get(SIGNAL), StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
          throw new RuntimeException(e);
        }
        announced = true;
      }
    }
    while (true) {  // only SIGKILL ends this thread; every other writer reaching a hold point waits too
      try {
        Thread.sleep(60_000L);
      } catch (InterruptedException e) {
        // keep holding
      }
    }
  }

  @Override
  public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize,
      short replication, long blockSize, Progressable progress) throws IOException {
    maybeHold("create", f);
    return super.create(f, permission, overwrite, bufferSize, replication, blockSize, progress);
  }

  @Override
  public FSDataOutputStream createNonRecursive(Path f, FsPermission permission, EnumSet<CreateFlag> flags,
      int bufferSize, short replication, long blockSize, Progressable progress) throws IOException {
    maybeHold("create", f);
    return super.createNonRecursive(f, permission, flags, bufferSize, replication, blockSize, progress);
  }

  @Override
  public boolean rename(Path src, Path dst) throws IOException {
    maybeHold("rename", dst);
    return super.rename(src, dst);
  }
}
"""


def compile_hold_fs(dest: Path) -> Path:
    """Compile HoldingLocalFileSystem against pyspark's Hadoop client into `dest`; the classes folder."""
    import pyspark

    source = dest / "src" / "zfishcrash" / "HoldingLocalFileSystem.java"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(HOLD_FS_SOURCE)
    classes = dest / "classes"
    classpath = str(Path(pyspark.__file__).parent / "jars" / "*")
    import shutil

    javac = shutil.which("javac", path=os.pathsep.join(filter(None, [
        str(Path(os.environ["JAVA_HOME"]) / "bin") if os.environ.get("JAVA_HOME") else "", os.environ.get("PATH", "")])))
    if javac is None:
        raise RuntimeError("the crash tests compile a Hadoop filesystem hook: install a JDK 17 (javac), "
                           "e.g. `apt-get install openjdk-17-jdk-headless`")
    compiled = subprocess.run([javac, "-nowarn", "-d", str(classes), "-cp", classpath, str(source)],
                              capture_output=True, text=True)
    if compiled.returncode != 0:
        raise RuntimeError(f"javac failed on {source}: {compiled.stderr}")
    return classes


def hold(signal: Path, what: str) -> None:
    """Announce `what` to the parent (atomically), then wait for SIGKILL."""
    tmp = signal.with_name(signal.name + ".tmp")
    tmp.write_text(what)
    os.replace(tmp, signal)
    while True:
        time.sleep(60)


def join(job_args: dict[str, str], classes: str) -> None:
    from glue_scripts.joined_fish_data import JobArgs, run
    from zfish_assets.backends.spark_session import SparkSettings, get_spark_session

    conf = (("spark.driver.extraClassPath", classes), ("spark.hadoop.fs.file.impl", HOLD_FS_CLASS))
    spark = get_spark_session(SparkSettings(extra_conf=conf))
    go = os.environ.get("ZFISH_CRASH_GO")
    while go and not Path(go).exists():  # started early so the JVM warms up while the parent prepares the table
        time.sleep(0.1)
    result = run(spark, JobArgs(**job_args))
    print("ZFISH_RESULT " + json.dumps({"commit_instant": result.commit_instant, "rows": result.rows_upserted}))


def land(spec: dict[str, str]) -> None:
    from zfish_assets.domain.crawl import crawl_day
    from zfish_assets.resources.data_catalog import LocalCatalog
    from zfish_assets.resources.lake import LocalLake
    from zfish_assets.resources.simulator import SimulatorResource

    lake, catalog = LocalLake(root=spec["lake_root"]), LocalCatalog(root=spec["catalog_root"])
    signal, crash = Path(spec["signal"]), spec["crash"]

    def write(folder: Path) -> None:
        SimulatorResource(**spec["simulator"]).write_day(spec["table"], spec["day"], folder)
        if crash == "mid-landing":
            hold(signal, f"landing {folder}")

    import zfish_assets.resources.lake_storage as lake_module  # where a landing's exchange calls it

    swap = lake_module.swap_folders

    def held_swap(a: Path, b: Path) -> None:
        if crash == "before-swap":
            hold(signal, f"about to exchange {a} and {b}")
        swap(a, b)
        if crash == "after-swap":
            hold(signal, f"exchanged {a} and {b}")

    lake_module.swap_folders = held_swap
    hold_crawl(spec, signal, crash)
    lake.land_day(spec["table"], spec["day"], write)
    if crash == "before-registering":
        hold(signal, f"landed {lake.day_uri(spec['table'], spec['day'])}")
    crawl_day(lake, catalog, spec["table"], spec["day"])


def hold_crawl(spec: dict, signal: Path, crash: str) -> None:
    """Hold the crawl after it wrote the day's accepted rows (`crawl-before-registering`), or after it
    registered them and before it removes the versions they replace (`crawl-before-cleanup`)."""
    import zfish_assets.domain.crawl as crawl_module

    write_accepted, remove_superseded = crawl_module.write_accepted, crawl_module.remove_superseded

    def held_write(*args, **kwargs):
        location = write_accepted(*args, **kwargs)
        if crash == "crawl-before-registering":
            hold(signal, f"wrote {location}")
        return location

    def held_remove(lake, table, day, registered):
        if crash == "crawl-before-cleanup":
            hold(signal, f"registered {registered}")
        remove_superseded(lake, table, day, registered)

    crawl_module.write_accepted, crawl_module.remove_superseded = held_write, held_remove


def land_s3(spec: dict) -> None:
    """Land the simulator's day on S3, held before the `nth` request `operation` whose key matches `key`."""
    import re

    from zfish_assets.resources.aws_connection import AWSConnection
    from zfish_assets.resources.lake import S3Lake
    from zfish_assets.resources.simulator import SimulatorResource

    lake = S3Lake(bucket=spec["bucket"], prefix=spec["prefix"], cache_dir=spec["cache_dir"], upload_threads=1,
                  aws=AWSConnection(region_name=spec["region"], endpoint_url=spec["endpoint_url"]))
    operation, pattern, nth = spec["operation"], re.compile(spec["key"]), int(spec["nth"])
    seen = []

    def before_call(params: dict, **_: object) -> None:
        keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])] or [params.get("Key", "")]
        if any(pattern.search(k) for k in keys):
            seen.append(keys)
            if len(seen) == nth:
                hold(Path(spec["signal"]), f"{operation} {keys[0]}")

    lake.client().meta.events.register(f"before-parameter-build.s3.{operation}", before_call)
    lake.land_day(spec["table"], spec["day"],
                  lambda folder: SimulatorResource(**spec["simulator"]).write_day(spec["table"], spec["day"], folder))
    raise SystemExit(f"landed without reaching {operation} #{nth} matching {spec['key']} (saw {len(seen)})")


if __name__ == "__main__":
    if sys.argv[1] == "join":
        join(json.loads(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "land":
        land(json.loads(sys.argv[2]))
    elif sys.argv[1] == "land-s3":
        land_s3(json.loads(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}: join, land or land-s3")
