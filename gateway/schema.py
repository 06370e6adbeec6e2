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

rekey_deletions = sa.Table(
    "gateway_rekey_deletions",
    metadata,
    # a capsule a rekey replaces, and where the stores keep it: written before the rekey
    # commits, deleted once every copy is gone (gateway.rekeying)
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("locators", sa.Text, nullable=False),
    sa.Column("queued_at", sa.String(40), nullable=False),
)
