"""Word and PowerPoint: headings, paragraphs, lists and tables in reading order; slides are pages."""

from __future__ import annotations

import io
import re
import zipfile

from lxml.etree import XMLSyntaxError

from ..types import Block, CorruptDocument, ParsedDocument
from .text import require_blocks

_HEADING_STYLE = re.compile(r"^(Heading|Überschrift|Titre)\s*(\d)$", re.IGNORECASE)
OPEN_ERRORS = (zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError, OSError, AttributeError, TypeError)


def table_markdown(rows: list[list[str]]) -> str:
    """A table as pipe rows, header first, so it reads (and embeds) as one unit."""
    rows = [[" ".join(cell.split()).replace("|", "/") for cell in row] for row in rows if any(c.strip() for c in row)]
    if not rows:
        return ""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def _heading_level(paragraph) -> int | None:
    name = paragraph.style.name if paragraph.style is not None else ""
    if name == "Title":
        return 1
    match = _HEADING_STYLE.match(name or "")
    return int(match.group(2)) if match else None


def parse_docx(data: bytes, filename: str) -> ParsedDocument:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        body = list(document.iter_inner_content())
    except OPEN_ERRORS as error:
        raise CorruptDocument(f"{filename} is damaged and could not be read ({error}); save it again and re-upload.") from error
    blocks, path = [], []
    for item in body:
        if isinstance(item, Table):
            text = table_markdown([[cell.text for cell in row.cells] for row in item.rows])
            if text:
                blocks.append(Block(text, kind="table", heading_path=tuple(t for _, t in path)))
            continue
        if not isinstance(item, Paragraph) or not item.text.strip():
            continue
        level, text = _heading_level(item), item.text.strip()
        if level:
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
            blocks.append(Block(text, kind="heading", heading_path=tuple(t for _, t in path)))
        else:
            kind = "list" if "List" in (item.style.name if item.style is not None else "") else "paragraph"
            blocks.append(Block(text, kind=kind, heading_path=tuple(t for _, t in path)))
    title = (document.core_properties.title or "").strip() or None
    return ParsedDocument(kind="docx", blocks=require_blocks(blocks, filename), title=title)


def parse_pptx(data: bytes, filename: str) -> ParsedDocument:
    from pptx import Presentation

    try:
        presentation = Presentation(io.BytesIO(data))
        slides = list(presentation.slides)
    except OPEN_ERRORS as error:
        raise CorruptDocument(f"{filename} is damaged and could not be read ({error}); save it again and re-upload.") from error
    blocks = []
    for number, slide in enumerate(slides, start=1):
        title_shape = slide.shapes.title
        heading = (title_shape.text_frame.text.strip() if title_shape is not None and title_shape.has_text_frame else "") or f"Slide {number}"
        path = (heading,)
        blocks.append(Block(heading, kind="heading", page=number, heading_path=path))
        for shape in slide.shapes:
            if shape is title_shape:
                continue
            if shape.has_text_frame and shape.text_frame.text.strip():
                blocks.append(Block(shape.text_frame.text.strip(), page=number, heading_path=path))
            elif getattr(shape, "has_table", False) and shape.has_table:
                rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
                blocks.append(Block(table_markdown(rows), kind="table", page=number, heading_path=path))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                blocks.append(Block(f"Notes: {notes}", page=number, heading_path=path))
    if not any(b.kind != "heading" for b in blocks) and not blocks:
        require_blocks([], filename)
    title = (presentation.core_properties.title or "").strip() or None
    return ParsedDocument(kind="pptx", blocks=require_blocks(blocks, filename), title=title, page_count=len(slides))
