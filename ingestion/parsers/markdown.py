"""Markdown: ATX and setext headings build the heading path; code blocks, tables and list items stay whole.

markdown-it-py (CommonMark plus tables) finds the block structure, so a '#' inside a code fence is never taken for
a heading; each block's text is its Markdown source as written (links, emphasis and template tags included).
YAML front matter is dropped from the text; its `title:` is the title, else the first level-1 heading.
"""

from __future__ import annotations

import re
import textwrap

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..detection import decode_text
from ..types import Block, ParsedDocument
from .blocks import HeadingPath, clean_title, require_blocks, squash

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_YAML_KEY = re.compile(r"^[A-Za-z0-9_-]+[ \t]*:", re.MULTILINE)
_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
# Block tokens whose source is one block of ours, by the kind of that block.
_SOURCE_BLOCKS = {
    "paragraph_open": "paragraph",
    "blockquote_open": "paragraph",
    "table_open": "table",
    "fence": "code",
    "code_block": "code",
    "list_item_open": "list",
}


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    title, body = split_front_matter(decode_text(data))
    lines = body.split("\n")
    tokens = _markdown().parse(body)
    headings = HeadingPath()
    blocks: list[Block] = []
    for index, token in enumerate(tokens):
        if not _is_top_level(token):
            continue
        if token.type == "heading_open":
            text = heading_text(tokens[index + 1])
            if text:
                blocks.append(Block(text, kind="heading", heading_path=headings.enter(int(token.tag[1]), text)))
            continue
        block = _block(token, lines, headings.path)
        if block is not None:
            blocks.append(block)
    title = title or _first_h1(tokens)
    return ParsedDocument(kind="markdown", blocks=require_blocks(blocks, filename=filename), title=title)


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(front matter title, text without the front matter)."""
    match = _FRONT_MATTER.match(text)
    if not match or not _YAML_KEY.search(match.group(1)):
        return None, text
    found = _TITLE.search(match.group(1))
    title = clean_title(found.group(1).strip("\"'")) if found else None
    return title, text[match.end() :]


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _first_h1(tokens: list[Token]) -> str | None:
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1" and token.level == 0:
            return heading_text(tokens[index + 1]) or None
    return None


def _is_top_level(token: Token) -> bool:
    # List items sit one level below their list; the list itself is not a block of ours, its items are.
    if token.type == "list_item_open":
        return token.level == 1
    return token.level == 0


def heading_text(inline: Token) -> str:
    """A heading's plain text: emphasis and link syntax gone, code and image alt text kept."""
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return squash("".join(parts))


def _block(token: Token, lines: list[str], path: tuple[str, ...]) -> Block | None:
    if token.type == "html_block":
        text = _html_text(token.content)
        return Block(text, heading_path=path) if text else None
    kind = _SOURCE_BLOCKS.get(token.type)
    if kind is None or token.map is None:
        return None
    start, end = token.map
    source = "\n".join(line.rstrip() for line in lines[start:end])
    text = textwrap.dedent(source).strip("\n") if kind == "code" else source.strip()
    return Block(text, kind=kind, heading_path=path) if text.strip() else None


def _html_text(html: str) -> str:
    """The visible text of raw HTML in Markdown (a README's centred banner, a <details> box)."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(("script", "style")):
        tag.decompose()
    return squash(soup.get_text(" "))
