"""Body tickets: what binds the body read after a one-round-trip open to the open's audit.

`GET /v1/records/{id}/open` decides the read and writes ONE `access` entry; its answer
carries a ticket for the body. The ticket names that entry (index and hash), the record,
the caller and an expiry, and is MAC'd (HMAC-SHA256) with a key derived from the ledger's
signing key: every replica of a gateway holds that key (it signs their `access` entries),
so a ticket issued by one replica is good at all of them, and nobody without the key can
make or alter one. Nothing is stored: a ticket is checked by its MAC and its fields.

A ticket is good for its caller and record until it expires (`TICKET_LIFETIME`, short: the
body read follows the open at once). Within that time the same caller may read the body
again with it (a retry after a cut connection), still under the same entry; the right
itself is re-checked on every read and every segment, so a ticket never outlives a right.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

TICKET_LIFETIME = timedelta(seconds=60)
_VERSION = "t1"
_KEY_LABEL = b"ehrgate body ticket key v1"
_MAX_TICKET = 2048


class TicketRefused(Exception):
    """A ticket that does not verify, has expired, or is not for this read (the reason)."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket says: the open's `access` entry, the record, the caller, the expiry."""

    entry_index: int
    entry_hash: str
    record_id: str
    caller: str
    expires: int
    """Unix seconds."""
    break_glass: str | None = None
    """The break-glass session the open was allowed under, if it was."""

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def ticket_key(signing_key_bytes: bytes) -> bytes:
    """The MAC key of tickets, derived from the ledger's private signing key."""
    return hmac.new(signing_key_bytes, _KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)


def issue(key: bytes, ticket: Ticket) -> str:
    """The ticket as text: base64url(payload) "." base64url(HMAC-SHA256(key, payload))."""
    payload = json.dumps(
        [
            _VERSION,
            ticket.entry_index,
            ticket.entry_hash,
            ticket.record_id,
            ticket.caller,
            ticket.expires,
            ticket.break_glass,
        ],
        separators=(",", ":"),
    ).encode("utf-8")
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def _parse(payload: bytes) -> Ticket:
    try:
        fields = json.loads(payload)
    except ValueError as exc:
        raise TicketRefused("the body ticket is malformed") from exc
    if not isinstance(fields, list) or len(fields) != 7 or fields[0] != _VERSION:
        raise TicketRefused("the body ticket is of an unknown form")
    _, index, entry_hash, record_id, caller, expires, session = fields
    if not (
        isinstance(index, int)
        and isinstance(entry_hash, str)
        and isinstance(record_id, str)
        and isinstance(caller, str)
        and isinstance(expires, int)
        and (session is None or isinstance(session, str))
    ):
        raise TicketRefused("the body ticket is malformed")
    return Ticket(index, entry_hash, record_id, caller, expires, session)


def verify(key: bytes, text: str, *, record_id: str, caller: str, now: datetime) -> Ticket:
    """The ticket *text*, if its MAC verifies and it is for *record_id* and *caller* and
    has not expired at *now*; TicketRefused (saying which) otherwise."""
    if len(text) > _MAX_TICKET or text.count(".") != 1:
        raise TicketRefused("the body ticket is malformed")
    encoded, _, encoded_mac = text.partition(".")
    try:
        payload, mac = _unb64(encoded), _unb64(encoded_mac)
    except (binascii.Error, ValueError) as exc:
        raise TicketRefused("the body ticket is malformed") from exc
    expected = hmac.new(key, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise TicketRefused(
            "the body ticket does not verify: this gateway did not issue it, or it was altered"
        )
    ticket = _parse(payload)
    if ticket.record_id != record_id:
        raise TicketRefused(f"the body ticket is for record {ticket.record_id}, not {record_id}")
    if ticket.caller != caller:
        raise TicketRefused("the body ticket was issued to another identity")
    if now.timestamp() >= ticket.expires:
        raise TicketRefused(
            f"the body ticket expired at {ticket.expires_at.isoformat()}; open the record again"
        )
    return ticket
