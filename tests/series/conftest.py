"""Fixtures of the time-series tests; the data makers are in series_testkit.py."""

from __future__ import annotations

import pytest

from alfia.series.hourly import HourlyArrays
from series_testkit import make_arrays


@pytest.fixture
def arrays() -> HourlyArrays:
    return make_arrays()
