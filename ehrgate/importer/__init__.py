"""Bulk import of ARIA-style oncology exports: a folder tree or a manifest CSV of PDFs."""

from ehrgate.importer.journal import Journal
from ehrgate.importer.mapping import DEFAULT_CATEGORY_FOLDERS, CategoryTable, load_mrn_map
from ehrgate.importer.run import ImportSummary, Outcome, Uploader, run_import
from ehrgate.importer.source import Candidate, Skip, scan_folder, scan_manifest

__all__ = [
    "DEFAULT_CATEGORY_FOLDERS",
    "Candidate",
    "CategoryTable",
    "ImportSummary",
    "Journal",
    "Outcome",
    "Skip",
    "Uploader",
    "load_mrn_map",
    "run_import",
    "scan_folder",
    "scan_manifest",
]
