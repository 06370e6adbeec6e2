"""Parsing store URLs and locators: query parameters, sizes, names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from storage.errors import InvalidLocator, StoreMisconfigured

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_SIZE = re.compile(r"(\d+)\s*(|b|kib|k|mib|m|gib|g)", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2}
_UNITS |= {"g": 1024**3, "gib": 1024**3}


@dataclass
class StoreURL:
    """A store URL split into parts; parameters are consumed with ``take`` and the rest
    rejected by ``finish`` so that a misspelt parameter is an error, not silently ignored."""

    url: str
    scheme: str
    netloc: str
    hostname: str | None
    port: int | None
    username: str | None
    password: str | None
    path: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> StoreURL:
        parts = urlsplit(url)
        params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
            if key in params:
                raise StoreMisconfigured(f"parameter {key!r} is given twice in {redact(url)}")
            params[key] = value
        try:
            port = parts.port
        except ValueError as exc:
            raise StoreMisconfigured(f"the port in {redact(url)} is not a number") from exc
        return cls(
            url=url,
            scheme=parts.scheme.lower(),
            netloc=parts.netloc,
            hostname=parts.hostname,
            port=port,
            username=parts.username,
            password=parts.password,
            path=parts.path,
            params=params,
        )

    def take(self, key: str, default: str | None = None) -> str | None:
        return self.params.pop(key, default)

    def take_size(self, key: str, default: int, *, minimum: int = 0) -> int:
        raw = self.take(key)
        if raw is None:
            return default
        match = _SIZE.fullmatch(raw.strip())
        if not match:
            raise StoreMisconfigured(
                f"{key}={raw!r} in {redact(self.url)} is not a size; write e.g. 8MiB or 8388608"
            )
        value = int(match.group(1)) * _UNITS[match.group(2).lower()]
        if value < minimum:
            raise StoreMisconfigured(
                f"{key}={raw} in {redact(self.url)} is too small; the minimum is {minimum} bytes"
            )
        return value

    def take_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        raw = self.take(key)
        if raw is None:
            return default
        if not raw.strip().isdigit() or int(raw) < minimum:
            raise StoreMisconfigured(
                f"{key}={raw!r} in {redact(self.url)} must be a whole number of at least {minimum}"
            )
        return int(raw)

    def take_float(self, key: str, default: float) -> float:
        raw = self.take(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value > 0:
            raise StoreMisconfigured(
                f"{key}={raw!r} in {redact(self.url)} must be a positive number of seconds"
            )
        return value

    def take_bool(self, key: str, default: bool) -> bool:
        raw = self.take(key)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise StoreMisconfigured(f"{key}={raw!r} in {redact(self.url)} must be true or false")

    def take_name(self, default: str) -> str:
        name = self.take("name", default) or default
        check_store_name(name, self.url)
        return name

    def finish(self, allowed: tuple[str, ...]) -> None:
        """Reject parameters nobody took."""
        if self.params:
            unknown = ", ".join(sorted(self.params))
            known = ", ".join(allowed)
            raise StoreMisconfigured(
                f"unknown parameter(s) {unknown} in {redact(self.url)}; "
                f"a {self.scheme}:// store takes: {known}"
            )


def check_store_name(name: str, url: str = "") -> str:
    if not _NAME.fullmatch(name):
        where = f" (in {redact(url)})" if url else ""
        raise StoreMisconfigured(
            f"store name {name!r}{where} must be 1-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


_SECRET_PARAMS = ("secret_access_key", "session_token", "password", "token")


def redact(url: str) -> str:
    """``url`` with passwords and secret parameters replaced by ``***``, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:***@{host}"
    query = "&".join(
        f"{key}=***" if key in _SECRET_PARAMS else (f"{key}={value}" if value else key)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt


def split_locator(locator: str) -> tuple[str, str, str]:
    """Split ``scheme://authority/path`` into its three parts (path without leading /)."""
    if not isinstance(locator, str):
        raise InvalidLocator(f"a locator is a string, not {type(locator).__name__}")
    scheme, sep, rest = locator.partition("://")
    if not sep or not scheme:
        raise InvalidLocator(f"not a locator (expected scheme://store/key): {locator!r}")
    authority, _, path = rest.partition("/")
    return scheme, authority, path
