"""The web app's requests, issued from Python for `bench.load` (a browser cannot run at load).

`WebReader` signs in and opens records the way web/src/app does for a clinician, request for
request and in the same order:

  sign in   POST /v1/auth/challenge, POST /v1/auth/token, GET /v1/ledger/head (session.ts)
  list      GET /v1/patients/{pseudonym}/records (records.ts `listRecords`)
  open      GET /v1/records/{id}/open?known_size=N (record, proof, capsule and key share
            under one `access` entry, with the consistency proof from the pinned tree);
            GET /v1/ledger/consistency only when the open did not carry the proof between the
            pinned head and its own (session.ts `advancePin`);
            GET /v1/identities/{uploader}/keys (identitykeys.ts `signingKeyAt`);
            GET /v1/records/{id}/open/body?ticket=…, decrypted segment by segment
            (records.ts `openRecord`)

and checks what the app checks before it shows a document: the receipt and the tree head
against the pinned ledger key, the consistency proof, the capsule's hash, the key share, the
capsule against the ledger's record, the uploader's signature, every segment and the body's
hash. The app's token is a bearer token like the SDK's; there is no other request signing.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from ehrgate.models import Receipt, Record, TreeHead
from ehrgate.verification import check_tree_head, record_transaction, verify_receipt
from envelope import (
    IdentityKeys,
    VerifyKey,
    b64decode,
    b64encode,
    open_scoped_share,
    verify_capsule_signature,
)
from ledger.wire.merkle import verify_consistency


class WebCheckFailed(Exception):
    """A check the web app makes before it shows a record failed."""


class WebReader:
    """One signed-in web app session of a clinician (its own connection and token)."""

    def __init__(self, client: httpx.Client, keys: IdentityKeys) -> None:
        self.client = client
        self.keys = keys
        self.token = ""
        self.ledger_key: VerifyKey | None = None
        self.pinned: TreeHead | None = None

    def _get(self, path: str, **params: Any) -> httpx.Response:
        response = self.client.get(
            path, params=params or None, headers={"Authorization": f"Bearer {self.token}"}
        )
        response.raise_for_status()
        return response

    def sign_in(self) -> None:
        challenge = self.client.post("/v1/auth/challenge", json={"identity_id": self.keys.id})
        challenge.raise_for_status()
        issued = challenge.json()
        statement = {
            "purpose": "ehrgate/auth/v1",
            "challenge": issued["challenge"],
            "identity_id": self.keys.id,
            "audience": issued["audience"],
        }
        granted = self.client.post(
            "/v1/auth/token",
            json={
                "identity_id": self.keys.id,
                "challenge": issued["challenge"],
                "signature": b64encode(self.keys.sign(statement)),
            },
        )
        granted.raise_for_status()
        self.token = granted.json()["access_token"]
        head = self._get("/v1/ledger/head").json()
        self.ledger_key = VerifyKey(b64decode(head["ledger_public_key"], length=32))
        if head["tree_head"] is not None:
            self.pinned = TreeHead.from_json(head["tree_head"])
            check_tree_head(self.pinned, self.ledger_key)

    def list_records(self, pseudonym: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._get(f"/v1/patients/{pseudonym}/records").json()[
            "records"
        ]
        return records

    def _advance_pin(self, head: TreeHead, offered: dict[str, Any] | None = None) -> None:
        assert self.ledger_key is not None
        check_tree_head(head, self.ledger_key)
        pinned = self.pinned
        if pinned is not None and head.tree_size < pinned.tree_size:
            raise WebCheckFailed("the gateway shows fewer entries than pinned")
        if pinned is not None and head.tree_size > pinned.tree_size:
            if (
                offered is not None
                and offered.get("old_size") == pinned.tree_size
                and offered.get("new_size") == head.tree_size
            ):
                proof = offered["proof"]
            else:
                proof = self._get(
                    "/v1/ledger/consistency", old_size=pinned.tree_size, new_size=head.tree_size
                ).json()["proof"]
            verify_consistency(
                pinned.tree_size,
                head.tree_size,
                bytes.fromhex(pinned.root),
                bytes.fromhex(head.root),
                [bytes.fromhex(node) for node in proof],
            )
        elif pinned is not None and head.root != pinned.root:
            raise WebCheckFailed("two different ledgers of the same size")
        self.pinned = head

    def open_record(self, record_id: str) -> bytes:
        """The plaintext of *record_id*, after every check the app makes."""
        assert self.ledger_key is not None
        known = {} if self.pinned is None else {"known_size": self.pinned.tree_size}
        answer = self._get(f"/v1/records/{record_id}/open", **known).json()
        record = Record.from_json(answer["record"])
        receipt = Receipt.from_json(answer["receipt"])
        tx = record_transaction(answer["transaction"], record)
        verify_receipt(receipt, self.ledger_key, tx_hash=tx.tx_hash)
        self._advance_pin(receipt.tree_head, answer.get("consistency"))
        capsule = b64decode(answer["capsule"])
        if hashlib.sha256(capsule).hexdigest() != record.capsule_sha256:
            raise WebCheckFailed("the capsule is not the one on the ledger")
        share = answer["key_share"]
        if share is None:
            share = self._get(f"/v1/patients/{record.pseudonym}/key-share").json()
        seeds = open_scoped_share(
            b64decode(share["sealed_key"]),
            self.keys.encryption_key,
            pseudonym=record.pseudonym,
            grantee_id=self.keys.id,
        )
        opened = seeds.open_capsule(capsule)
        if opened.body_sha256 != record.body_sha256 or opened.body_size != record.size:
            raise WebCheckFailed("the capsule describes another body than the ledger's")
        if opened.signer_id != record.uploader or opened.uploader_id != record.writer:
            raise WebCheckFailed("the capsule names another uploader than the ledger")
        history = self._get(f"/v1/identities/{opened.signer_id}/keys").json()
        keys = [
            k
            for k in history["keys"]
            if k["valid_from"] <= record.entry_index
            and (k["valid_until"] is None or record.entry_index < k["valid_until"])
        ]
        if history["id"] != opened.signer_id or not keys:
            raise WebCheckFailed(f"no key of {opened.signer_id} at entry {record.entry_index}")
        verify_capsule_signature(
            opened,
            VerifyKey(b64decode(keys[0]["signing_public_key"], length=32)),
            pseudonym=record.pseudonym,
            category=record.category,
            created_at=record.created_at,
        )
        opener = opened.body_opener()
        digest = hashlib.sha256()
        pieces: list[bytes] = []
        headers = {"Authorization": f"Bearer {self.token}"}
        body_url = f"/v1/records/{record_id}/open/body"
        params = {"ticket": answer["ticket"]}
        with self.client.stream("GET", body_url, params=params, headers=headers) as body:
            body.raise_for_status()
            for chunk in body.iter_bytes():
                digest.update(chunk)
                pieces.extend(opener.update_pieces(chunk))
        if digest.hexdigest() != record.body_sha256:
            raise WebCheckFailed("the body's SHA-256 is not the ledger's")
        pieces.append(opener.finalize())
        return b"".join(pieces)
