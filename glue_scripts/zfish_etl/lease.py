"""One writer of a table at a time, whoever starts the job: a lease in the lake beside the table.

Every writer of joined_fish_data runs `joined_fish_data.run` (the CLI's and the daemon's runs, the
demo, the tests, the warm engine's client, a Glue job), and `run` holds this lease from before it
reads the table until its last commit and key digests are written. The run queue's `hudi_writer`
pool serializes only the runs the daemon launches; two `dagster asset materialize` of one data dir
met inside Hudi instead, the second rolling back the first's inflight commit
(`IllegalArgumentException: File .../<instant>.commit.requested does not exist!`).

Why zfish's own lease and not Hudi's optimistic concurrency control: Hudi's lock is held only
around each commit's conflict check, while a run reads the table, computes what changed and then
writes two commits that must see each other's state; OCC also requires the lazy rollback of failed
writes (`hoodie.cleaner.policy.failed.writes=LAZY`), so a killed writer's files would stay until a
heartbeat expires instead of being rolled back by the next run; and no provider Hudi 0.15's Spark
bundle ships serves both a local disk and S3 (`FileSystemBasedLockProvider` needs an atomic create,
which S3 lacks through s3a; DynamoDB's provider is in `hudi-aws`, not the bundle).

- Local disk: an exclusive `flock` on `<table>.lease`, which the kernel releases when its process
  dies, however it dies (a SIGKILLed writer never blocks the next run). The file names the holder.
- S3: the object `<table>.lease`, created with `If-None-Match: *` and replaced with `If-Match`
  (S3's conditional writes: one of two writers wins, never both). It names the holder and an
  expiry that a thread renews; a lease whose holder is on this host and no longer running, or
  whose expiry has passed (a Glue run killed by its timeout), is taken over.

A second writer waits up to `wait_s`, saying whom it waits for, then refuses (`TableBusy`) naming
the holder: its run, host, process and start.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from glue_scripts.zfish_etl import aws, layout
from glue_scripts.zfish_etl.files import local_path, s3_location

LEASE_TTL_S = 120.0
"""How long an S3 lease stays valid unrenewed: how long a writer killed elsewhere (a Glue run) blocks the next."""
RENEW_EVERY_S = 20.0
POLL_S = 0.5
FIRST_POLL_S = 0.02
UNKNOWN_GRACE_S = 2.0
"""How long a writer looks again at a lease that names no holder yet (one being taken or given up) before it says so."""
SUFFIX = layout.LEASE_SUFFIX


class TableBusy(RuntimeError):
    """Another writer holds the table's lease; the message names it."""


