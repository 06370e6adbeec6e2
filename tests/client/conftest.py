"""Fixtures of the SDK tests: a live gateway with its cast, per module or per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.live import Cast, live_cast


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    """One gateway for the tests of a module (they must not depend on each other)."""
    with live_cast(tmp_path_factory.mktemp("gateway")) as found:
        yield found


@pytest.fixture
def own_cast(tmp_path: Path) -> Iterator[Cast]:
    """A gateway of its own, for a test that damages its data."""
    with live_cast(tmp_path) as found:
        yield found
