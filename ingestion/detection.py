"""Which format a file really is, from its content; the extension is only a hint between text formats."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import PurePosixPath

from .types import EmptyDocument, EncryptedDocument, UnsupportedType

SUPPORTED = "PDF, DOCX, PPTX, XLSX, CSV, HTML, Markdown or plain text (or a .zip of them)"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"\x7fELF": "a program (ELF executable)",
    b"MZ": "a Windows program",
    b"ID3": "an audio file",
    b"OggS": "an audio file",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)
_MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd"}
_CSV_EXT = {".csv", ".tsv"}
_HTML_EXT = {".html", ".htm", ".xhtml"}


def detect_kind(data: bytes, *, filename: str) -> str:
    """One of pdf, docx, pptx, xlsx, csv, html, markdown, text, zip; raises an IngestionError for anything else."""
    if not data.strip():
        raise EmptyDocument(f"{filename} is empty; there is nothing to index.")
    if data[:1024].lstrip().startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _zip_kind(data, filename)
    if data.startswith(_OLE2):
        raise _ole2_error(data, filename)
    if data[4:8] == b"ftyp" or data[:4] == b"RIFF":
        raise UnsupportedType(f"{filename} is a media file; Lantern reads {SUPPORTED}.")
    for signature, what in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise UnsupportedType(f"{filename} is {what}; Lantern reads {SUPPORTED}.")
    if not looks_like_text(data):
        raise UnsupportedType(f"{filename} is not a document Lantern can read; it reads {SUPPORTED}.")
    return _text_kind(data, filename)


def _zip_kind(data: bytes, filename: str) -> str:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnsupportedType(f"{filename} looks like a zip-based file but is damaged ({error}).") from error
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "mimetype" in names and any(n.startswith("content.xml") for n in names):
        raise UnsupportedType(f"{filename} is an OpenDocument file; save it as .docx, .xlsx or .pptx and upload that.")
    return "zip"


def _ole2_error(data: bytes, filename: str) -> Exception:
    # Password-protected .docx/.xlsx/.pptx are OLE2 containers holding "EncryptionInfo" and "EncryptedPackage"
    # streams; their directory entries store the names in UTF-16LE.
    if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
        return EncryptedDocument(f"{filename} is password-protected; upload an unlocked copy.")
    return UnsupportedType(
        f"{filename} is in an old Office format (.doc, .xls or .ppt); save it as .docx, .xlsx or .pptx and upload that."
    )


def looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 3:  # a multi-byte character cut by the sample's end
            return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls / max(1, len(sample)) < 0.01


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252; newlines normalised."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_kind(data: bytes, filename: str) -> str:
    suffix = PurePosixPath(filename.lower()).suffix
    head = data[:4096]
    if _HTML_START.match(head) or (suffix in _HTML_EXT and b"<" in head):
        return "html"
    if suffix == ".pdf":
        raise UnsupportedType(f"{filename} is named .pdf but is not a PDF (its content is plain text); check the file.")
    if suffix in (".docx", ".xlsx", ".pptx"):
        raise UnsupportedType(f"{filename} is named {suffix} but its content is plain text, not an Office file; check the file.")
    if suffix in _MARKDOWN_EXT:
        return "markdown"
    if suffix in _CSV_EXT and _is_delimited(decode_text(data[:65536])):
        return "csv"
    return "text"


def _is_delimited(text: str) -> bool:
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        return False
    rows = [r for r in csv.reader(io.StringIO(text[:8192]), dialect) if r][:20]
    return len(rows) >= 1 and len({len(r) for r in rows[:-1] or rows}) == 1 and len(rows[0]) > 1
