"""Which webhook URLs the gateway accepts: https only, never the gateway itself.

Plain http is accepted only to a loopback address, and only when the gateway's settings say
so (`webhook_allow_loopback`, for tests and local development); without it loopback,
link-local and unspecified addresses are refused whatever the scheme, so that a caller
cannot make the gateway post to services on its own host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


class WebhookUrlRefused(ValueError):
    """The URL cannot be a webhook endpoint; the message says why, in words to act on."""


@dataclass(frozen=True, slots=True)
class Origin:
    """A scheme-less network location: host (lower case) and port."""

    host: str
    port: int


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def origin_of(url: str) -> Origin | None:
    """The host and port *url* names, or None if it names none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return Origin(parts.hostname.lower().rstrip("."), port or _default_port(parts.scheme))


def _is_local(host: str) -> bool:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_link_local or address.is_unspecified


def _is_loopback(host: str) -> bool:
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: str, *, gateway: list[Origin], allow_loopback: bool) -> str:
    """*url* if the gateway may post to it; WebhookUrlRefused saying why otherwise.

    *gateway* lists where the gateway itself answers (its public URL, the address the
    request reached): a URL at one of them is refused.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise WebhookUrlRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise WebhookUrlRefused(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise WebhookUrlRefused(f"a webhook URL must start with https://, not {scheme or url!r}")
    origin = origin_of(url)
    if origin is None:
        raise WebhookUrlRefused("the URL names no host (or an invalid port)")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("the URL must not carry a user name or password")
    if parts.fragment:
        raise WebhookUrlRefused("the URL must not have a #fragment")
    local = _is_local(origin.host)
    if scheme == "http" and not (allow_loopback and _is_loopback(origin.host)):
        raise WebhookUrlRefused(
            "a webhook URL must use https:// (plain http is allowed only to a loopback"
            " address, and only when the gateway is configured for it)"
        )
    if local and not allow_loopback:
        raise WebhookUrlRefused(
            f"the URL points at a local address ({origin.host}); give an address other"
            " machines can reach"
        )
    if origin in gateway:
        raise WebhookUrlRefused(
            "the URL points at this gateway itself; give the address of the system that"
            " should receive the notifications"
        )
    return url
