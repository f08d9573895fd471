"""HTML: the main content only, without navigation, scripts, styles, page headers or footers.

<main> (or a single <article>) is preferred to the whole body. h1-h6 build the heading path; a table becomes one
table block, each list item a list block, <pre> a code block; text directly inside containers (a <div> without
<p>) becomes paragraphs. <title> is the title.
"""

from __future__ import annotations

import codecs
import re

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from ..detection import decode_text, normalise_newlines
from ..types import Block, ParsedDocument
from .blocks import HeadingPath, clean_title, markdown_table, require_blocks, squash

DROPPED_TAGS = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg",
    "button", "select", "object", "embed", "canvas", "head",
)
DROPPED_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
# Elements that start and end a paragraph; any other element (span, a, em...) is inline text.
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "blockquote", "dd", "dt", "dl", "figure", "figcaption", "address",
        "details", "summary", "fieldset", "center", "body", "html", "li", "caption", "hr",
    }
)
# A <header> or <footer> inside these belongs to the content (an article's own title), not to the page's chrome.
_CONTENT_SECTIONS = ("article", "main", "section")
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    soup = BeautifulSoup(decode_html(data), "lxml")
    title = clean_title(soup.title.get_text()) if soup.title else None
    blocks = _Walker().blocks_of(_main_content(soup))
    title = title or next((b.text for b in blocks if b.kind == "heading"), None)
    return ParsedDocument(kind="html", blocks=require_blocks(blocks, filename=filename), title=title)


def decode_html(data: bytes) -> str:
    """Decoded like any text file, except that a page that is not UTF-8 honours its <meta charset>."""
    charset = _declared_charset(data)
    if charset not in (None, "utf-8") and not _is_utf8(data):
        return normalise_newlines(data.decode(charset, errors="replace"))
    return decode_text(data)


def _declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _main_content(soup: BeautifulSoup) -> Tag:
    for tag in soup.find_all(DROPPED_TAGS):
        if not tag.decomposed and not _belongs_to_content(tag):
            tag.decompose()
    for tag in soup.find_all(_is_hidden_or_chrome):
        if not tag.decomposed:
            tag.decompose()
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    articles = soup.find_all("article")
    return main or (articles[0] if len(articles) == 1 else None) or soup.body or soup


def _belongs_to_content(tag: Tag) -> bool:
    return tag.name in ("header", "footer") and tag.find_parent(_CONTENT_SECTIONS) is not None


def _is_hidden_or_chrome(tag: Tag) -> bool:
    role = str(tag.get("role") or "").strip().lower()
    return role in DROPPED_ROLES or tag.has_attr("hidden") or tag.get("aria-hidden") == "true"


_FLUSH = object()  # marks the end of a block element in the walker's work stack


class _Walker:
    """Reads the content tree in document order, gathering inline text until a block boundary.

    It keeps its own stack instead of recursing: generated pages can nest elements thousands deep.
    """

    def __init__(self) -> None:
        self.headings = HeadingPath()
        self.blocks: list[Block] = []
        self._inline: list[str] = []

    def blocks_of(self, root: Tag) -> list[Block]:
        pending: list[object] = list(reversed(root.contents))
        while pending:
            node = pending.pop()
            if node is _FLUSH:
                self._flush()
            elif isinstance(node, Tag):
                pending += self._element(node)
            elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
                self._inline.append(str(node))
        self._flush()
        return self.blocks

    def _element(self, tag: Tag) -> list[object]:
        """Handles `tag`; returns what is left to walk, in reverse order (it goes on a stack)."""
        name = tag.name
        if name == "br":
            self._inline.append("\n")
        elif name in HEADING_LEVELS:
            self._heading(tag, HEADING_LEVELS[name])
        elif name == "table":
            self._emit(markdown_table(_table_rows(tag)), "table")
        elif name in ("ul", "ol"):
            self._flush()
            self._list(tag)
        elif name == "pre":
            self._emit(normalise_newlines(tag.get_text()).strip("\n"), "code")
        elif name in _BLOCK_TAGS:
            self._flush()
            return [_FLUSH, *reversed(tag.contents)]
        else:
            return list(reversed(tag.contents))
        return []

    def _heading(self, tag: Tag, level: int) -> None:
        self._flush()
        text = squash(tag.get_text(" "))
        if text:
            self.blocks.append(Block(text, kind="heading", heading_path=self.headings.enter(level, text)))

    def _list(self, tag: Tag) -> None:
        """One list block per item, nested items indented under theirs."""
        pending = _list_items(tag, depth=0)
        while pending:
            item, depth, marker = pending.pop()
            text, nested = _split_item(item)
            if text:
                block = Block(f"{'  ' * depth}{marker} {text}", kind="list", heading_path=self.headings.path)
                self.blocks.append(block)
            for child in reversed(nested):
                pending += _list_items(child, depth=depth + 1)

    def _emit(self, text: str, kind: str) -> None:
        self._flush()
        if text.strip():
            self.blocks.append(Block(text, kind=kind, heading_path=self.headings.path))

    def _flush(self) -> None:
        lines = [squash(line) for line in "".join(self._inline).split("\n")]
        self._inline = []
        text = "\n".join(line for line in lines if line)
        if text:
            self.blocks.append(Block(text, heading_path=self.headings.path))


def _list_items(tag: Tag, *, depth: int) -> list[tuple[Tag, int, str]]:
    """(item, depth, marker) for each item of a list, last first: they go on a stack."""
    items = tag.find_all("li", recursive=False)
    markers = [f"{number}." if tag.name == "ol" else "-" for number in range(1, len(items) + 1)]
    return [(item, depth, marker) for item, marker in zip(items, markers)][::-1]


def _split_item(item: Tag) -> tuple[str, list[Tag]]:
    """A list item's own text, and the lists nested in it (whose items become blocks of their own)."""
    pieces: list[str] = []
    nested: list[Tag] = []
    pending: list[object] = list(reversed(item.contents))
    while pending:
        node = pending.pop()
        if isinstance(node, Tag):
            if node.name in ("ul", "ol"):
                nested.append(node)
            else:
                pending += reversed(node.contents)
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            pieces.append(str(node))
    return squash("".join(pieces)), nested


def _table_rows(table: Tag) -> list[list[str]]:
    """The rows of this table (not of tables nested in its cells), header rows first."""
    rows = [row for row in table.find_all("tr") if row.find_parent("table") is table]
    rows.sort(key=lambda row: 0 if row.find_parent("thead") is not None else 1)
    return [[squash(cell.get_text(" ")) for cell in row.find_all(("th", "td"), recursive=False)] for row in rows]
