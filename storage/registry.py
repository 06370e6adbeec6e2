"""Opening stores by URL: a registry keyed by URL scheme that imports a backend only when used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import cast

from storage._config import redact
from storage.errors import StoreMisconfigured
from storage.types import BlobStore

#: scheme -> (module, class, what to install if the import fails)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "file": ("storage.local", "LocalStore", ""),
    "s3": ("storage.s3", "S3Store", "boto3"),
    "ipfs+http": ("storage.ipfs", "IpfsStore", "httpx"),
    "ipfs+https": ("storage.ipfs", "IpfsStore", "httpx"),
}


def schemes() -> tuple[str, ...]:
    """The URL schemes ``open_store`` understands."""
    return tuple(sorted(_BACKENDS))


def backend_for(url: str) -> Callable[[str], BlobStore]:
    """The ``from_url`` constructor of the backend for ``url``'s scheme."""
    scheme, sep, _ = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in _BACKENDS:
        known = ", ".join(f"{name}://" for name in schemes())
        raise StoreMisconfigured(
            f"unknown blob store URL {redact(url)!r}: the scheme must be one of {known}"
        )
    module_name, class_name, package = _BACKENDS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StoreMisconfigured(
            f"{scheme}:// stores need the {package!r} package ({exc}); install it to use "
            f"{redact(url)}"
        ) from exc
    return cast(Callable[[str], BlobStore], getattr(module, class_name).from_url)


def open_store(
    urls: str | Sequence[str], *, write_quorum: int | None = None, check: bool = True
) -> BlobStore:
    """Open the blob store(s) named by ``urls``.

    One URL gives that backend; several give a ``ReplicatedStore`` that writes to all of
    them and succeeds when ``write_quorum`` (default: all) have the body, and reads from
    them in the order given. A URL string may also hold several URLs separated by
    whitespace or commas (as in an environment variable).

    With ``check`` (the default) every store is checked now, so a wrong scheme, bucket,
    endpoint or credential fails at start-up with a message that says what to fix
    (StoreMisconfigured); a store that cannot be reached raises StoreUnavailable, unless
    the others still make up the write quorum.
    """
    if isinstance(urls, str):
        url_list = [part for part in urls.replace(",", " ").split() if part]
    else:
        url_list = [str(url) for url in urls]
    if not url_list:
        raise StoreMisconfigured("no blob store URL given; e.g. file:///var/lib/ehrgate/blobs")
    stores: list[BlobStore] = []
    try:
        for url in url_list:
            stores.append(backend_for(url)(url))
        store: BlobStore
        if len(stores) == 1:
            if write_quorum not in (None, 1):
                raise StoreMisconfigured(
                    f"write_quorum={write_quorum} needs at least that many stores; one was given"
                )
            store = stores[0]
        else:
            from storage.replicated import ReplicatedStore

            store = ReplicatedStore(stores, write_quorum=write_quorum)
        if check:
            store.check()
    except BaseException:
        for opened in stores:
            opened.close()
        raise
    return store
