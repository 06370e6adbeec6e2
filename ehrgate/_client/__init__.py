"""The parts `ehrgate.Client` delegates to; private, the public surface is `Client`.

- `session`: the connection, the caller's keys, JSON requests and the time form.
- `trust`: the pinned ledger key, verified tree heads and receipts, consistency between
  heads, paging through the ledger's entries and blocks, offline verification.
- `directory`: enrolled identities and registered patients, looked up once and kept.
- `consent`: what is signed and submitted about identities, patients and permissions.
- `upload`: sealing a body to the patient, streaming it, committing its record.
- `fetch`: a record's proof, the patient's key, the capsule and the body, each checked,
  and the plaintext put in place only when all passed.
"""
