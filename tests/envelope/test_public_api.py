"""The package exports exactly its public names."""

from __future__ import annotations

import envelope


def test_all_names_exist_and_are_sorted() -> None:
    for name in envelope.__all__:
        assert hasattr(envelope, name), name
    assert envelope.__all__ == sorted(envelope.__all__, key=lambda n: (not n.isupper(), n))


def test_public_names_are_all_exported() -> None:
    public = {name for name in vars(envelope) if not name.startswith("_")}
    modules = {
        "backup",
        "body",
        "canonical",
        "capsule",
        "errors",
        "identity",
        "kem",
        "keyfile",
        "keyshare",
        "keyupgrade",
        "patient",
        "research",
        "rotation",
        "scoped",
        "scopedshare",
        "sealer",
        "xwing",
    }
    assert public - modules == set(envelope.__all__)


def test_every_error_derives_from_envelope_error() -> None:
    for name in envelope.__all__:
        value = getattr(envelope, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, envelope.EnvelopeError), name
