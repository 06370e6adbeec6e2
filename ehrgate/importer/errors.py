"""Errors that stop an import before it starts (bad mapping files, unreadable roots)."""

from __future__ import annotations


class ImportConfigError(Exception):
    """An input of the import (export root, MRN map, manifest, category table) is unusable."""
