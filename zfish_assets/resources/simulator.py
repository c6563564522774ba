"""The lab, simulated: the source the raw assets land locally (the walkthrough's `upload_to_s3.sh`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from zfish_assets import settings
from zfish_assets.synthetic import SimSettings, WrittenDay, format_delay_spread, parse_delay_spread, write_day


class SimulatorResource(ConfigurableResource):
    """Writes one simulated day of a raw table; settings default to the `ZFISH_*` variables."""

    start: str = Field(default_factory=lambda: settings.sim_start().isoformat())
    fish_per_day: int = Field(default_factory=lambda: SimSettings.from_env().fish_per_day)
    images_per_fish: int = Field(default_factory=lambda: SimSettings.from_env().images_per_fish)
    label_delay_days: int = Field(default_factory=lambda: SimSettings.from_env().label_delay_days)
    seed: int = Field(default_factory=lambda: SimSettings.from_env().seed)
    label_delay_spread: str = Field(
        default_factory=lambda: format_delay_spread(SimSettings.from_env().label_delay_spread),
        description="`off`, or MIN-MAX days each label's delay is drawn from (ZFISH_LABEL_DELAY_SPREAD).",
    )

    def sim_settings(self) -> SimSettings:
        return SimSettings(
            start=date.fromisoformat(self.start), fish_per_day=self.fish_per_day,
            images_per_fish=self.images_per_fish, label_delay_days=self.label_delay_days, seed=self.seed,
            label_delay_spread=parse_delay_spread(self.label_delay_spread, "label_delay_spread"),
        )

    def write_day(self, table: str, day: str, dest: Path) -> WrittenDay:
        return write_day(self.sim_settings(), table, date.fromisoformat(day), dest)
