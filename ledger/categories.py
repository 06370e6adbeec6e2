"""Record categories: a small registry of names with their LOINC document codes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")


@dataclass(frozen=True, slots=True)
class Category:
    """A category of records, e.g. lab results, and the LOINC code of its document type."""

    name: str
    loinc: str
    title: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"category name {self.name!r} must be lowercase letters, digits and '-'"
            )


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("history-physical", "34117-2", "History and physical note"),
    Category("lab-results", "11502-2", "Laboratory report"),
    Category("radiation-dose", "73569-6", "Radiation exposure and protection information"),
    Category("treatment-summary", "74156-1", "Oncology plan of care and summary note"),
)


class CategoryRegistry:
    """The categories a ledger accepts. Order matters only for the permission index bits."""

    def __init__(self, categories: Iterable[Category] = DEFAULT_CATEGORIES) -> None:
        self._by_name: dict[str, Category] = {}
        for category in categories:
            if category.name in self._by_name:
                raise ValueError(f"category {category.name!r} is registered twice")
            if category.name == "all":
                raise ValueError("'all' is reserved for grants covering every category")
            self._by_name[category.name] = category

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __getitem__(self, name: str) -> Category:
        return self._by_name[name]

    def names(self) -> list[str]:
        return list(self._by_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoryRegistry) and list(other) == list(self)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"CategoryRegistry({', '.join(self._by_name)})"
