"""Body tickets on their own: what verifies, and each way one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway import tickets

KEY = tickets.ticket_key(b"\x07" * 32)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICKET = tickets.Ticket(
    entry_index=41,
    entry_hash="ab" * 32,
    record_id="rec-1",
    caller="dr-grey",
    expires=int((NOW + tickets.TICKET_LIFETIME).timestamp()),
)


def check(
    text: str, *, record_id: str = "rec-1", caller: str = "dr-grey", now: datetime = NOW
) -> tickets.Ticket:
    return tickets.verify(KEY, text, record_id=record_id, caller=caller, now=now)


def test_a_ticket_verifies_and_says_what_it_was_issued_for() -> None:
    assert check(tickets.issue(KEY, TICKET)) == TICKET
    session = tickets.Ticket(1, "cd" * 32, "rec-2", "dr-x", TICKET.expires, "bg-session-1")
    assert check(tickets.issue(KEY, session), record_id="rec-2", caller="dr-x") == session


def test_the_key_is_the_ledger_keys_and_no_other() -> None:
    assert tickets.ticket_key(b"\x07" * 32) == KEY
    assert tickets.ticket_key(b"\x08" * 32) != KEY
    with pytest.raises(tickets.TicketRefused, match="does not verify"):
        check(tickets.issue(tickets.ticket_key(b"\x08" * 32), TICKET))


@pytest.mark.parametrize("position", [0, 5, 20, -3])
def test_a_changed_character_is_refused(position: int) -> None:
    text = tickets.issue(KEY, TICKET)
    changed = list(text)
    changed[position] = "A" if changed[position] != "A" else "B"
    with pytest.raises(tickets.TicketRefused):
        check("".join(changed))


def test_an_expired_ticket_is_refused_at_its_expiry() -> None:
    text = tickets.issue(KEY, TICKET)
    check(text, now=NOW + tickets.TICKET_LIFETIME - timedelta(seconds=1))
    with pytest.raises(tickets.TicketRefused, match="expired"):
        check(text, now=NOW + tickets.TICKET_LIFETIME)


def test_a_ticket_is_for_one_record_and_one_caller() -> None:
    text = tickets.issue(KEY, TICKET)
    with pytest.raises(tickets.TicketRefused, match="for record rec-1, not rec-2"):
        check(text, record_id="rec-2")
    with pytest.raises(tickets.TicketRefused, match="another identity"):
        check(text, caller="dr-white")


@pytest.mark.parametrize("text", ["", "x", "a.b.c", "!!!.???", "e30.AAAA", "W10." + "A" * 43])
def test_garbage_is_refused_not_crashed_on(text: str) -> None:
    with pytest.raises(tickets.TicketRefused):
        check(text)


def test_a_well_signed_payload_of_the_wrong_form_is_refused() -> None:
    import base64
    import hashlib
    import hmac

    payload = b'["t1",1,"h","rec-1","dr-grey","soon",null]'
    mac = hmac.new(KEY, payload, hashlib.sha256).digest()
    text = (
        base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        + "."
        + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    )
    with pytest.raises(tickets.TicketRefused, match="malformed"):
        check(text)
