"""Parsers per format: bytes in, ParsedDocument (blocks with page and heading path) out.

`parse` detects the kind from the content (see ingestion.detection) unless the caller already knows it, then
dispatches to the format's module. Every problem a file can cause surfaces as an IngestionError whose message
names the file and says what to do.
"""

from __future__ import annotations

from collections.abc import Callable

from ..detection import detect_kind, ensure_not_empty
from ..types import ParsedDocument, UnsupportedType
from . import docx, html, markdown, pdf, pptx, tabular, text, xlsx

PARSERS: dict[str, Callable[..., ParsedDocument]] = {
    "pdf": pdf.parse,
    "docx": docx.parse,
    "pptx": pptx.parse,
    "xlsx": xlsx.parse,
    "csv": tabular.parse,
    "html": html.parse,
    "markdown": markdown.parse,
    "text": text.parse,
}


def parse(data: bytes, *, filename: str, kind: str | None = None) -> ParsedDocument:
    """The document in `data`. `kind`, when given, skips detection; "zip" is refused (uploads unpack archives)."""
    if kind is None:
        kind = detect_kind(data, filename=filename)
    else:
        ensure_not_empty(data, filename=filename)
    if kind == "zip":
        raise UnsupportedType(
            f"{filename} is a zip archive, not a document; upload it through the upload form, which unpacks "
            "archives, or upload the files it holds."
        )
    if kind not in PARSERS:
        raise ValueError(f"unknown document kind {kind!r}; expected one of {', '.join(PARSERS)} or 'zip'")
    return PARSERS[kind](data, filename=filename)
