"""Ed25519 checks of many transactions at once, optionally in worker processes.

A `SignatureChecker` with workers sends a batch's (key, message, signature) triples to a
process pool in a few large chunks, which lets every core verify. Without workers it checks
in the calling thread. `cryptography` releases the GIL while OpenSSL verifies (two threads
verify twice as many signatures a second as one, on two cores), so threads verify in
parallel too, without the pickling: the ledger checks a transaction in its submitter's
thread, and `Ledger.submit_many` splits a large submission across a thread per core.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Triple = tuple[bytes, bytes, bytes]  # raw public key, message, signature


def check_triples(triples: Sequence[Triple]) -> list[bool]:
    """Whether each signature verifies (runs in a worker process or in-line)."""
    keys: dict[bytes, Ed25519PublicKey] = {}
    results = []
    for raw, message, signature in triples:
        key = keys.get(raw)
        if key is None:
            try:
                key = keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                results.append(False)
                continue
        try:
            key.verify(signature, message)
            results.append(True)
        except InvalidSignature:
            results.append(False)
    return results


class SignatureChecker:
    """Checks batches of signatures, in *workers* processes when workers > 0."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # spawn, not fork: the ledger runs threads, and forking a threaded process
            # can copy a held lock into the child.
            self._pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )

    def check(self, triples: Sequence[Triple]) -> list[bool]:
        if self._pool is None or len(triples) < 64:
            return check_triples(triples)
        # One chunk per worker plus one for this process, which would otherwise only wait.
        parts = self.workers + 1
        size = -(-len(triples) // parts)
        chunks = [triples[i : i + size] for i in range(0, len(triples), size)]
        futures = [self._pool.submit(check_triples, chunk) for chunk in chunks[1:]]
        results = check_triples(chunks[0])
        for future in futures:
            results.extend(future.result())
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
