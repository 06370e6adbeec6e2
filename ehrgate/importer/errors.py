"""The importer's errors, in the client's tree (`ehrgate.errors`):

EhrgateError
├── UsageError                      exit 2
│   ├── ImportConfigError                   an input of the import is unusable: the export
│   │                                       folder, MRN map, manifest, category table or
│   │                                       state file; raised before anything is uploaded
│   └── Conflict
│       └── RecordExists                    the record id the journal chose is taken: the
│                                           file was imported before (`Uploader` raises it,
│                                           `run_import` counts the file as imported)
└── ...                                     any other error of an upload fails that file only

The command line reports each with its message and exit code.
"""

from __future__ import annotations

from ehrgate.errors import UsageError


class ImportConfigError(UsageError):
    """An input of the import (export root, MRN map, manifest, category table) is unusable."""
