"""Shared helpers for the statistics tests."""

from __future__ import annotations

import dataclasses
import math

import pytest


def _check_clean(result) -> None:
    """No numeric field of a result dataclass may be NaN or infinite."""
    for f in dataclasses.fields(result):
        v = getattr(result, f.name)
        if isinstance(v, float):
            assert math.isfinite(v), f"{type(result).__name__}.{f.name} = {v}"


@pytest.fixture
def assert_clean():
    return _check_clean
