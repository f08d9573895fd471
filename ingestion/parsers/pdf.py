"""PDF: text per page with page numbers; encrypted, damaged and scanned (no text layer) files get clear errors."""

from __future__ import annotations

import io
import logging
import re

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

from ..types import Block, CorruptDocument, EmptyDocument, EncryptedDocument, ParsedDocument
from .text import paragraphs

logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every odd object in real-world files
_HYPHENATED = re.compile(r"(\w)-\n(\w)")
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")


def _reader(data: bytes, filename: str) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocument(f"{filename} is encrypted; upload an unlocked copy.")
        return reader
    except (FileNotDecryptedError, NotImplementedError) as error:
        raise EncryptedDocument(f"{filename} is encrypted; upload an unlocked copy.") from error
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, OSError) as error:
        raise CorruptDocument(f"{filename} is damaged and could not be read ({error}); export it again and re-upload.") from error


def _page_text(raw: str) -> str:
    text = _HYPHENATED.sub(r"\1\2", raw.replace("\r", "\n"))
    return "\n\n".join(_LINE_BREAK.sub(" ", p) for p in paragraphs(text))


def parse(data: bytes, filename: str) -> ParsedDocument:
    reader = _reader(data, filename)
    blocks = []
    try:
        pages = list(reader.pages)
        for number, page in enumerate(pages, start=1):
            blocks += [Block(p, page=number) for p in paragraphs(_page_text(page.extract_text() or ""))]
    except FileNotDecryptedError as error:
        raise EncryptedDocument(f"{filename} is encrypted; upload an unlocked copy.") from error
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        raise CorruptDocument(f"{filename} is damaged and could not be read ({error}); export it again and re-upload.") from error
    if not blocks:
        raise EmptyDocument(f"{filename} has no text layer (a scanned image?); run OCR on it and upload the result.")
    title = None
    try:
        title = (reader.metadata.title or "").strip() or None if reader.metadata else None
    except (PdfReadError, ValueError, KeyError, TypeError):
        pass  # a broken info dictionary only costs us the title
    return ParsedDocument(kind="pdf", blocks=blocks, title=title, page_count=len(pages))
