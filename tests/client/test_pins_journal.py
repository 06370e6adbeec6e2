"""Pinned heads go to a journal beside the pins file: one line per advance, read back as
the largest head, torn lines ignored, folded into the file now and then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrgate import trust
from ehrgate.trust import LedgerPins
from envelope import SigningKey, VerifyKey

URL = "http://127.0.0.1:8000"


def _key() -> VerifyKey:
    return SigningKey.generate().verify_key


def _pinned(path: Path) -> LedgerPins:
    pins = LedgerPins(path)
    pins.check_or_pin(URL, _key())
    return pins


def test_each_head_survives_the_process(tmp_path: Path) -> None:
    path = tmp_path / "known.json"
    pins = _pinned(path)
    for size in range(1, 40):
        pins.advance(URL, size, f"{size:064x}")
        assert LedgerPins(path).head(URL) == (size, f"{size:064x}")
    journal = tmp_path / "known.json.heads"
    assert len(journal.read_text().splitlines()) == 39
    assert "tree_size" not in path.read_text()  # the file was not rewritten for a head


def test_a_line_cut_short_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "known.json"
    pins = _pinned(path)
    pins.advance(URL, 5, "aa" * 32)
    journal = tmp_path / "known.json.heads"
    whole = json.dumps({"url": URL, "tree_size": 9, "root": "bb" * 32})
    with journal.open("a") as out:
        out.write(whole[: len(whole) // 2])
    assert LedgerPins(path).head(URL) == (5, "aa" * 32)


def test_the_largest_of_file_and_journal_wins(tmp_path: Path) -> None:
    path = tmp_path / "known.json"
    pins = _pinned(path)
    pins.advance(URL, 7, "cc" * 32)
    journal = tmp_path / "known.json.heads"
    with journal.open("a") as out:
        out.write(json.dumps({"url": URL, "tree_size": 3, "root": "dd" * 32}) + "\n")
    assert LedgerPins(path).head(URL) == (7, "cc" * 32)


def test_the_journal_is_folded_into_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trust, "JOURNAL_LINES", 4)
    path = tmp_path / "known.json"
    pins = _pinned(path)
    for size in range(1, 6):
        pins.advance(URL, size, f"{size:064x}")
    saved = json.loads(path.read_text())["gateways"][URL]
    assert (saved["tree_size"], saved["root"]) == (5, f"{5:064x}")
    assert (tmp_path / "known.json.heads").read_text() == ""
    pins.advance(URL, 6, f"{6:064x}")
    assert LedgerPins(path).head(URL) == (6, f"{6:064x}")


def test_a_smaller_head_is_not_journaled(tmp_path: Path) -> None:
    path = tmp_path / "known.json"
    pins = _pinned(path)
    pins.advance(URL, 10, "ee" * 32)
    pins.advance(URL, 4, "ff" * 32)
    assert len((tmp_path / "known.json.heads").read_text().splitlines()) == 1
    assert LedgerPins(path).head(URL) == (10, "ee" * 32)
