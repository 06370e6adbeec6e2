"""Answers made without a model round trip say exactly what their documented model says."""

from __future__ import annotations

import json

import pytest

from gateway.models import IdentityOut
from gateway.views import identity_json, identity_out
from ledger.results import Identity


@pytest.mark.parametrize(
    "identity",
    [
        Identity("dr-a", "clinician", "S" * 44, "E" * 1624, 3, None, None),
        Identity("dr-b", "clinician", "S" * 44, "E" * 1624, 3, 9, "left"),
        Identity("pat\u00e9", "patient", "S" * 44, None, 1, None, None),
    ],
)
def test_identity_json_is_the_identity_model(identity: Identity) -> None:
    response = identity_json(identity)
    assert response.media_type == "application/json"
    document = json.loads(bytes(response.body))
    assert IdentityOut.model_validate(document) == identity_out(identity)
    assert document == identity_out(identity).model_dump()
