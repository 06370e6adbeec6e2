"""Tables the gateway keeps beside the ledger, in the ledger's database (SQLAlchemy Core).

None of them is derived from the log, and none is part of the state digest: they hold what a
running gateway needs that the ledger must not carry (operational state shared by replicas,
notification endpoints and deliveries, contact addresses kept encrypted). Alembic migrates
them together with `ledger.schema`; they use its naming convention so that constraints have
stable names.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.schema import NAMING_CONVENTION

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# Witness cosignatures of the log's checkpoints (C2SP tlog-cosignature/v1), one row per
# witness and checkpoint: what `/v1/ledger/checkpoint` serves after a restart, and evidence
# that the log was witnessed at each size. The checkpoint is (origin, tree_size, root); the
# cosignature is the signature line without its newline (`— name base64(key id ‖ timestamp ‖
# signature)`).
cosignatures = sa.Table(
    "gateway_cosignatures",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("tree_size", sa.BigInteger, primary_key=True),
    sa.Column("root", sa.LargeBinary(32), primary_key=True),
    sa.Column("witness", sa.String(255), primary_key=True),
    sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("kept_at", sa.String(32), nullable=False),
)
