"""Which kind of document an upload is, decided from its bytes; the file name is only a hint between text formats.

`detect_kind` returns one of KINDS or raises an IngestionError whose message names the file and says what to do.
The text decoding and delimiter sniffing live here too, so detection and the text parsers never disagree.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
import zlib
from pathlib import PurePosixPath

from .types import CorruptDocument, EmptyDocument, EncryptedDocument, UnsupportedType

KINDS = ("pdf", "docx", "pptx", "xlsx", "csv", "html", "markdown", "text", "zip")
SUPPORTED_FORMATS = "PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, HTML, Markdown and plain text"

MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd"})
DELIMITED_EXTENSIONS = frozenset({".csv", ".tsv"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})

# What an extension promises, for the messages about files whose content does not match their name.
_CLAIMED_BY_EXTENSION = {
    ".pdf": "a PDF",
    ".docx": "a Word document (.docx)",
    ".pptx": "a PowerPoint presentation (.pptx)",
    ".xlsx": "an Excel workbook (.xlsx)",
    ".doc": "a Word document (.doc)",
    ".xls": "an Excel workbook (.xls)",
    ".ppt": "a PowerPoint presentation (.ppt)",
    ".zip": "a zip archive",
}
_OOXML_EXTENSIONS = frozenset({".docx", ".pptx", ".xlsx"})
_OOXML_MAIN_PARTS = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx", "xl/workbook.xml": "xlsx"}
# Some generators name the main part differently; [Content_Types].xml still says what the package is.
_OOXML_MAIN_CONTENT_TYPES = {
    "wordprocessingml.document.main+xml": "docx",
    "presentationml.presentation.main+xml": "pptx",
    "spreadsheetml.sheet.main+xml": "xlsx",
}

# How a damaged zip container (every Office file is one) fails while its members are read. zipfile raises
# RuntimeError for a member flagged as encrypted, which no Office file has.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)

_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# (signature at offset 0, what the file is)
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"\xcf\xfa\xed\xfe", "a program (Mach-O executable)"),
    (b"\xfe\xed\xfa\xce", "a program (Mach-O executable)"),
    (b"\xfe\xed\xfa\xcf", "a program (Mach-O executable)"),
    (b"ID3", "an audio file (MP3)"),
    (b"OggS", "an audio or video file (Ogg)"),
    (b"fLaC", "an audio file (FLAC)"),
    (b"\x1a\x45\xdf\xa3", "a video file (Matroska/WebM)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"{\\rtf", "a Rich Text (RTF) document"),
)
_RIFF_FORMS = {b"WEBP": "a WebP image", b"WAVE": "an audio file (WAV)", b"AVI ": "a video file (AVI)"}
_IMAGE_FTYP_BRANDS = (b"heic", b"heix", b"mif1", b"avif")

# Bytes text never holds: C0 controls other than tab, newlines, vertical tab, form feed, SUB and ESC; and DEL.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0b\x0c\x1a\x1b") + b"\x7f"
_NON_CONTROL_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_BINARY_SAMPLE = 8192
_MAX_CONTROL_SHARE = 0.05

_MARKUP_PREAMBLE = r"(?:\s*(?:<\?xml[^>]*>|<!--.*?-->))*\s*"
_HTML_DOCUMENT = re.compile(_MARKUP_PREAMBLE + r"(?:<!doctype\s+html|<html\b|<head\b|<body\b)", re.I | re.S)
_SVG_DOCUMENT = re.compile(_MARKUP_PREAMBLE + r"(?:<!doctype\s+svg[^>]*>\s*)?<svg\b", re.I | re.S)
_HTML_TAG = re.compile(
    r"</?(?:p|div|span|a|h[1-6]|ul|ol|li|table|tr|td|th|br|img|section|article|main|nav|meta|link|"
    r"script|style|title|strong|em|b|i|header|footer)\b[^>]*>",
    re.I,
)
_DENSE_TAGS = 3
_HEAD_CHARS = 2048

_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 100
_STEADY_SHARE = 0.8


def detect_kind(data: bytes, *, filename: str) -> str:
    """The kind of document `data` is; raises EmptyDocument, UnsupportedType, EncryptedDocument or CorruptDocument."""
    ensure_not_empty(data, filename=filename)
    kind = _container_kind(data, filename)
    if kind is not None:
        return kind
    _refuse_known_binary(data, filename)
    if looks_binary(data):
        what = "a binary file of a type Lantern does not know"
        raise UnsupportedType(f"{_content_is(filename, what)}; Lantern reads {SUPPORTED_FORMATS} files.")
    text = decode_text(data)
    if not text.strip():
        raise EmptyDocument(f"{filename} is empty (it holds only blank space); upload a file with text in it.")
    return _text_kind(text, filename)


def ensure_not_empty(data: bytes, *, filename: str) -> None:
    if not data:
        raise EmptyDocument(f"{filename} is empty (0 bytes); upload a file with content.")
    if not data.strip():
        raise EmptyDocument(f"{filename} is empty (it holds only blank space); upload a file with text in it.")


def decode_text(data: bytes) -> str:
    """The text of a text file: UTF-8 (BOM optional), UTF-16 with a BOM, else cp1252, else latin-1; \\n newlines."""
    if data.startswith(codecs.BOM_UTF8):
        text = data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    else:
        text = _decode_without_bom(data)
    return normalise_newlines(text)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_binary(data: bytes) -> bool:
    """True when the start of `data` holds a NUL byte or more control bytes than any text has."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        sample = decode_text(data[: _BINARY_SAMPLE * 2]).encode("utf-8", errors="replace")
    else:
        sample = data[:_BINARY_SAMPLE]
        if b"\x00" in sample:
            return True
    controls = len(sample.translate(None, _NON_CONTROL_BYTES))
    return controls > len(sample) * _MAX_CONTROL_SHARE


