"""Parsers per format: bytes in, ParsedDocument (blocks with page and heading path) out.

Every problem a file can cause surfaces as an IngestionError whose message names the file and says what to do.
"""

from __future__ import annotations

from collections.abc import Callable

from ..detection import detect_kind
from ..types import ParsedDocument, UnsupportedType
from . import html, markdown, office, pdf, tabular, text

PARSERS: dict[str, Callable[[bytes, str], ParsedDocument]] = {
    "pdf": pdf.parse,
    "docx": office.parse_docx,
    "pptx": office.parse_pptx,
    "xlsx": tabular.parse_xlsx,
    "csv": tabular.parse_csv,
    "html": html.parse,
    "markdown": markdown.parse,
    "text": text.parse,
}


def parse(data: bytes, *, filename: str, kind: str | None = None) -> ParsedDocument:
    kind = kind or detect_kind(data, filename=filename)
    if kind not in PARSERS:
        raise UnsupportedType(f"{filename} is an archive; upload it as a .zip to unpack it, or upload its files.")
    return PARSERS[kind](data, filename)
