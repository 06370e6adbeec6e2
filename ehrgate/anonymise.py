"""Anonymised copies for research exports: PDF metadata stripped, dates shifted.

`strip_pdf_metadata` rewrites a PDF with `pypdf` keeping its pages and dropping the
document information dictionary (title, author, subject, keywords, creator, producer,
dates) and every XMP metadata stream (the catalogue's and the pages'), along with the
structures that carry editing history (page piece info). **The text and images on the
pages are not changed: a name, a date of birth or a hospital number printed in the
document stays readable.** Redacting page content needs a person or a tool that
understands the document; this module only removes what the file says about itself.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from pypdf.generic import NameObject

from ehrgate.errors import UsageError

PDF_TYPE = "application/pdf"
NEUTRAL_NAMES = {PDF_TYPE: "document.pdf"}
"""The file name an anonymised copy carries, by content type (else "document")."""

_PAGE_KEYS = ("/Metadata", "/PieceInfo", "/LastModified")


class AnonymiseError(UsageError):
    """A document could not be anonymised (e.g. a PDF that does not parse)."""


def neutral_filename(content_type: str) -> str:
    return NEUTRAL_NAMES.get(content_type, "document")


def strip_pdf_metadata(pdf: bytes) -> bytes:
    """The same pages without the document information dictionary or XMP metadata."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        writer = PdfWriter()
        for page in reader.pages:
            added = writer.add_page(page)
            for key in _PAGE_KEYS:
                if key in added:
                    del added[NameObject(key)]
        writer.metadata = None  # no /Info in the trailer (pypdf would add its /Producer)
        root = writer.root_object
        for key in ("/Metadata", "/PieceInfo"):
            if key in root:
                del root[NameObject(key)]
        out = io.BytesIO()
        writer.write(out)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise AnonymiseError(f"the PDF could not be read to strip its metadata: {exc}") from exc
    return out.getvalue()


def anonymised_content(content: bytes, content_type: str) -> bytes:
    """What an anonymised export carries: PDFs stripped of their metadata; other content
    as it is (it has no file-level metadata this module knows how to remove)."""
    if content_type == PDF_TYPE:
        return strip_pdf_metadata(content)
    return content
