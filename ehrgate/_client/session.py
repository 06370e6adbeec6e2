"""A client's session with one gateway: its connection, the caller's keys, JSON requests.

Every other part of the client asks the session for the gateway's JSON answers and for the
keys a call needs, which raise `UsageError` when the caller did not give them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from ehrgate._http import Connection
from ehrgate.errors import MalformedAnswer, UsageError
from envelope import IdentityKeys, PatientKey, PatientKeys
from ledger.wire.clock import format_time

TimeLike = datetime | str


def ledger_time(value: TimeLike) -> str:
    """The ledger's time form of an aware datetime or an ISO 8601 text with a zone."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(f"{value!r} is not an ISO 8601 time") from exc
    else:
        moment = value
    if moment.tzinfo is None:
        raise UsageError(f"the time {value} needs a time zone (e.g. Z or +01:00)")
    return format_time(moment)


def ledger_now() -> str:
    return format_time(datetime.now(UTC))


def items(answer: Any, field: str) -> list[Any]:
    """The list *field* of a gateway's answer."""
    found = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(found, list):
        raise MalformedAnswer(f"the gateway's answer has no list {field!r}")
    return found


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise MalformedAnswer(
            f"the gateway answered {response.request.url.path} with something not JSON"
        ) from exc


class Session:
    """The connection and keys of one `Client`.

    *identity* signs transactions and logs in; *patient*, when the caller is a patient,
    also gives the pseudonym and K; *patient_key* is K held otherwise.
    """

    def __init__(
        self,
        connection: Connection,
        identity: IdentityKeys | None,
        patient: PatientKeys | None,
        patient_key: PatientKey | None,
    ) -> None:
        self.connection = connection
        self.url = connection.url
        self.identity = identity
        self.patient = patient
        self.patient_key = patient_key

    def get(
        self, path: str, params: dict[str, Any] | None = None, *, authenticated: bool = True
    ) -> Any:
        response = self.connection.request("GET", path, params=params, authenticated=authenticated)
        return json_of(response)

    def post(self, path: str, body: Any, *, authenticated: bool = True) -> Any:
        response = self.connection.request("POST", path, json=body, authenticated=authenticated)
        return json_of(response)

    def put(self, path: str, body: Any) -> Any:
        return json_of(self.connection.request("PUT", path, json=body))

    def delete(self, path: str) -> Any:
        return json_of(self.connection.request("DELETE", path))

    def signer(self) -> IdentityKeys:
        if self.identity is None:
            raise UsageError("this call needs an identity: give a key file (--as KEYFILE)")
        return self.identity

    def patient_keys(self, what: str) -> PatientKeys:
        """The patient's keys, for a call only the patient may make (*what* it does)."""
        if self.patient is None:
            raise UsageError(f"only a patient can {what}: use the patient's key file")
        return self.patient

    def pseudonym(self, given: str | None) -> str:
        """*given*, or the caller's own pseudonym when the caller is a patient."""
        if given is not None:
            return given
        if self.patient is None:
            raise UsageError("give the patient's pseudonym (--patient PSEUDONYM)")
        return self.patient.pseudonym
