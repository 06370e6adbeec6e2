"""A live gateway whose checkpoints one real witness (uvicorn, loopback) cosigns."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway import Settings
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from tests.client.live import Cast, live_cast
from tests.federation.hospitals import LoopbackServer, witness_app
from witness import write_witness_key


@contextmanager
def witnessed_cast(root: Path, origin: str, witness_name: str) -> Iterator[tuple[Cast, str]]:
    """A cast whose gateway (log *origin*, data under *root*) is witnessed by one witness
    named *witness_name*, and that witness's vkey."""
    first = ensure_first_start(Settings(data_dir=root / "gateway", log_origin=origin))
    home = root / "witness"
    home.mkdir()
    vkey = write_witness_key(home / "witness.key", witness_name).verifier.vkey()
    (home / "witness.toml").write_text(
        'key_file = "witness.key"\ndatabase = "witness.db"\n\n[[logs]]\n'
        f'origin = "{origin}"\nvkey = "{first.checkpoint_signer.verifier.vkey()}"\n'
    )
    witness = LoopbackServer(witness_app(home / "witness.toml")).start()
    try:
        with live_cast(
            root,
            log_origin=origin,
            witnesses=[WitnessEndpoint(url=witness.url, vkey=vkey)],
            witness_interval=0.05,
        ) as cast:
            yield cast, vkey
    finally:
        witness.stop()
