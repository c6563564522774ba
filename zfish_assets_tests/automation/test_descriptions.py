"""What the UI says of the evening's window is the configured horizon (`ZFISH_LABEL_HORIZON_DAYS`): every
description of the Definitions that states a window `[D-n, D]` states n = horizon - 1."""

from __future__ import annotations

import re

import pytest

WINDOW = re.compile(r"\[D-(\d+), D\]")


def descriptions(defs) -> dict[str, str]:
    """The description of every schedule, sensor, job and asset of `defs`, by name."""
    repo = defs.get_repository_def()
    found = {f"schedule {s.name}": s.description or "" for s in repo.schedule_defs}
    found.update({f"sensor {s.name}": s.description or "" for s in repo.sensor_defs})
    found.update({f"job {j.name}": j.description or "" for j in repo.get_all_jobs()})
    for assets_def in repo.assets_defs_by_key.values():
        found.update({f"asset {k.to_user_string()}": d or "" for k, d in assets_def.descriptions_by_key.items()})
    return found


@pytest.mark.parametrize("horizon", [36, 10, 2])
def test_every_description_states_the_configured_window(horizon, data_dir, monkeypatch):
    from zfish_assets.definitions import build_definitions

    monkeypatch.setenv("ZFISH_LABEL_HORIZON_DAYS", str(horizon))
    stated = {name: WINDOW.findall(text) for name, text in descriptions(build_definitions()).items()}
    stating = {name: days for name, days in stated.items() if days}
    assert {"schedule evening", "sensor join_after_crawl"} <= set(stating)
    assert all(days == [str(horizon - 1)] for days in stating.values()), stating