def sniff_delimiter(text: str, *, prefer_tab: bool = False) -> str | None:
    """The delimiter that splits the first rows of `text` into a steady number (2 or more) of columns, or None."""
    lines = _sample_lines(text)
    candidates = ("\t", ",", ";", "|") if prefer_tab else _DELIMITERS
    best_width, best = 1, None
    for delimiter in candidates:
        width = _steady_width(lines, delimiter)
        if width > best_width:
            best_width, best = width, delimiter
    return best


def _decode_without_bom(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # cp1252 leaves five bytes undefined; latin-1 maps every byte


def _extension(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def _content_is(filename: str, what: str) -> str:
    """'<file> is <what>', or, when its name promises another format, a sentence naming the mismatch."""
    claimed = _CLAIMED_BY_EXTENSION.get(_extension(filename))
    if claimed:
        return f"{filename} is not {claimed}: it contains {what}"
    return f"{filename} is {what}"


# --- containers: PDF, zip (OOXML), OLE2 ---------------------------------------------------------------------------


def _container_kind(data: bytes, filename: str) -> str | None:
    if _is_pdf(data):
        return "pdf"
    if data.startswith(_ZIP_SIGNATURES):
        return _zip_kind(data, filename)
    if data.startswith(_OLE2_SIGNATURE):
        _refuse_ole2(data, filename)
    return None


def _is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first KiB; a text file that merely mentions "%PDF-" is not binary.
    return data[:1024].lstrip()[:5] == b"%PDF-" or (b"%PDF-" in data[:1024] and looks_binary(data))


def _zip_kind(data: bytes, filename: str) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            content_types = _member_head(archive, "[Content_Types].xml", names)
            mimetype = _member_head(archive, "mimetype", names)
    except (*ZIP_ERRORS, OSError, ValueError) as error:
        raise CorruptDocument(
            f"{filename} is damaged and could not be read (broken zip container: {error}); "
            "upload the original file again."
        ) from error
    return _classify_zip(names, content_types, mimetype, filename)


def _member_head(archive: zipfile.ZipFile, name: str, names: set[str]) -> str:
    if name not in names:
        return ""
    with archive.open(name) as member:
        return member.read(64 * 1024).decode("utf-8", errors="replace")


def _classify_zip(names: set[str], content_types: str, mimetype: str, filename: str) -> str:
    for part, kind in _OOXML_MAIN_PARTS.items():
        if part in names:
            return kind
    for content_type, kind in _OOXML_MAIN_CONTENT_TYPES.items():
        if content_type in content_types:
            return kind
    if "xl/workbook.bin" in names:
        raise UnsupportedType(
            f"{filename} is a binary Excel workbook (.xlsb); open it in Excel, save it as .xlsx and upload that."
        )
    if mimetype.startswith("application/vnd.oasis.opendocument"):
        raise UnsupportedType(
            f"{filename} is an OpenDocument file; open it in LibreOffice or Office, save it as .docx, .xlsx or .pptx "
            "and upload that."
        )
    if _extension(filename) in _OOXML_EXTENSIONS:
        raise CorruptDocument(
            f"{filename} is damaged and could not be read (its zip container holds no Office document); "
            "open it in Office, save a fresh copy and upload that."
        )
    return "zip"


def _utf16le(name: str) -> bytes:
    return name.encode("utf-16-le")


# Heuristic for password-protected .docx/.xlsx/.pptx: Office wraps them in an OLE2 compound file whose directory
# holds the streams "EncryptionInfo" and "EncryptedPackage". Directory entries store their names in UTF-16LE, so a
# byte search for those names finds them without following the compound file's sector chains. The whole file is
# searched (a fast memchr-style scan) because in a large file the directory sectors need not come first.
_ENCRYPTED_OOXML_MARKERS = (_utf16le("EncryptionInfo"), _utf16le("EncryptedPackage"))
# The stream that tells each legacy format apart, in the same UTF-16LE directory: (stream, format, app, save as).
_LEGACY_STREAMS = (
    (_utf16le("WordDocument"), "Word document (.doc)", "Word", ".docx"),
    (_utf16le("Workbook"), "Excel workbook (.xls)", "Excel", ".xlsx"),
    (_utf16le("Book"), "Excel workbook (.xls)", "Excel", ".xlsx"),
    (_utf16le("PowerPoint Document"), "PowerPoint presentation (.ppt)", "PowerPoint", ".pptx"),
)


def _refuse_ole2(data: bytes, filename: str) -> None:
    if any(marker in data for marker in _ENCRYPTED_OOXML_MARKERS):
        raise EncryptedDocument(
            f"{filename} is password-protected; open it in Office, remove the password "
            "(File > Info > Protect) and upload the unlocked copy."
        )
    for stream, label, application, extension in _LEGACY_STREAMS:
        if stream in data:
            raise UnsupportedType(
                f"{filename} is a legacy {label} file, which Lantern does not read; "
                f"open it in {application}, save it as {extension} and upload that."
            )
    raise UnsupportedType(
        f"{filename} is a legacy Microsoft Office (OLE2) file, which Lantern does not read; "
        "open it in Office, save it as .docx, .xlsx or .pptx and upload that."
    )


# --- other binaries -----------------------------------------------------------------------------------------------


def _refuse_known_binary(data: bytes, filename: str) -> None:
    what = _binary_description(data)
    if what is None:
        return
    if "image" in what:
        advice = "which has no text Lantern can index; if it is a scan, run OCR on it and upload the resulting PDF"
    elif "archive" in what or "compressed" in what:
        advice = "which Lantern does not unpack; repack it as .zip or upload its files one by one"
    elif "RTF" in what:
        advice = "which Lantern does not read; open it in Word, save it as .docx and upload that"
    else:
        advice = f"which has no text Lantern can index; Lantern reads {SUPPORTED_FORMATS} files"
    raise UnsupportedType(f"{_content_is(filename, what)}, {advice}.")


def _binary_description(data: bytes) -> str | None:
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return what
    if data.startswith(b"RIFF") and data[8:12] in _RIFF_FORMS:
        return _RIFF_FORMS[data[8:12]]
    if data[4:8] == b"ftyp":
        return "an image (HEIC/AVIF)" if data[8:12] in _IMAGE_FTYP_BRANDS else "an audio or video file (MP4/MOV)"
    if data.startswith(b"MZ") and looks_binary(data):  # "MZ" alone could start a line of text
        return "a Windows program (.exe/.dll)"
    return None


# --- text ---------------------------------------------------------------------------------------------------------


def _text_kind(text: str, filename: str) -> str:
    extension = _extension(filename)
    head = text[:_HEAD_CHARS]
    _refuse_misnamed_text(head, filename)
    if _HTML_DOCUMENT.match(head):
        return "html"
    if _SVG_DOCUMENT.match(head):
        raise UnsupportedType(
            f"{filename} is an SVG image, which has no text Lantern can index; upload the document it came from."
        )
    if extension in MARKDOWN_EXTENSIONS:
        # Before the tag-density test: READMEs often open with an HTML banner (<p align="center"><img ...>).
        return "markdown"
    if extension in DELIMITED_EXTENSIONS:
        return "csv" if sniff_delimiter(text, prefer_tab=extension == ".tsv") else "text"
    if _has_dense_tags(head) or (extension in HTML_EXTENSIONS and head.lstrip().startswith("<")):
        return "html"
    return "text"


def _refuse_misnamed_text(head: str, filename: str) -> None:
    if _extension(filename) not in _CLAIMED_BY_EXTENSION:
        return
    if _HTML_DOCUMENT.match(head) or _has_dense_tags(head):
        what = "a web page (often an error or sign-in page saved in place of the file)"
        raise UnsupportedType(f"{_content_is(filename, what)}; download the real file again and upload it.")
    raise UnsupportedType(
        f"{_content_is(filename, 'plain text')}; upload the original file, "
        "or rename it to .txt if the text is what you meant to upload."
    )


def _has_dense_tags(head: str) -> bool:
    return head.lstrip().startswith("<") and len(_HTML_TAG.findall(head)) >= _DENSE_TAGS


def _sample_lines(text: str) -> list[str]:
    lines = text[:_SNIFF_CHARS].split("\n")
    if len(text) > _SNIFF_CHARS and len(lines) > 1:
        lines = lines[:-1]  # cut in the middle
    return [line for line in lines[:_SNIFF_ROWS] if line.strip()]


def _steady_width(lines: list[str], delimiter: str) -> int:
    """The first row's column count when most sampled rows share it; 0 otherwise."""
    try:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    except csv.Error:
        return 0
    widths = [len(row) for row in rows if any(cell.strip() for cell in row)]
    if not widths:
        return 0
    steady = sum(width == widths[0] for width in widths)
    return widths[0] if steady >= _STEADY_SHARE * len(widths) else 0
