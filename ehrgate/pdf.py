"""A tiny generator of valid one-page PDF documents (text in Helvetica), for the demo,
tests and benchmarks: a real cross-reference table, so PDF readers open the files."""

from __future__ import annotations

from collections.abc import Sequence

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_LEADING = 14
_MAX_LINES = 55


def _escape(text: str) -> bytes:
    """A PDF literal string's content: Latin-1, with backslash and parentheses escaped."""
    raw = text.encode("latin-1", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_pdf(lines: Sequence[str], *, title: str = "") -> bytes:
    """A one-page A4 PDF showing *lines* (at most 55; longer lists are cut)."""
    shown = [title, ""] if title else []
    shown += [line.replace("\r", " ").replace("\n", " ") for line in lines]
    content = bytearray(b"BT\n/F1 11 Tf\n%d TL\n72 %d Td\n" % (_LEADING, _PAGE_HEIGHT - 72))
    for line in shown[:_MAX_LINES]:
        content += b"(" + _escape(line) + b") Tj T*\n"
    content += b"ET\n"
    info = b"<< /Title (" + _escape(title or "ehrgate document") + b") /Producer (ehrgate) >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>" % (_PAGE_WIDTH, _PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + bytes(content) + b"endstream",
        info,
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\n" % (len(objects) + 1, len(objects))
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)
