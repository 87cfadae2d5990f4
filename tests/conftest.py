"""Shared test configuration. Factories live in :mod:`apiward.testing`."""

from __future__ import annotations

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    # An empty run must fail loudly, never pass as "no tests" (exit 5).
    if not session.items and not session.config.getoption("collectonly"):
        pytest.exit("no tests were collected: the suite is broken", returncode=3)
