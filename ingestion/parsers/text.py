"""Plain text: paragraphs are separated by blank lines; line breaks inside a paragraph are kept."""

from __future__ import annotations

import re

from ..detection import decode_text
from ..types import Block, ParsedDocument
from .blocks import require_blocks

_BLANK_LINES = re.compile(r"\n[ \t\f\v]*\n")


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    blocks = [Block(paragraph) for paragraph in paragraphs(decode_text(data))]
    return ParsedDocument(kind="text", blocks=require_blocks(blocks, filename=filename))


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, without trailing spaces on their lines."""
    found = []
    for part in _BLANK_LINES.split(text):
        paragraph = "\n".join(line.rstrip() for line in part.split("\n")).strip()
        if paragraph:
            found.append(paragraph)
    return found
