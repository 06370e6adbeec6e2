"""Fixtures of the command tests: a live gateway with its cast, a pins file, and `ehrgate`
run as a subprocess against them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.live_cli import Run
from tests.client.live import Cast, live_cast


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    with live_cast(tmp_path_factory.mktemp("gateway")) as found:
        yield found


@pytest.fixture(scope="module")
def pins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pins") / "known_ledgers.json"


@pytest.fixture
def ehrgate(cast: Cast, pins: Path, tmp_path: Path) -> Run:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return Run(cast, pins, cwd)
