"""The lake's layout is stated in one module (`glue_scripts/zfish_etl/layout.py`), and what names
its folders (the IAM policies, the deploy, both runtimes) derives from it rather than restating it."""

from __future__ import annotations

import json
import re

import pytest

from glue_scripts.zfish_etl import layout
from zfish_assets import settings
from zfish_assets.tools.deploy import DeploySettings
from zfish_assets.tools.policies import policies

ROOT = settings.REPO_ROOT
LAYOUT = ROOT / "glue_scripts" / "zfish_etl" / "layout.py"
OWN_FOLDER = re.compile(r"_zfish[/.]")  # zfish's own folder, or its Hudi commit-metadata key


def test_only_the_layout_module_spells_zfish_own_folder():
    spelled = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
               for path in sorted([*(ROOT / "zfish_assets").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py")])
               if path != LAYOUT
               for number, line in enumerate(path.read_text().splitlines(), 1) if OWN_FOLDER.search(line)]
    assert not spelled, "say these through glue_scripts/zfish_etl/layout.py:\n" + "\n".join(spelled)
    assert OWN_FOLDER.search(LAYOUT.read_text())


def _settings(**overrides) -> DeploySettings:
    return DeploySettings(**{"bucket": "lake", "region": "eu-west-1", "endpoint_url": "", "prefix": "use-cases/x",
                             "database": "db", "job_name": "job", "role_arn": "arn:aws:iam::000000000000:role/r",
                             "query": "athena", "engine": "spark", "crawl_mode": "crawler", **overrides})


@pytest.mark.parametrize("engine", ["glue", "spark"])
def test_the_policies_follow_the_layout(monkeypatch, engine):
    s = _settings(engine=engine)
    before = json.dumps(policies(s), sort_keys=True)
    assert "/use-cases/x/_zfish/" in before
    monkeypatch.setattr(layout, "OWN", "_elsewhere")
    monkeypatch.setattr(layout, "QUARANTINE", "rejects")
    monkeypatch.setattr(layout, "EXPORTS", "exports/training")
    monkeypatch.setattr(layout, "PROCESSED", "tables")
    after = json.dumps(policies(s), sort_keys=True)
    expected = (before.replace("use-cases/x/_zfish/", "use-cases/x/_elsewhere/")
                .replace("use-cases/x/quarantine", "use-cases/x/rejects")
                .replace("use-cases/x/ml/training_set", "use-cases/x/exports/training")
                .replace("use-cases/x/processed", "use-cases/x/tables"))
    assert after == expected
    assert "_zfish" not in after


def test_the_deploy_and_the_job_follow_the_layout(monkeypatch):
    from glue_scripts.zfish_etl.landing import marker_key
    from glue_scripts.zfish_etl.lease import lease_for

    monkeypatch.setattr(layout, "OWN", "_elsewhere")
    s = _settings()
    assert s.code_prefix == "use-cases/x/_elsewhere/glue"
    assert s.athena_output_location == "s3://lake/use-cases/x/_elsewhere/athena-results/"
    assert marker_key("observations", "2025-05-08") == "_elsewhere/landing/observations/day=2025-05-08.json"
    assert layout.label_state_key() == "_elsewhere.label_state"
    assert lease_for("/tmp/lake/processed/t/").path == "/tmp/lake/processed/t.lease"
