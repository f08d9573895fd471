"""Excel (.xlsx): each sheet is a heading; each row a block carrying its header (see tabular.py).

Cells give their cached values (data_only), not formulas: a workbook saved by a program that never calculated
its formulas yields those cells empty.
"""

from __future__ import annotations

import io
from xml.etree.ElementTree import ParseError

import openpyxl
from lxml.etree import XMLSyntaxError
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.workbook.workbook import Workbook

from ..detection import ZIP_ERRORS
from ..types import Block, ParsedDocument
from . import tabular
from .blocks import clean_title, damaged, require_blocks

# openpyxl parses lazily in read-only mode, so these can surface while rows are read, not only on open.
_BAD_INPUT = (
    *ZIP_ERRORS,
    InvalidFileException,
    XMLSyntaxError,
    ParseError,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    OSError,  # "File contains no valid workbook part"
)


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error
    try:
        blocks = _blocks(workbook, tabular.CellBudget(filename=filename))
        title = clean_title(workbook.properties.title) if workbook.properties else None
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error
    finally:
        workbook.close()
    return ParsedDocument(kind="xlsx", blocks=require_blocks(blocks, filename=filename), title=title)


def _blocks(workbook: Workbook, budget: tabular.CellBudget) -> list[Block]:
    blocks: list[Block] = []
    for sheet in workbook.worksheets:
        # The stored dimension can claim a far larger range than holds data; without it rows are not padded.
        sheet.reset_dimensions()
        path = (sheet.title,)
        rows = tabular.rows_to_blocks(sheet.iter_rows(values_only=True), heading_path=path, budget=budget)
        if rows:
            blocks += [Block(sheet.title, kind="heading", heading_path=path), *rows]
    return blocks
