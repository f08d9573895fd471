"""PowerPoint (.pptx): one section per slide (its number is the page), the slide title as the heading, then its
text frames and tables in shape order, then the speaker notes as "Notes: ..."."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pptx
from lxml.etree import XMLSyntaxError
from pptx.exc import PythonPptxError
from pptx.presentation import Presentation
from pptx.shapes.base import BaseShape
from pptx.shapes.group import GroupShape
from pptx.shapes.shapetree import GroupShapes, SlideShapes
from pptx.slide import Slide
from pptx.text.text import TextFrame

from ..detection import ZIP_ERRORS
from ..types import Block, ParsedDocument, UnsupportedType
from .blocks import clean_title, damaged, markdown_table, require_blocks, squash

# python-pptx reports a broken package through its own errors, zipfile's and lxml's, or a missing part as KeyError.
_BAD_INPUT = (
    PythonPptxError, *ZIP_ERRORS, XMLSyntaxError, KeyError, ValueError, IndexError, TypeError, OSError,
)


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    presentation = _open(data, filename)
    try:
        slides = list(presentation.slides)
        blocks = [block for number, slide in enumerate(slides, start=1) for block in _slide_blocks(slide, number)]
        title = clean_title(presentation.core_properties.title)
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error
    title = title or next((b.text for b in blocks if b.kind == "heading"), None)
    return ParsedDocument(
        kind="pptx", blocks=require_blocks(blocks, filename=filename), title=title, page_count=len(slides)
    )


def _open(data: bytes, filename: str) -> Presentation:
    try:
        return pptx.Presentation(io.BytesIO(data))
    except ValueError as error:
        if "content type" in str(error):
            raise UnsupportedType(
                f"{filename} is not a PowerPoint presentation Lantern can read; open it in PowerPoint, "
                "save it as a PowerPoint Presentation (.pptx) and upload that."
            ) from error
        raise damaged(filename, error) from error
    except _BAD_INPUT as error:
        raise damaged(filename, error) from error


def _slide_blocks(slide: Slide, number: int) -> list[Block]:
    title_shape = slide.shapes.title
    title = squash(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
    # An untitled slide still gets a path, so its chunks say where they came from.
    path = (title or f"Slide {number}",)
    blocks = [Block(title, kind="heading", page=number, heading_path=path)] if title else []
    title_id = title_shape.shape_id if title_shape is not None else None
    for shape in _shapes(slide.shapes):
        if shape.shape_id != title_id:
            blocks += _shape_blocks(shape, number, path)
    notes = _notes(slide)
    if notes:
        blocks.append(Block(f"Notes: {notes}", page=number, heading_path=path))
    return blocks


def _shapes(shapes: SlideShapes | GroupShapes) -> Iterator[BaseShape]:
    """Every shape, the members of groups included, in the slide's order."""
    for shape in shapes:
        if isinstance(shape, GroupShape):
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _shape_blocks(shape: BaseShape, number: int, path: tuple[str, ...]) -> list[Block]:
    if shape.has_text_frame:
        text = frame_text(shape.text_frame)
        return [Block(text, page=number, heading_path=path)] if text else []
    if shape.has_table:
        text = markdown_table([cell.text for cell in row.cells] for row in shape.table.rows)
        return [Block(text, kind="table", page=number, heading_path=path)] if text else []
    return []


def frame_text(frame: TextFrame) -> str:
    # python-pptx renders a soft line break (<a:br>) inside a paragraph as a vertical tab.
    lines = [paragraph.text.replace("\v", "\n").strip() for paragraph in frame.paragraphs]
    return "\n".join(line for line in lines if line)


def _notes(slide: Slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return frame_text(frame) if frame is not None else ""
