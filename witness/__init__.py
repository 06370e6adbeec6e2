"""A C2SP tlog-witness for ehrgate logs (`ehrgate witness serve`).

It follows the logs listed in its configuration (origin and checkpoint vkey), checks each
submitted checkpoint against the last one it cosigned (consistency proof), keeps the new
size in SQLite atomically with the check, and answers with a tlog-cosignature/v1 line.
It imports only the pure protocol layer `ledger.wire` (and `envelope`), never the
gateway, the ledger's database layer or storage. See docs/federation.md.
"""

from witness.app import create_witness_app
from witness.config import WitnessConfig, load_config, load_witness_key, write_witness_key
from witness.errors import Refused, WitnessConfigError, WitnessError, WitnessStateError
from witness.state import WitnessState
from witness.witness import Witness


def open_witness(config: WitnessConfig) -> Witness:
    """The witness of *config*, its state database opened (created on first start)."""
    return Witness(config.cosigner, config.logs, WitnessState(config.database))


__all__ = [
    "Refused",
    "Witness",
    "WitnessConfig",
    "WitnessConfigError",
    "WitnessError",
    "WitnessState",
    "WitnessStateError",
    "create_witness_app",
    "load_config",
    "load_witness_key",
    "open_witness",
    "write_witness_key",
]
