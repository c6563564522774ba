"""A loopback HTTP proxy in front of moto's server: what every AWS client sent, and faults on demand.

Clients (boto3, Spark's s3a, hudi-rs) are pointed at the proxy as their endpoint; it forwards each
request to moto unchanged and records who signed it (the access key of the SigV4 credential),
the method, path, query, `X-Amz-Target` and body, and moto's status. A test may register a handler
for an operation (`"AWSGlue.GetJobRun"`, or `"s3"` for every S3 request): it sees the request and
either answers it (status, body), e.g. a 503 a real service gives under load, or returns None to
let it through. Nothing inside the clients is patched.

`replicas` (benchmarks only): servers holding a copy of the upstream's objects. Each client
connection is then forwarded to the upstream or one of them in turn, so reads are served by
several moto processes (one is bound to one core by its GIL); a write is refused, since it would
reach one copy only.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from zfish_assets.backends.ports import LOOPBACK

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Recorded:
    """One request as the service received it."""

    access_key: str
    region: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response: bytes = b""

    @property
    def target(self) -> str:
        """`AWSGlue.GetJobRun`, `AmazonAthena.StartQueryExecution`; `s3` for S3's REST calls."""
        return self.headers.get("x-amz-target", "s3")

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


Handler = Callable[[Recorded], "tuple[int, bytes] | None"]


@dataclass
class AwsProxy:
    upstream: str
    replicas: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        servers = itertools.cycle([urlsplit(u) for u in [self.upstream, *self.replicas]])
        read_only = bool(self.replicas)
        proxy = self
        lock = threading.Lock()

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY the body waits for the
            # client's delayed ACK, ~40 ms a request (measured: 56 ms a GET through the proxy, 8.5 ms with it).
            disable_nagle_algorithm = True

            # One connection to moto per client connection, kept alive across its requests: a new
            # one per request cost moto a connection and a thread each (measured: benchmarks/s3_read.py).
            upstream_connection: http.client.HTTPConnection | None = None
            upstream = None  # this client connection's server, chosen at its first request

            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
                """The request sent on this handler's connection to moto, or on a new one if moto closed it."""
                if self.upstream is None:
                    with lock:
                        self.upstream = next(servers)
                for attempt in (1, 2):
                    if self.upstream_connection is None:
                        self.upstream_connection = http.client.HTTPConnection(self.upstream.hostname,
                                                                              self.upstream.port, timeout=120)
                    try:
                        self.upstream_connection.request(self.command, self.path, body=body, headers=headers)
                        return self.upstream_connection.getresponse()
                    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                        self.upstream_connection.close()
                        self.upstream_connection = None
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")

            def finish(self) -> None:
                super().finish()
                if self.upstream_connection is not None:
                    self.upstream_connection.close()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                found = _CREDENTIAL.search(headers.get("authorization", ""))
                url = urlsplit(self.path)
                recorded = Recorded(found.group(1) if found else "", found.group(2) if found else "", self.command,
                                    url.path, parse_qs(url.query, keep_blank_values=True), headers, body)
                with lock:
                    proxy.requests.append(recorded)
                handler = proxy.handlers.get(recorded.target)
                answer = handler(recorded) if handler else None
                if answer is None and read_only and self.command not in ("GET", "HEAD"):
                    answer = 501, b"a proxy over replicas forwards reads only"
                if answer is not None:
                    status, payload = answer
                    reply_headers = {"Content-Type": "application/x-amz-json-1.1"}
                else:
                    forwarded = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    forwarded["Content-Length"] = str(len(body))
                    response = self._forward(body, forwarded)
                    status, payload = response.status, response.read()
                    reply_headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                                     and (k.lower() != "content-length" or self.command == "HEAD")}
                recorded.status, recorded.response = status, payload
                self.send_response(status)
                for key, value in reply_headers.items():
                    self.send_header(key, value)
                if self.command != "HEAD" or "Content-Length" not in {k.title() for k in reply_headers}:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Forward)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def calls(self, target: str) -> list[Recorded]:
        return [r for r in self.requests if r.target == target]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def glue_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    """An AWS JSON-protocol error answer (what Glue sends for a 503 or an unknown entity)."""
    return status, json.dumps({"__type": code, "Message": message}).encode()


ACCESS_DENIED = 403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"


def missing_keys_denied(upstream: str, lists_bucket: Callable[[Recorded, str], bool] | None = None) -> Handler:
    """S3 as a least-privilege principal meets it: a GET or HEAD of a missing object is 403 AccessDenied.

    AWS answers 404 NoSuchKey only to a principal allowed `s3:ListBucket` on the bucket (a GET has no
    `s3:prefix`, so a listing right scoped to a prefix does not count); to others a missing key looks
    like a denied one (S3 API reference, GetObject and HeadObject: permissions). moto, with no IAM,
    always says 404. `lists_bucket(request, bucket)` says whether the request's principal holds that
    right (default: none does). Whether the key is missing is asked of moto directly (an unsigned
    HEAD: moto checks no signature).
    """
    server = urlsplit(upstream)

    def answer(r: Recorded) -> tuple[int, bytes] | None:
        bucket, _, key = r.path.lstrip("/").partition("/")
        if r.method not in ("GET", "HEAD") or not key or "uploadId" in r.query:
            return None
        if lists_bucket is not None and lists_bucket(r, bucket):
            return None
        connection = http.client.HTTPConnection(server.hostname, server.port, timeout=30)
        try:
            connection.request("HEAD", r.path)
            missing = connection.getresponse().status == 404
        finally:
            connection.close()
        return ACCESS_DENIED if missing else None

    return answer
