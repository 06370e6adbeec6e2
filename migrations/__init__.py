"""Alembic migrations for the ledger schema."""
