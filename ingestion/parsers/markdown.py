"""Markdown: ATX and setext headings build the heading path; code fences and tables stay whole."""

from __future__ import annotations

import re

from ..detection import decode_text
from ..types import Block, ParsedDocument
from .text import require_blocks

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.MULTILINE)


class _Builder:
    def __init__(self):
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.kind = "paragraph"

    def heading_path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self.path)

    def flush(self) -> None:
        text = "\n".join(self.lines).strip()
        if text:
            self.blocks.append(Block(text, kind=self.kind, heading_path=self.heading_path()))
        self.lines, self.kind = [], "paragraph"

    def heading(self, level: int, text: str) -> None:
        self.flush()
        self.path = [(lvl, t) for lvl, t in self.path if lvl < level] + [(level, text)]
        self.blocks.append(Block(text, kind="heading", heading_path=self.heading_path()))

    def line(self, line: str, kind: str) -> None:
        if self.lines and self.kind != kind:
            self.flush()
        self.kind = kind
        self.lines.append(line)


def _kind_of(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith("|"):
        return "table"
    if re.match(r"([-*+]|\d+[.)])\s", stripped):
        return "list"
    return "paragraph"


def parse(data: bytes, filename: str) -> ParsedDocument:
    text = decode_text(data)
    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _TITLE.search(front.group(1))
        title = found.group(1).strip() if found else None
        text = text[front.end():]
    builder, in_fence, lines = _Builder(), False, text.split("\n")
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            if not in_fence:
                builder.flush()
                builder.kind = "code"
            builder.lines.append(line)
            in_fence = not in_fence
            if not in_fence:
                builder.flush()
            continue
        if in_fence:
            builder.lines.append(line)
            continue
        atx = _ATX.match(line)
        if atx:
            builder.heading(len(atx.group(1)), atx.group(2))
        elif not line.strip():
            builder.flush()
        elif i + 1 < len(lines) and _SETEXT.match(lines[i + 1]) and not builder.lines and line.strip():
            builder.heading(1 if lines[i + 1].strip().startswith("=") else 2, line.strip())
        elif _SETEXT.match(line) and builder.blocks and builder.blocks[-1].kind == "heading" and not builder.lines:
            continue  # the underline of a setext heading
        else:
            builder.line(line, _kind_of(line))
    builder.flush()
    if title is None:
        title = next((b.text for b in builder.blocks if b.kind == "heading"), None)
    return ParsedDocument(kind="markdown", blocks=require_blocks(builder.blocks, filename), title=title)