class LeaseLost(RuntimeError):
    """This writer's S3 lease was taken over (it could not renew it in time): it must not commit."""


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (Linux `/proc`), which tells a reused pid from the holder; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: enough to find the run and the process, and when the lease lapses (S3 only)."""

    writer: str  # the Dagster run and step that started the job, or "" when run by hand
    host: str
    pid: int
    started: str  # UTC, ISO 8601
    token: str
    process_start: str | None = None
    expires: float | None = None  # epoch seconds
    released: bool = False

    @staticmethod
    def me(writer: str) -> "Holder":
        return Holder(writer or "", socket.gethostname(), os.getpid(),
                      datetime.now(timezone.utc).isoformat(timespec="seconds"), uuid.uuid4().hex,
                      _process_start(os.getpid()))

    @staticmethod
    def parse(text: bytes) -> "Holder | None":
        try:
            return Holder(**json.loads(text))
        except (ValueError, TypeError):
            return None  # being written (local), or not a lease

    def describe(self) -> str:
        run = f"run {self.writer}" if self.writer else "a job started outside Dagster"
        return f"{run} (host {self.host}, pid {self.pid}, holding since {self.started})"

    def is_live(self, now: float) -> bool:
        """Whether the lease still binds: not released, its process running (same host), its expiry ahead."""
        if self.released:
            return False
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
            if self.process_start and _process_start(self.pid) not in (None, self.process_start):
                return False
        return self.expires is None or now < self.expires

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()


class LocalLease:
    """An exclusive `flock` on a local file; the kernel frees it with its process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self, me: Holder) -> Holder | None:
        """None when acquired; else the holder (or an unknown one while it writes its name)."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            with open(self.path, "rb") as handle:
                return Holder.parse(handle.read()) or Holder("(unknown: starting)", "?", 0, "?", "")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, me.to_bytes(), 0)
        except OSError as exc:  # a full disk: name the file, which os.pwrite does not
            os.close(fd)
            raise OSError(exc.errno, f"{exc.strerror}: writing the lease {self.path}", self.path) from exc
        self.fd = fd
        return None

    def check(self) -> None:
        """A held flock cannot be lost."""

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing frees the flock
            self.fd = None


class S3Lease:
    """A lease object on S3, written only with conditional requests, renewed by a thread while held."""

    def __init__(self, bucket: str, key: str, client: Any = None) -> None:
        self.bucket, self.key = bucket, key
        self.client = client or aws.client("s3")
        self.etag: str | None = None
        self.me: Holder | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _put(self, holder: Holder, **condition: str) -> str | None:
        """The new ETag, or None when the condition failed (another writer got there first)."""
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=holder.to_bytes(), **condition)["ETag"]
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                return None
            raise

    def _current(self) -> tuple[Holder | None, str | None]:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None, None
        return Holder.parse(got["Body"].read()), got["ETag"]

    def try_acquire(self, me: Holder) -> Holder | None:
        me = replace(me, expires=time.time() + LEASE_TTL_S)
        etag = self._put(me, IfNoneMatch="*")
        if etag is None:
            holder, current = self._current()
            if current is None:
                return Holder("(unknown: just released)", "?", 0, "?", "")
            if holder is not None and holder.is_live(time.time()):
                return holder
            etag = self._put(me, IfMatch=current)  # released, dead or expired: take it over
            if etag is None:
                return holder or Holder("(unknown)", "?", 0, "?", "")
        self.etag, self.me = etag, me
        self._renewer = threading.Thread(target=self._renew_loop, name="zfish-lease-renewer", daemon=True)
        self._renewer.start()
        return None

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                self._renew()
            except Exception as exc:  # noqa: BLE001 - kept for `check`, which fails the run before a commit
                self.lost = f"renewing the lease failed: {exc}"

    def _renew(self) -> None:
        renewed = replace(self.me, expires=time.time() + LEASE_TTL_S)
        etag = self._put(renewed, IfMatch=self.etag)
        if etag is None:
            holder, _ = self._current()
            self.lost = f"taken over by {holder.describe() if holder else 'another writer'}"
            self._stop.set()
        else:
            self.etag, self.me = etag, renewed

    def check(self) -> None:
        """Raise LeaseLost when the lease lapsed: committing now could overwrite another writer's work."""
        if self.lost or (self.me and time.time() >= self.me.expires):
            raise LeaseLost(f"s3://{self.bucket}/{self.key}: this writer's lease lapsed "
                            f"({self.lost or 'not renewed in time'}): the run stops before its next commit")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.me is not None and not self.lost:
            try:
                self._put(replace(self.me, released=True, expires=time.time()), IfMatch=self.etag)
            except Exception:  # noqa: BLE001 - the run's own outcome matters more; the lease lapses by itself
                pass
        self.me = None


def lease_for(table_path: str) -> LocalLease | S3Lease:
    """The lease of the table at `table_path` (a local path, file:, s3: or s3a: URI): `<table>.lease` beside it."""
    found = s3_location(layout.lease_path(table_path))
    if found is not None:
        return S3Lease(*found)
    return LocalLease(str(local_path(layout.lease_path(table_path))))


@contextmanager
def hold(table_path: str, writer: str = "", wait_s: float = 0.0, log: Callable[[str], None] = print,
         lease: LocalLease | S3Lease | None = None,
         wait_setting: str = "the Hudi IO manager's writer_wait_s") -> Iterator[LocalLease | S3Lease]:
    """Hold the table's lease (or `lease`, another path's, e.g. a day's landing) for the body: wait up to
    `wait_s` for another writer (logging whom), else TableBusy naming `wait_setting`."""
    lease, me = lease or lease_for(table_path), Holder.me(writer)
    started = time.monotonic()
    deadline, said, pause = started + wait_s, None, FIRST_POLL_S
    while (holder := lease.try_acquire(me)) is not None:
        if not holder.token and time.monotonic() < max(deadline, started + UNKNOWN_GRACE_S):
            time.sleep(0.02)  # a lease changing hands names no holder for a moment: look again, say nothing
            continue
        if time.monotonic() >= deadline:
            raise TableBusy(f"{table_path} is being written by {holder.describe()}: waited {wait_s:g} s ({wait_setting}). "
                            "Run again when it has finished; a writer that died frees "
                            f"the table at once on its own host, elsewhere when its lease expires ({LEASE_TTL_S:g} s)")
        if holder.token != said:
            log(f"{table_path} is being written by {holder.describe()}: waiting up to {wait_s:g} s")
            said = holder.token
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(POLL_S, pause * 2)  # a short hold (a crawl's) is followed at once; a long one every POLL_S
    try:
        yield lease
    finally:
        lease.release()
