"""The P7 baseline: a bare FastAPI app answering one small JSON document, nothing else."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

_DOCUMENT = {
    "id": "dr-bench",
    "role": "clinician",
    "signing_public_key": "A" * 44,
    "encryption_public_key": "B" * 1624,
    "suspended": False,
}


@app.get("/json")
async def document() -> dict[str, object]:
    return _DOCUMENT
