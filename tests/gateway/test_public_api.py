"""The gateway package's public names."""

from __future__ import annotations

import gateway


def test_public_names_are_exported_and_importable() -> None:
    assert sorted(gateway.__all__) == [
        "AUTH_PURPOSE",
        "GatewayError",
        "IdentityDirectory",
        "Principal",
        "Settings",
        "auth_statement",
        "create_app",
    ]
    for name in gateway.__all__:
        assert getattr(gateway, name) is not None


def test_the_auth_statement_is_what_clients_sign() -> None:
    assert gateway.auth_statement(challenge="c", identity_id="i", audience="a") == {
        "purpose": "ehrgate/auth/v1",
        "challenge": "c",
        "identity_id": "i",
        "audience": "a",
    }
