"""PDF: text per page with its page number, split into paragraphs; encrypted, damaged and scanned files refused.

pypdf's plain extraction returns a page as lines without the gaps between paragraphs. Its layout mode shows those
gaps as blank lines but sets columns side by side, so the gaps are taken from it only when both modes read the
same lines in the same order (one column). Within a gap-free run a paragraph also ends at a line clearly shorter
than the full lines around it (a paragraph's last line, a heading) or before a bullet. A paragraph's lines are
joined with a space, or with none where a word was hyphenated at the end of a line.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib

from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from ..types import Block, EmptyDocument, EncryptedDocument, ParsedDocument
from .blocks import clean_title, damaged

logger = logging.getLogger(__name__)
logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object in real-world files

# pypdf reports malformed input with its own errors, but truncated or fuzzed files also raise these builtins.
_BAD_INPUT = (
    PyPdfError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    OSError,
    NotImplementedError,  # an unsupported filter or encryption method
    struct.error,
    zlib.error,
)
_ADVICE = "export or download it again and upload the new copy"
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_TERMINAL = tuple(".!?:;\"')”’")
_BULLET = re.compile(r"^(?:[•▪◦‣●○■□–-]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
# A line shorter than this share of the longest line around it ends its paragraph.
_SHORT_LINE = 0.7
# Below this width a wrapped line cannot be told from a paragraph's last (lists, tables, narrow columns).
_MIN_WRAP_WIDTH = 40
# A page of at least this many lines with a gap after more than this share of them is double-spaced.
_SPACED_MIN_LINES = 6
_SPACED_SHARE = 0.5


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    reader = _open(data, filename)
    try:
        pages = list(reader.pages)
    except _BAD_INPUT as error:
        raise damaged(filename, error, advice=_ADVICE) from error
    blocks = _blocks(pages, filename)
    return ParsedDocument(kind="pdf", blocks=blocks, title=_title(reader), page_count=len(pages))


def _open(data: bytes, filename: str) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        # A PDF with only an owner password has an empty user password: anyone may open it, so we may too.
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocument(f"{filename} is encrypted; upload an unlocked copy.")
    except DependencyError as error:  # AES needs the cryptography package, which Lantern does not ship
        raise EncryptedDocument(
            f"{filename} is encrypted with a method Lantern cannot open (AES); upload an unlocked copy."
        ) from error
    except NotImplementedError as error:
        if b"/Encrypt" in data:
            raise EncryptedDocument(
                f"{filename} is encrypted with a method Lantern cannot open; upload an unlocked copy."
            ) from error
        raise damaged(filename, error, advice=_ADVICE) from error
    except _BAD_INPUT as error:
        raise damaged(filename, error, advice=_ADVICE) from error
    return reader


def _blocks(pages: list[PageObject], filename: str) -> list[Block]:
    blocks: list[Block] = []
    unreadable = 0
    for number, page in enumerate(pages, start=1):
        try:
            text = _page_text(page)
        except FileNotDecryptedError as error:
            raise EncryptedDocument(f"{filename} is encrypted; upload an unlocked copy.") from error
        except _BAD_INPUT as error:
            # One broken page should not cost the rest of the document; the log says which page was skipped.
            logger.warning("%s: skipped unreadable page %d (%s)", filename, number, error)
            unreadable += 1
            continue
        blocks += [Block(paragraph, page=number) for paragraph in page_paragraphs(text)]
    if not blocks and unreadable:
        raise damaged(filename, ValueError(f"none of its {len(pages)} pages could be read"), advice=_ADVICE)
    if not blocks:
        raise EmptyDocument(f"{filename} has no text layer (a scanned image?); run OCR on it and upload the result.")
    return blocks


def _page_text(page: PageObject) -> str:
    plain = page.extract_text() or ""
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except _BAD_INPUT:
        return plain  # layout mode only refines the paragraph breaks
    layout_lines = _lines(layout)
    if layout_lines != _lines(plain):
        return plain  # columns, or text the two modes order differently
    gaps = len(_BLANK_LINES.findall(layout))
    if len(layout_lines) >= _SPACED_MIN_LINES and gaps > _SPACED_SHARE * len(layout_lines):
        return plain  # double-spaced text: a gap after nearly every line says nothing about paragraphs
    return layout


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def _title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return clean_title(metadata.title) if metadata else None
    except _BAD_INPUT:
        return None  # a broken info dictionary only costs us the title


def page_paragraphs(text: str) -> list[str]:
    """The paragraphs of one page's extracted text, each on one line."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    paragraphs: list[str] = []
    for part in _BLANK_LINES.split(text):
        lines = [" ".join(line.split()) for line in part.split("\n")]
        paragraphs += _paragraphs_of([line for line in lines if line])
    return paragraphs


def _paragraphs_of(lines: list[str]) -> list[str]:
    if not lines:
        return []
    width = max(len(line) for line in lines)
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        if current and _BULLET.match(line):
            paragraphs.append(current)
            current = ""
        current = _join(current, line)
        if _ends_paragraph(line, width):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def _ends_paragraph(line: str, width: int) -> bool:
    if width < _MIN_WRAP_WIDTH:
        return line.endswith(_TERMINAL)
    return len(line) < _SHORT_LINE * width


def _join(current: str, line: str) -> str:
    if not current:
        return line
    if current.endswith("\u00ad"):  # a soft hyphen only ever marks a break inside a word
        return current[:-1] + line
    if current.endswith("-") and len(current) > 1 and current[-2].isalpha() and line[:1].islower():
        return current[:-1] + line
    return f"{current} {line}"
