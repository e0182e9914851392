"""The FX calendar every bar and feature asset must agree on."""

import dagster as dg
from pydantic import field_validator

from forex_assets.market.fx_calendar import DayClose, FxCalendar


class MarketCalendarResource(dg.ConfigurableResource):
    """Where daily bars close: `new_york_17` (17:00 New York, DST-aware) or `utc_midnight`."""

    day_close: str = DayClose.NEW_YORK_17.value

    @field_validator("day_close")
    @classmethod
    def _known_day_close(cls, value: str) -> str:
        allowed = [d.value for d in DayClose]
        if value not in allowed:
            raise ValueError(f"day_close={value!r} is not one of {allowed}")
        return value

    @property
    def calendar(self) -> FxCalendar:
        return FxCalendar(DayClose(self.day_close))
