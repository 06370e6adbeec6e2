"""A stock X-Wing implementation and ours agree: keys from seeds, KEM and HPKE both ways.

The stock side is @hpke/hybridkem-x-wing with @hpke/core (tests/node/xwing, run by node).
Install it once with `npm ci --omit=optional --no-audit --no-fund` in tests/node/xwing;
without it these tests fail (never skip) and say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke

from envelope import HybridPrivateKey, PatientKey
from envelope.kem import HybridPublicKey
from envelope.xwing import CIPHERTEXT_LEN, decapsulate, encapsulate

NODE_PROJECT = Path(__file__).parent.parent / "node" / "xwing"
INSTALL = f"cd {NODE_PROJECT} && npm ci --omit=optional --no-audit --no-fund"
XWING_KEM_ID = 0x647A
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def stock(*ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Run *ops* through the stock implementation; every result must have succeeded."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the X-Wing interoperability test needs Node.js ≥ 18")
    if not (NODE_PROJECT / "node_modules" / "@hpke" / "hybridkem-x-wing").is_dir():
        pytest.fail(f"the stock X-Wing implementation is not installed: run `{INSTALL}`")
    answer = subprocess.run(
        [node, str(NODE_PROJECT / "xwing.mjs")],
        input=json.dumps({"ops": list(ops)}).encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr.decode()
    document = json.loads(answer.stdout)
    assert document["kem_id"] == XWING_KEM_ID
    results: list[dict[str, Any]] = document["results"]
    return results


def seeds() -> list[bytes]:
    return [bytes(32), bytes(range(32)), os.urandom(32), os.urandom(32)]


def test_keys_from_seeds_agree() -> None:
    cases = seeds()
    results = stock(*({"op": "keygen", "seed": seed.hex()} for seed in cases))
    for seed, result in zip(cases, results, strict=True):
        assert bytes.fromhex(result["public_key"]) == HybridPrivateKey(seed).public_key().to_bytes()


def test_record_key_seed_loads_in_the_stock_implementation() -> None:
    patient_key = PatientKey.generate()
    seed = patient_key.record_key_seed()
    (result,) = stock({"op": "keygen", "seed": seed.hex()})
    assert bytes.fromhex(result["public_key"]) == patient_key.record_public_key().to_bytes()


def test_stock_encapsulation_decapsulates_here() -> None:
    key = HybridPrivateKey.generate()
    public = key.public_key().to_bytes().hex()
    eseed = hashlib.sha512(b"interop eseed").digest()
    results = stock(
        {"op": "encap", "public_key": public},
        {"op": "encap", "public_key": public, "eseed": eseed.hex()},
    )
    for result in results:
        ciphertext = bytes.fromhex(result["ciphertext"])
        assert len(ciphertext) == CIPHERTEXT_LEN
        assert decapsulate(key.key_parts, ciphertext).hex() == result["shared_secret"]


def test_our_encapsulation_decapsulates_in_the_stock_implementation() -> None:
    seed = os.urandom(32)
    public = HybridPrivateKey(seed).public_key().to_bytes()
    made = [encapsulate(public) for _ in range(3)]
    results = stock(
        *({"op": "decap", "seed": seed.hex(), "ciphertext": ct.hex()} for ct, _ in made)
    )
    for (_, shared), result in zip(made, results, strict=True):
        assert result["shared_secret"] == shared.hex()


def test_a_changed_ciphertext_gives_another_secret_on_both_sides() -> None:
    """Implicit rejection, as the draft has it: no error, an unrelated secret."""
    seed = os.urandom(32)
    key = HybridPrivateKey(seed)
    ciphertext, shared = encapsulate(key.public_key().to_bytes())
    flipped = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    (result,) = stock({"op": "decap", "seed": seed.hex(), "ciphertext": flipped.hex()})
    ours = decapsulate(key.key_parts, flipped)
    assert ours != shared
    assert result["shared_secret"] == ours.hex()


def test_hpke_stock_seals_and_we_open() -> None:
    """Base mode, X-Wing + HKDF-SHA256 + AES-256-GCM: the suite every wrapped key uses."""
    key = HybridPrivateKey.generate()
    info = b"ehrgate/capsule-key/v1\x00dr-house"
    plaintext = os.urandom(32)
    (result,) = stock(
        {
            "op": "seal",
            "public_key": key.public_key().to_bytes().hex(),
            "info": info.hex(),
            "plaintext": plaintext.hex(),
        }
    )
    sealed = bytes.fromhex(result["enc"]) + bytes.fromhex(result["ciphertext"])
    assert key.open(sealed, info=info) == plaintext


def test_hpke_we_seal_and_stock_opens() -> None:
    seed = os.urandom(32)
    public: HybridPublicKey = HybridPrivateKey(seed).public_key()
    info = b"ehrgate/key-share/v1\x00" + b"a" * 64 + b"\x00dr-house"
    plaintext = os.urandom(32)
    sealed = public.seal(plaintext, info=info)
    results = stock(
        {
            "op": "open",
            "seed": seed.hex(),
            "info": info.hex(),
            "enc": sealed[:CIPHERTEXT_LEN].hex(),
            "ciphertext": sealed[CIPHERTEXT_LEN:].hex(),
        },
        {  # the wrong info must fail there too, or the check above proves little
            "op": "open",
            "seed": seed.hex(),
            "info": (info + b"x").hex(),
            "enc": sealed[:CIPHERTEXT_LEN].hex(),
            "ciphertext": sealed[CIPHERTEXT_LEN:].hex(),
        },
    )
    assert results[0]["plaintext"] == plaintext.hex()
    assert "error" in results[1]
