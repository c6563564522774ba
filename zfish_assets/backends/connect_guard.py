"""What closes the warm engine: its guard jar (compiled here from `java/`), its secret and its URL.

Spark 3.5.4's Connect server has no authentication and binds every interface. zfish starts it
through its own main (`java/LoopbackConnectServer.java`: Spark's own start, bound to 127.0.0.1)
with a gRPC interceptor (`java/SecretInterceptor.java`) that refuses a call from a non-loopback
peer (PERMISSION_DENIED) or without the server's secret in the `x-zfish-token` header
(UNAUTHENTICATED). No Spark release ships such a class and none is on Maven Central, so the two
sources are compiled with the JDK's `javac` against the Connect jar (which shades gRPC under
`org.sparkproject.connect.grpc`) the first time an engine starts, and cached beside the jars.

The secret is random per start and lives in `<engine dir>/secret` (mode 0600, the folder 0700);
the server reads it from that file, and the URL runs use carries it as `;x-zfish-token=...`,
which a PySpark Connect client sends as a header. Whatever prints a URL prints `masked(url)`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import tempfile
import zipfile
from pathlib import Path

from zfish_assets.backends.ports import LOOPBACK
from zfish_assets.backends.spark_session import SparkEnvironmentError, jdk_tool, masked_url

SOURCES = Path(__file__).parent / "java"
MAIN_CLASS = "zfish.connect.LoopbackConnectServer"
HEADER = "x-zfish-token"
SECRET_FILE_CONF = "spark.zfish.connect.secret_file"
PORT_FILE_CONF = "spark.zfish.connect.port_file"
BIND_CONF = "spark.zfish.connect.bind_address"
PORT_TAKEN_EXIT = 3  # LoopbackConnectServer.PORT_TAKEN


def sources() -> list[Path]:
    return sorted(SOURCES.glob("*.java"))


def guard_jar(jars_dir: Path, connect_jar: Path) -> Path:
    """The compiled guard for these sources and this Connect jar, built (once) if missing.

    Named by a digest of both, so an edited source or another Spark builds a new jar; built in a
    temporary folder and renamed into place, so engines starting at once never see half a jar.
    """
    digest = hashlib.sha256(connect_jar.name.encode())
    for source in sources():
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    jar = jars_dir / f"zfish-connect-guard-{digest.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    with tempfile.TemporaryDirectory(dir=jars_dir, prefix=".guard-") as scratch:
        classes = Path(scratch) / "classes"
        _compile(classes, connect_jar)
        staged = Path(scratch) / jar.name
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
        os.replace(staged, jar)
    return jar


def _javac() -> str:
    java_home = os.environ.get("JAVA_HOME")
    javac = jdk_tool("javac")
    if not javac:
        raise SparkEnvironmentError(
            "the warm engine compiles its guard (the secret and loopback check) with the JDK's javac, and "
            f"none was found{' in JAVA_HOME=' + java_home if java_home else ' on PATH'}: install a JDK 17 "
            "(e.g. `apt-get install openjdk-17-jdk-headless`; a JRE has no javac) or set JAVA_HOME to one.")
    return javac


def _compile(classes: Path, connect_jar: Path) -> None:
    import pyspark

    classpath = os.pathsep.join([str(connect_jar), str(Path(pyspark.__file__).parent / "jars" / "*")])
    done = subprocess.run([_javac(), "--release", "17", "-nowarn", "-d", str(classes), "-cp", classpath,
                           *map(str, sources())], capture_output=True, text=True)
    if done.returncode != 0:
        raise SparkEnvironmentError(
            f"javac could not compile the warm engine's guard ({SOURCES}) against {connect_jar.name}:\n"
            f"{(done.stdout + done.stderr).strip()}")


def new_secret(home: Path) -> Path:
    """A fresh random secret in `home/secret`, readable by this user only (0600; `home` 0700)."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    path = home / "secret"
    staged = home / f".secret-{secrets.token_hex(4)}"
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32))
    os.replace(staged, path)
    return path


def url(port: int, secret_file: str | Path) -> str:
    """The URL a client connects with: loopback, the port, and the secret as a header parameter."""
    secret = Path(secret_file).read_text().strip() if secret_file and Path(secret_file).is_file() else ""
    return f"sc://{LOOPBACK}:{port}/;{HEADER}={secret}" if secret else f"sc://{LOOPBACK}:{port}"


masked = masked_url
"""`text` with the value of every `;...token=` URL parameter replaced by `***`: for logs and messages."""
