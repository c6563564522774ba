"""The lab, simulated: the source the raw assets land locally (the walkthrough's `upload_to_s3.sh`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from zfish_assets import settings
from zfish_assets.synthetic import SimSettings, WrittenDay, parse_delay_spread, write_day


class SimulatorResource(ConfigurableResource):
    """Writes one simulated day of a raw table; a deployment gives each field its `ZFISH_*` setting, the
    defaults are the settings' own."""

    start: str = Field(default=settings.SIM_START.default, description=settings.SIM_START.description)
    fish_per_day: int = Field(default=int(settings.FISH_PER_DAY.default), description=settings.FISH_PER_DAY.description)
    images_per_fish: int = Field(default=int(settings.IMAGES_PER_FISH.default),
                                 description=settings.IMAGES_PER_FISH.description)
    label_delay_days: int = Field(default=int(settings.LABEL_DELAY_DAYS.default),
                                  description=settings.LABEL_DELAY_DAYS.description)
    seed: int = Field(default=int(settings.SEED.default), description=settings.SEED.description)
    label_delay_spread: str = Field(
        default=settings.LABEL_DELAY_SPREAD.default,
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
