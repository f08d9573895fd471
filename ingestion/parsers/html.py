"""HTML: the main content only (no navigation, scripts, styles, headers or footers), headings as the path."""

from __future__ import annotations

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag

from ..detection import decode_text
from ..types import Block, ParsedDocument
from .office import table_markdown
from .text import require_blocks

DROPPED_TAGS = ["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg", "button", "select"]
DROPPED_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
HEADINGS = {f"h{i}": i for i in range(1, 7)}
BLOCK_TAGS = {"p", "pre", "blockquote", "dd", "dt", "figcaption", "address"}


def _main(soup: BeautifulSoup) -> Tag:
    for tag in soup(DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": True}):
        if tag.get("role") in DROPPED_ROLES:
            tag.decompose()
    return soup.find("main") or soup.find("article") or soup.body or soup


def _text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ", strip=True).split())


def parse(data: bytes, filename: str) -> ParsedDocument:
    soup = BeautifulSoup(decode_text(data), "lxml")
    title = _text(soup.title) if soup.title else None
    blocks, path = [], []

    def walk(node: Tag) -> None:
        nonlocal path
        for child in node.children:
            if isinstance(child, NavigableString):
                text = " ".join(str(child).split())
                if text and child.parent is node and node.name in ("div", "section", "main", "article", "body", "td"):
                    blocks.append(Block(text, heading_path=tuple(t for _, t in path)))
                continue
            if not isinstance(child, Tag):
                continue
            if child.name in HEADINGS:
                level, text = HEADINGS[child.name], _text(child)
                if text:
                    path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
                    blocks.append(Block(text, kind="heading", heading_path=tuple(t for _, t in path)))
            elif child.name == "table":
                rows = [[_text(cell) for cell in tr.find_all(["th", "td"])] for tr in child.find_all("tr")]
                text = table_markdown(rows)
                if text:
                    blocks.append(Block(text, kind="table", heading_path=tuple(t for _, t in path)))
            elif child.name in ("ul", "ol"):
                items = [f"- {_text(li)}" for li in child.find_all("li", recursive=False) if _text(li)]
                if items:
                    blocks.append(Block("\n".join(items), kind="list", heading_path=tuple(t for _, t in path)))
            elif child.name in BLOCK_TAGS:
                text = _text(child)
                if text:
                    blocks.append(Block(text, kind="code" if child.name == "pre" else "paragraph", heading_path=tuple(t for _, t in path)))
            else:
                walk(child)

    walk(_main(soup))
    return ParsedDocument(kind="html", blocks=require_blocks(blocks, filename), title=title or None)
