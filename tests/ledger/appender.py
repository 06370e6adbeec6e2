"""A separate process that appends to a ledger: used by the no-fork test.

    python -m tests.ledger.appender URL LEDGER_KEY_HEX COUNT NAME

Submits COUNT `access` transactions one by one and prints the indices it was given as JSON.
"""

from __future__ import annotations

import json
import sys

from envelope import SigningKey
from ledger import Ledger
from ledger.wire import builders as b


def main() -> None:
    url, key_hex, count, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    indices = []
    with Ledger.open(url, SigningKey(bytes.fromhex(key_hex))) as ledger:
        for n in range(count):
            tx = b.access(
                ledger.signer,
                actor=ledger.signer.id,
                action="list",
                pseudonym="00" * 32,
                decision="denied",
                reason=f"{name} {n}",
            )
            indices.append(ledger.submit(tx).index)
    print(json.dumps(indices))


if __name__ == "__main__":
    main()
