"""The job's own code digest: a commit's label state names the code that built its rows, and a state made by
other code counts as none (the run then reads as a first run does). The digest is computed from the
modules as loaded, so the package zip that deploy gives Glue must digest as this checkout does, and any
change to a module must change it; each is computed here in a fresh interpreter that sees only the zip."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from glue_scripts.zfish_etl.label_state import LABEL_STATE_KEY, LabelState
from glue_scripts.zfish_etl.own_code import source_digest
from zfish_assets.backends.job_code import package_zip


def digest_from_zip(tmp_path: Path, data: bytes) -> str:
    """`source_digest()` in a Python without site-packages or this checkout, importing glue_scripts from `data`."""
    archive = tmp_path / "glue_scripts.zip"
    archive.write_bytes(data)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from glue_scripts.zfish_etl.own_code import source_digest; "
            "import glue_scripts; assert glue_scripts.__file__.startswith(sys.argv[1]); print(source_digest())")
    done = subprocess.run([sys.executable, "-S", "-c", code, str(archive)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def with_module_changed(data: bytes, name: str, change) -> bytes:
    """The zip `data` with module `name`'s source passed through `change`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            body = old.read(info)
            new.writestr(info, change(body) if info.filename == name else body)
    return out.getvalue()


def test_the_deployed_zip_digests_as_the_checkout_and_a_changed_module_does_not(tmp_path):
    deployed = package_zip()
    assert digest_from_zip(tmp_path, deployed) == source_digest()
    changed = with_module_changed(deployed, "glue_scripts/zfish_etl/transform.py",
                                  lambda b: b.replace(b"F.col(LABEL).desc()", b"F.col(LABEL).asc()"))
    assert changed != deployed and digest_from_zip(tmp_path, changed) != source_digest()


def test_a_label_state_made_by_other_code_counts_as_none():
    state = LabelState({"2025-04-07": "3:1:2"}, {"2025-04-07": ["2025-04-05"]}, {"2025-04-05": "rows:a:b"},
                       code=source_digest())
    recorded = {"extraMetadata": {LABEL_STATE_KEY: state.to_json()}}
    assert LabelState.from_commit(recorded, source_digest()) == state
    assert LabelState.from_commit(recorded, "0" * 64) is None
    older = json.loads(state.to_json())
    del older["code"]  # a commit of a job that recorded no code
    assert LabelState.from_commit({"extraMetadata": {LABEL_STATE_KEY: json.dumps(older)}}, source_digest()) is None
