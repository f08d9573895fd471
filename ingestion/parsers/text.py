from __future__ import annotations

import re

from ..detection import decode_text
from ..types import Block, EmptyDocument, ParsedDocument

_BLANK_LINES = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _BLANK_LINES.split(text) if p.strip()]


def require_blocks(blocks: list[Block], filename: str) -> list[Block]:
    if not blocks:
        raise EmptyDocument(f"{filename} contains no text to index.")
    return blocks


def parse(data: bytes, filename: str) -> ParsedDocument:
    blocks = [Block(p) for p in paragraphs(decode_text(data))]
    return ParsedDocument(kind="text", blocks=require_blocks(blocks, filename))
