"""Shared test fixtures: paths to ../shared and small synthetic recordings."""

import pathlib

import numpy as np
import pytest

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "data" / "real"
GOLDEN = SHARED / "data" / "golden"


@pytest.fixture(scope="session")
def real_dir():
    if not REAL.exists():
        pytest.skip("../shared/data/real is not available")
    return REAL


def regular_times(n, fs=100.0, start="2024-03-01T12:00:00"):
    """int64 ns times of ``n`` samples at ``fs`` Hz from ``start`` (naive)."""
    t0 = np.datetime64(start, "ns").astype(np.int64)
    return t0 + np.round(np.arange(n) * 1e9 / fs).astype(np.int64)
