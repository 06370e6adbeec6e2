"""The category table: LOINC type, class code and HL7 v2 TXA-2 both ways, configurable."""

from __future__ import annotations

import pytest

from bridge.categories import (
    CategoryCodes,
    CategoryTable,
    category_for_loinc,
    category_for_txa2,
    codes_for,
)
from bridge.errors import InvalidDocument
from bridge.settings import BridgeSettings


def test_defaults_map_both_ways() -> None:
    for name in ("history-physical", "lab-results", "radiation-dose", "treatment-summary"):
        codes = codes_for(name)
        assert category_for_loinc(codes.loinc) == name
        assert category_for_txa2(f"{codes.loinc}^{codes.display}^LN") == name
        assert category_for_txa2(name) == name
    assert category_for_txa2("HP") == "history-physical"
    with pytest.raises(InvalidDocument, match="TXA-2"):
        category_for_txa2("XX^Unknown")
    with pytest.raises(InvalidDocument, match="mapped to no category"):
        category_for_loinc("0000-0")
    with pytest.raises(InvalidDocument, match="unknown category"):
        codes_for("dental")


def test_settings_replace_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "EHRGATE_BRIDGE_CATEGORIES",
        '[{"name": "lab-results", "loinc": "11502-2", "display": "Lab", '
        '"class_code": "LAB", "class_display": "Lab", "class_system": "urn:x", "txa2": ["LR"]}]',
    )
    settings = BridgeSettings(gateway_url="http://x", hospital_id="h", system_identity="s")
    table = settings.category_table
    assert table.names() == ["lab-results"]
    assert category_for_txa2("LR", table) == "lab-results"
    assert table.for_class("urn:x", "LAB") == ["lab-results"]
    assert table.for_class("http://loinc.org", "LAB") == []
    with pytest.raises(InvalidDocument):
        category_for_loinc("34117-2", table)


def test_a_table_refuses_duplicates() -> None:
    one = CategoryCodes(name="a", loinc="1-1", display="A", class_code="c", class_display="C")
    with pytest.raises(ValueError, match="twice"):
        CategoryTable((one, one))
