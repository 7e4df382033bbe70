"""Threads: every library gets the machine's cores unless the user sets a number."""

from __future__ import annotations

import os

import pytest

from alfia.errors import AlfiaError
from alfia.machine import available_cores, resolve_jobs


def test_default_is_the_cores_this_process_may_use():
    assert available_cores() == len(os.sched_getaffinity(0))
    assert resolve_jobs(None) == available_cores()


def test_a_set_number_wins_and_a_nonsense_one_is_refused():
    assert resolve_jobs(3) == 3
    with pytest.raises(AlfiaError, match="must be >= 1, got 0"):
        resolve_jobs(0)
