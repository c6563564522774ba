"""The job's code: its digest, its content-addressed S3 objects, and the check that a job runs exactly them.

Every engine runs `glue_scripts` outside this process (Glue's workers; a warm Spark Connect
server's Python workers), so each is refused when the code it was given differs from this
checkout's. One digest names that code everywhere: the package's (`script_sha256`).

`zfish deploy` uploads the entry point and the `glue_scripts` package (`--extra-py-files`) to
`<code prefix>/sha256/<digest of the object's bytes>/<name>`, and the job definition names those
keys. A key's content never changes: new code is a new key, so a deployment is never half
updated, and whoever may start the job cannot swap what it runs by naming a different object.
Before a run starts, `verify_job_code` checks that the job names this checkout's objects and that
each object, downloaded, still hashes to its key: a replaced object is refused, naming the key.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass

from glue_scripts.zfish_etl import layout
from glue_scripts.zfish_etl.files import get_s3_object
from zfish_assets import settings

GLUE_SCRIPTS = settings.REPO_ROOT / "glue_scripts"
ENTRY_POINT, PACKAGE = "joined_fish_data.py", "glue_scripts.zip"
EXTRA_PY_FILES, SCRIPT_LOCATION = "--extra-py-files", "--scriptLocation"
CODE_DIGEST = "--zfish_code_sha256"  # the package's digest, for whoever reads a run's arguments
CODE_BEARING = (SCRIPT_LOCATION, EXTRA_PY_FILES, "--extra-jars", "--extra-files", "--user-jars-first",
                "--additional-python-modules", "--python-modules-installer-option", "--conf", "--datalake-formats",
                "--job-language")
"""Glue's job parameters that bring code into a run or choose where it comes from: a jar on the classpath
runs through Java's service loading, a file in the script's folder shadows a Python import, an installer
option can name another package index. The deployed job pins each (`NonOverridableArguments`)."""
_ADDRESSED = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<key>(?:.+/)?sha256/(?P<digest>[0-9a-f]{64})/(?P<name>[^/]+))\Z")


class CodeIntegrityError(RuntimeError):
    """The job does not name this checkout's code, or an object of it was replaced."""


@dataclass(frozen=True)
class CodeObject:
    """One deployed file: its name, its bytes, and the key its digest gives it under a code prefix."""

    name: str
    body: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def key(self, code_prefix: str) -> str:
        return layout.code_key(code_prefix, self.sha256, self.name)


def package_zip() -> bytes:
    """`glue_scripts/` (entry point and zfish_etl) as a zip for `--extra-py-files`: same code, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(GLUE_SCRIPTS.rglob("*.py")):
            info = zipfile.ZipInfo(f"glue_scripts/{path.relative_to(GLUE_SCRIPTS).as_posix()}", (2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def code_objects() -> dict[str, CodeObject]:
    """This checkout's job code, by name: the entry point and the package."""
    return {ENTRY_POINT: CodeObject(ENTRY_POINT, (GLUE_SCRIPTS / ENTRY_POINT).read_bytes()),
            PACKAGE: CodeObject(PACKAGE, package_zip())}


def script_sha256() -> str:
    """The digest of this checkout's job code: the sha256 of the package `zfish deploy` uploads, which
    holds the entry point and zfish_etl (a warm engine records it at start; a Glue job's key names it)."""
    return code_objects()[PACKAGE].sha256


def job_code_uris(job: dict) -> dict[str, str]:
    """The code a job definition names, by file name: its script and its `--extra-py-files`, each only
    where a run cannot override it (a `NonOverridableArguments` entry; the script's equal to the command's)."""
    pinned = job.get("NonOverridableArguments") or {}
    script = job.get("Command", {}).get("ScriptLocation", "")
    return {ENTRY_POINT: script if pinned.get(SCRIPT_LOCATION) == script else "",
            PACKAGE: pinned.get(EXTRA_PY_FILES, "")}


def verify_job_code(s3, job_name: str, job: dict) -> None:
    """Raise `CodeIntegrityError` unless `job` names this checkout's objects and each still holds its bytes.

    The objects are downloaded and hashed (the script and the zip are small): a checksum stored
    beside an object would be replaced with it.
    """
    expected = code_objects()
    for name, uri in job_code_uris(job).items():
        match = _ADDRESSED.match(uri)
        if match is None or match["name"] != name or match["digest"] != expected[name].sha256:
            raise CodeIntegrityError(
                f"Glue job {job_name!r} runs other code than this checkout: it names {uri or 'nothing'} "
                f"(that a run cannot override) for "
                f"{name}, this checkout's is sha256/{expected[name].sha256}/{name}: run `zfish deploy` first")
        body = get_s3_object(s3, match["bucket"], match["key"])
        if body is None:
            raise CodeIntegrityError(f"s3://{match['bucket']}/{match['key']} (the job's {name}) is missing: "
                                     "run `zfish deploy` to upload it")
        found = hashlib.sha256(body).hexdigest()
        if found != match["digest"]:
            raise CodeIntegrityError(
                f"s3://{match['bucket']}/{match['key']} was replaced: its bytes hash to sha256 {found}, not the "
                f"{match['digest']} its key names. Refusing to start the job; run `zfish deploy` to restore "
                "the code, and find out who could write the code prefix")
