"""Word (.docx): headings build the path; paragraphs, list items and tables come out in body order."""

from __future__ import annotations

import io
import re

import docx
from docx.document import Document
from docx.exceptions import PythonDocxError
from docx.opc.exceptions import OpcError
from docx.styles.style import BaseStyle
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from ..detection import ZIP_ERRORS
from ..types import Block, ParsedDocument, UnsupportedType
from .blocks import HeadingPath, clean_title, damaged, markdown_table, require_blocks, squash

# python-docx reports a broken package through its own errors, zipfile's and lxml's, or a missing part as KeyError.
_BAD_INPUT = (
    OpcError, PythonDocxError, *ZIP_ERRORS, XMLSyntaxError, KeyError, ValueError, IndexError, TypeError, OSError,
)
_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
TITLE_LEVEL = 0  # the Title style sits above Heading 1
# Custom heading styles usually derive from a built-in one; follow the chain this far.
_STYLE_CHAIN = 5


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    document = _open(data, filename)
    try:
        blocks = _blocks(document)
        title = clean_title(document.core_properties.title)
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error
    title = title or _title_paragraph(blocks)
    return ParsedDocument(kind="docx", blocks=require_blocks(blocks, filename=filename), title=title)


def _open(data: bytes, filename: str) -> Document:
    try:
        return docx.Document(io.BytesIO(data))
    except ValueError as error:
        if "content type" in str(error):  # python-docx refuses .docm and .dotx by their main part's content type
            raise UnsupportedType(
                f"{filename} is a macro-enabled Word document or a template; open it in Word, "
                "save it as a Word Document (.docx) and upload that."
            ) from error
        raise damaged(filename, error) from error
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error


def _blocks(document: Document) -> list[Block]:
    headings = HeadingPath()
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        block = _table_block(item, headings) if isinstance(item, Table) else _paragraph_block(item, headings)
        if block is not None:
            blocks.append(block)
    return blocks


def _title_paragraph(blocks: list[Block]) -> str | None:
    """The text of a heading that opens the document (Title style or Heading 1), when core properties give none."""
    first = blocks[0] if blocks else None
    return first.text if first is not None and first.kind == "heading" and first.heading_path == (first.text,) else None


def _table_block(table: Table, headings: HeadingPath) -> Block | None:
    text = markdown_table(_table_rows(table))
    return Block(text, kind="table", heading_path=headings.path) if text else None


def _table_rows(table: Table) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell is not previous:  # a merged cell is repeated once per grid column it spans
                cells.append(cell.text)
            previous = cell
        rows.append(cells)
    return rows


def _paragraph_block(paragraph: Paragraph, headings: HeadingPath) -> Block | None:
    text = paragraph.text.strip()
    if not text:
        return None
    level = heading_level(paragraph)
    if level is not None:
        heading = squash(text)
        return Block(heading, kind="heading", heading_path=headings.enter(level, heading))
    if _is_list_item(paragraph):
        return Block(f"- {text}", kind="list", heading_path=headings.path)
    return Block(text, heading_path=headings.path)


def heading_level(paragraph: Paragraph) -> int | None:
    """0 for the Title style, 1-9 for Heading 1-9 or a style based on one, None for body text."""
    style: BaseStyle | None = paragraph.style
    for _ in range(_STYLE_CHAIN):
        if style is None:
            return None
        name = style.name or ""
        if name.lower() == "title":
            return TITLE_LEVEL
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _is_list_item(paragraph: Paragraph) -> bool:
    style_name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style_name.startswith("List"):
        return True
    # Direct numbering (w:numPr) has no public python-docx API; the paragraph's element is the only place it shows.
    properties = paragraph._p.pPr
    return properties is not None and properties.numPr is not None
