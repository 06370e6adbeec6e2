"""Notification e-mails: plain text, ids and categories only, sent with smtplib.

The Message-ID is derived from the event id, so a retried e-mail is recognisably the same
message. The address is given here already opened and is never logged: a failure is
reported by its class and the SMTP reply code only.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from gateway.notify.payloads import summary_lines

_SUBJECTS = {
    "access_request": "A clinician asks for access to your records",
    "break_glass": "Emergency access to your records",
    "denied_read": "A read of your records was refused",
    "grant_expiring": "A permission you granted ends soon",
    "erasure_done": "Records were erased",
    "export_done": "Records were exported to a study",
}


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0


class MailFailed(Exception):
    """The SMTP server did not take the message; the text names no address."""


def build_message(
    payload: Mapping[str, Any], *, sender: str, to: str, gateway_id: str
) -> EmailMessage:
    kind = str(payload["type"])
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"ehrgate: {_SUBJECTS.get(kind, kind.replace('_', ' '))}"
    message["Date"] = formatdate(usegmt=True)
    domain = "".join(c if c.isalnum() or c in ".-" else "-" for c in gateway_id) or "ehrgate"
    message["Message-ID"] = f"<{payload['id']}@{domain}>"
    lines = [
        f"The gateway {gateway_id} reports an event about your health records.",
        "",
        *summary_lines(payload),
        "",
        "This message carries identifiers only. Sign in to ehrgate to see and answer it;",
        "your audit log lists every access to your records.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def send(server: SmtpServer, message: EmailMessage) -> None:
    """Hand *message* to *server*; MailFailed if it is not accepted."""
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout) as smtp:
            if server.starttls:
                smtp.starttls()
            if server.username is not None:
                smtp.login(server.username, server.password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise MailFailed(f"SMTP server answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailFailed(f"SMTP failed: {type(exc).__name__}") from None
    if refused:
        raise MailFailed("SMTP server refused the recipient")
