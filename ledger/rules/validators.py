"""Field checks of transaction bodies: each returns the value or raises MalformedTransaction.

`deny` makes the RuleViolation a rule raises when a well-formed transaction is refused.
"""

from __future__ import annotations

import re
from typing import Any

from envelope import EnvelopeError, b64decode
from ledger.errors import MalformedTransaction, RuleViolation
from ledger.state import RIGHTS, StateView
from ledger.wire.clock import check_time

HEX64 = re.compile(r"[0-9a-f]{64}")
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")

_ALWAYS = frozenset({"tx_id", "issued_at"})


def deny(code: str, message: str) -> RuleViolation:
    return RuleViolation(code, message)


def text_field(body: dict[str, Any], name: str, *, max_len: int = 1000) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise MalformedTransaction(f"body.{name} must be a non-empty string of ≤ {max_len} chars")
    return value


def ident_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise MalformedTransaction(
            f"body.{name} must be an identifier of letters, digits and ._:@- "
            f"(≤ 200 characters), got {value!r}"
        )
    return value


def hex64_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise MalformedTransaction(f"body.{name} must be 64 lowercase hex characters")
    return value


def time_field(body: dict[str, Any], name: str) -> str:
    return check_time(body.get(name), f"body.{name}")


def b64_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    try:
        if not isinstance(value, str) or not b64decode(value, what=f"body.{name}"):
            raise MalformedTransaction(f"body.{name} must be non-empty base64")
    except EnvelopeError as exc:
        raise MalformedTransaction(str(exc)) from exc
    return value


def locators_field(body: dict[str, Any], name: str = "locators") -> list[str]:
    """A non-empty list of where a body is stored (strings of 1 to 2000 characters)."""
    locators = body[name]
    if (
        not isinstance(locators, list)
        or not locators
        or not all(isinstance(x, str) and 0 < len(x) <= 2000 for x in locators)
    ):
        raise MalformedTransaction(f"body.{name} must be a non-empty list of strings")
    return locators


def rights_field(body: dict[str, Any], name: str = "rights") -> list[str]:
    value = body.get(name)
    if (
        not isinstance(value, list)
        or not value
        or any(r not in RIGHTS for r in value)
        or len(set(value)) != len(value)
        or value != sorted(value)
    ):
        raise MalformedTransaction(
            f"body.{name} must be a sorted, non-empty list without repeats drawn from "
            f"{', '.join(RIGHTS)}"
        )
    return value


def categories_field(state: StateView, body: dict[str, Any]) -> list[str] | str:
    value = body.get("categories")
    if value == "all":
        return "all"
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) for c in value)
        or len(set(value)) != len(value)
        or value != sorted(value)
    ):
        raise MalformedTransaction(
            'body.categories must be "all" or a sorted, non-empty list of category names'
        )
    unknown = [c for c in value if c not in state.categories]
    if unknown:
        raise RuleViolation(
            "unknown-category",
            f"unknown categories {', '.join(unknown)}; known: "
            f"{', '.join(state.categories.names())}",
        )
    return value


_ALLOWED: dict[tuple[frozenset[str], frozenset[str]], frozenset[str]] = {}


def check_fields(
    body: dict[str, Any],
    required: set[str] | frozenset[str],
    optional: frozenset[str] = frozenset(),
) -> None:
    """The body has every *required* field and none but those, *optional* and the two
    every transaction has (tx_id, issued_at)."""
    keys = body.keys()
    allowed: frozenset[str] | set[str]
    if isinstance(required, frozenset):  # a rule's constant: its allowed set is kept
        known = _ALLOWED.get((required, optional))
        if known is None:
            known = _ALLOWED[(required, optional)] = required | optional | _ALWAYS
        allowed = known
    else:
        allowed = required | optional | _ALWAYS
    if keys >= required and keys <= allowed:
        return
    missing = required - body.keys()
    if missing:
        raise MalformedTransaction(f"body lacks {', '.join(sorted(missing))}")
    extra = body.keys() - allowed
    if extra:
        raise MalformedTransaction(f"body has unknown fields {', '.join(sorted(extra))}")


def joined(values: list[str] | str) -> str:
    """Rights or categories as the state tables keep them: comma separated, or "all"."""
    return values if isinstance(values, str) else ",".join(values)
