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
