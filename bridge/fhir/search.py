"""ITI-67 search parameters: which records of a patient a search matches, and paging.

`patient` (`Patient/MRN` or MRN) or `patient.identifier` (`SYSTEM|MRN`) is required;
`status`, `category`, `type` (tokens, comma = or), `date`/`creation` (with the FHIR
prefixes eq, ne, lt, le, gt, ge; a date alone compares by day), `_count` and `_offset`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from bridge.categories import LOINC, CategoryTable
from bridge.errors import InvalidDocument
from bridge.fhir.documents import mrn_of_token, parse_time
from ehrgate.models import Record

KNOWN = {
    "patient",
    "patient.identifier",
    "status",
    "category",
    "type",
    "date",
    "creation",
    "_count",
    "_offset",
    "code",
    "_format",
}
_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")


@dataclass(frozen=True)
class DateTest:
    prefix: str
    start: datetime
    end: datetime

    def matches(self, moment: datetime) -> bool:
        tests = {
            "eq": self.start <= moment < self.end,
            "ne": not self.start <= moment < self.end,
            "lt": moment < self.start,
            "le": moment < self.end,
            "gt": moment >= self.end,
            "ge": moment >= self.start,
        }
        return tests[self.prefix]


@dataclass(frozen=True)
class Search:
    mrn: str
    categories: frozenset[str] | None
    statuses: frozenset[str] | None
    dates: tuple[DateTest, ...]
    count: int
    offset: int

    def matches(self, record: Record, status: str = "current") -> bool:
        if self.statuses is not None and status not in self.statuses:
            return False
        if self.categories is not None and record.category not in self.categories:
            return False
        moment = datetime.fromisoformat(record.created_at).astimezone(UTC)
        return all(test.matches(moment) for test in self.dates)


def _values(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return [part for value in params.get(name, ()) for part in value.split(",") if part]


def _date_test(text: str) -> DateTest:
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    value = text[2:] if text[:2] in _PREFIXES else text
    moment = parse_time(value, "the date parameter")
    if "T" in value:
        return DateTest(prefix, moment, moment + timedelta(seconds=1))
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return DateTest(prefix, start, start + timedelta(days=1))


def _int(params: Mapping[str, Sequence[str]], name: str, default: int, top: int) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        number = int(values[-1])
    except ValueError as exc:
        raise InvalidDocument(f"{name} must be a whole number, got {values[-1]!r}") from exc
    if not 0 <= number <= top:
        raise InvalidDocument(f"{name} must be between 0 and {top}")
    return number


def _categories(params: Mapping[str, Sequence[str]], table: CategoryTable) -> frozenset[str] | None:
    found: set[str] | None = None
    for name, lookup in (("type", _by_type), ("category", _by_class)):
        tokens = _values(params, name)
        if tokens:
            matched = {category for token in tokens for category in lookup(token, table)}
            found = matched if found is None else found & matched
    return frozenset(found) if found is not None else None


def _by_type(token: str, table: CategoryTable) -> list[str]:
    system, bar, code = token.rpartition("|")
    if bar and system not in ("", LOINC):
        return []
    return [c.name for c in table.categories if c.loinc == code]


def _by_class(token: str, table: CategoryTable) -> list[str]:
    system, bar, code = token.rpartition("|")
    return table.for_class(system if bar and system else None, code)


def parse_search(
    params: Mapping[str, Sequence[str]], mrn_system: str, table: CategoryTable, page: int
) -> Search:
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise InvalidDocument(f"unsupported search parameters: {', '.join(unknown)}")
    patients = _values(params, "patient")
    identifiers = _values(params, "patient.identifier")
    if len(patients) + len(identifiers) != 1:
        raise InvalidDocument("give exactly one patient: patient=MRN or patient.identifier=SYS|MRN")
    if patients:
        mrn = patients[0].removeprefix("Patient/")
    else:
        mrn = mrn_of_token(identifiers[0], mrn_system)
    statuses = _values(params, "status")
    dates = tuple(
        _date_test(text) for name in ("date", "creation") for text in params.get(name, ())
    )
    return Search(
        mrn=mrn,
        categories=_categories(params, table),
        statuses=frozenset(statuses) if statuses else None,
        dates=dates,
        count=_int(params, "_count", page, 500),
        offset=_int(params, "_offset", 0, 10**9),
    )


def page_links(
    url: str, params: Mapping[str, Sequence[str]], search: Search, total: int
) -> list[dict[str, str]]:
    """`self` and, when more remain, `next` links (GET URLs, also for POST _search)."""

    def at(offset: int) -> str:
        pairs = [(k, v) for k, values in params.items() if k != "_offset" for v in values]
        return f"{url}?{urlencode([*pairs, ('_offset', str(offset))])}"

    links = [{"relation": "self", "url": at(search.offset)}]
    if search.count and search.offset + search.count < total:
        links.append({"relation": "next", "url": at(search.offset + search.count)})
    return links
