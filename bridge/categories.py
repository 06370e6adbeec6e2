"""Categories: each ehrgate category with its LOINC document type code and a class code.

The table is configurable (bridge settings, `categories`); it maps both ways: FHIR
`DocumentReference.type` (LOINC) and `category` (class code) to an ehrgate category and
back, and HL7 v2 TXA-2 (document type: a LOINC code, a category name, or one of the
category's configured aliases such as HL7 table 0270 `HP`) to a category.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from bridge.errors import InvalidDocument

LOINC = "http://loinc.org"


class CategoryCodes(BaseModel):
    """One category's codes, as settings give them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    loinc: str
    display: str
    class_code: str
    class_display: str
    class_system: str = LOINC
    txa2: tuple[str, ...] = ()
    """Further TXA-2 values that name this category (besides its name and LOINC code)."""


DEFAULT_CATEGORIES: tuple[CategoryCodes, ...] = (
    CategoryCodes(
        name="history-physical",
        loinc="34117-2",
        display="History and physical note",
        class_code="34109-9",
        class_display="Note",
        txa2=("HP",),
    ),
    CategoryCodes(
        name="lab-results",
        loinc="11502-2",
        display="Laboratory report",
        class_code="26436-6",
        class_display="Laboratory studies (set)",
        txa2=("LAB",),
    ),
    CategoryCodes(
        name="radiation-dose",
        loinc="73569-6",
        display="Radiation exposure and protection information",
        class_code="18748-4",
        class_display="Diagnostic imaging study",
        txa2=("RAD",),
    ),
    CategoryCodes(
        name="treatment-summary",
        loinc="74156-1",
        display="Oncology plan of care and summary note",
        class_code="18776-5",
        class_display="Plan of care note",
        txa2=("TS",),
    ),
)


@dataclass(frozen=True)
class CategoryTable:
    """The categories the bridge knows, looked up by name, LOINC code, class code or TXA-2."""

    categories: tuple[CategoryCodes, ...] = DEFAULT_CATEGORIES
    _by_name: dict[str, CategoryCodes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {codes.name: codes for codes in self.categories}
        if len(by_name) != len(self.categories):
            raise ValueError("a category is named twice in the category table")
        loincs = [codes.loinc for codes in self.categories]
        if len(set(loincs)) != len(loincs):
            raise ValueError("two categories have the same LOINC type code")
        object.__setattr__(self, "_by_name", by_name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def codes_for(self, category: str) -> CategoryCodes:
        found = self._by_name.get(category)
        if found is None:
            raise InvalidDocument(f"unknown category {category!r}; known: {self._known()}")
        return found

    def for_loinc(self, code: str) -> str:
        for codes in self.categories:
            if codes.loinc == code:
                return codes.name
        raise InvalidDocument(
            f"LOINC document type {code!r} is mapped to no category; mapped: "
            + ", ".join(f"{c.loinc} ({c.name})" for c in self.categories)
        )

    def for_class(self, system: str | None, code: str) -> list[str]:
        """The categories with this class code (several may share one)."""
        return [
            codes.name
            for codes in self.categories
            if codes.class_code == code and system in (None, codes.class_system)
        ]

    def for_txa2(self, value: str) -> str:
        """The category of an HL7 v2 TXA-2 (its first component, case as sent)."""
        code = value.split("^", 1)[0].strip()
        for codes in self.categories:
            if code in (codes.name, codes.loinc, *codes.txa2):
                return codes.name
        raise InvalidDocument(
            f"TXA-2 document type {code!r} is mapped to no category; use a LOINC code, a "
            f"category name ({self._known()}) or a configured alias"
        )

    def _known(self) -> str:
        return ", ".join(self._by_name)


DEFAULT_TABLE = CategoryTable()


def table_of(categories: Iterable[CategoryCodes] | None) -> CategoryTable:
    return CategoryTable(tuple(categories)) if categories else DEFAULT_TABLE


def category_for_loinc(code: str, table: CategoryTable = DEFAULT_TABLE) -> str:
    """The ehrgate category of a LOINC document type code; InvalidDocument if unmapped."""
    return table.for_loinc(code)


def category_for_txa2(value: str, table: CategoryTable = DEFAULT_TABLE) -> str:
    """The ehrgate category of an HL7 v2 TXA-2 value; InvalidDocument if unmapped."""
    return table.for_txa2(value)


def codes_for(category: str, table: CategoryTable = DEFAULT_TABLE) -> CategoryCodes:
    """A category's LOINC type and class codes; InvalidDocument if unknown."""
    return table.codes_for(category)
