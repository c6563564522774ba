"""The job's code and its digest: what a deployed Glue job or a warm Spark Connect server must run.

Both engines run `glue_scripts` outside this process (Glue's workers; the server's Python workers),
so both are refused when the code they were given differs from this checkout's.
"""

from __future__ import annotations

import hashlib

from zfish_assets import settings

GLUE_SCRIPTS = settings.REPO_ROOT / "glue_scripts"


def script_sha256() -> str:
    """A digest of the job's code as this checkout has it: the entry point and the shared zfish_etl module."""
    digest = hashlib.sha256()
    files = [GLUE_SCRIPTS / "joined_fish_data.py", *sorted((GLUE_SCRIPTS / "zfish_etl").glob("*.py"))]
    for path in files:
        digest.update(path.relative_to(GLUE_SCRIPTS).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
