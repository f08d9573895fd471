"""Every supported format parsed from a real file into what a reader would see (page, heading path, table, row),
and every kind of bad input refused with a message that names the file and says what to do."""

import io
import random

import pytest

from ingestion.parsers import parse, tabular
from ingestion.types import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    IngestionError,
    ParsedDocument,
    TooLarge,
    UnsupportedType,
)

from . import filemakers


def block_with(parsed: ParsedDocument, fragment: str):
    return next(b for b in parsed.blocks if fragment in b.text)


def texts(parsed: ParsedDocument) -> list[str]:
    return [b.text for b in parsed.blocks]


def refusal(data: bytes, filename: str, error: type[Exception], **kwargs) -> str:
    with pytest.raises(error) as raised:
        parse(data, filename=filename, **kwargs)
    message = str(raised.value)
    assert filename in message
    return message


# --- PDF ----------------------------------------------------------------------------------------------------------


def test_pdf_text_keeps_its_page_numbers_and_metadata_title():
    pages = ["Welcome to the team.", "Badges are issued on day two.", "Parking is behind building C."]
    parsed = parse(filemakers.pdf(pages, title="Onboarding"), filename="onboarding.pdf")
    assert parsed.kind == "pdf" and parsed.page_count == 3 and parsed.title == "Onboarding"
    assert block_with(parsed, "Welcome").page == 1
    assert block_with(parsed, "Badges are issued").page == 2
    assert block_with(parsed, "Parking").page == 3


def test_pdf_paragraphs_are_whole_even_when_they_wrap_over_lines():
    long = "The travel policy covers trains, planes and hotels for every employee. " * 4
    parsed = parse(filemakers.pdf([f"{long}\n\nMeals are reimbursed separately."]), filename="travel.pdf")
    assert texts(parsed) == [long.strip(), "Meals are reimbursed separately."]


def test_pdf_words_hyphenated_at_a_line_end_are_joined():
    lines = [
        "The committee reviewed the long-term environ-",
        "mental impact of the project and approved the",
        "plan without changes.",
        "Next steps",
        "The team will start building in March of next year",
        "and report back.",
    ]
    parsed = parse(filemakers.pdf_lines(lines), filename="minutes.pdf")
    assert texts(parsed) == [
        "The committee reviewed the long-term environmental impact of the project and approved the plan without "
        "changes.",
        "Next steps",
        "The team will start building in March of next year and report back.",
    ]


def test_an_encrypted_pdf_asks_for_an_unlocked_copy():
    message = refusal(filemakers.encrypted_pdf(), "salaries.pdf", EncryptedDocument)
    assert "encrypted" in message and "upload an unlocked copy" in message


def test_a_pdf_with_only_an_owner_password_is_read():
    parsed = parse(filemakers.encrypted_pdf("Open to all readers.", user_password=""), filename="open.pdf")
    assert texts(parsed) == ["Open to all readers."]


def test_a_pdf_without_a_text_layer_asks_for_ocr():
    message = refusal(filemakers.scanned_pdf(), "scan.pdf", EmptyDocument)
    assert "no text layer" in message and "run OCR" in message


@pytest.mark.parametrize("data", [filemakers.truncated_pdf(), b"%PDF-1.7\nnot really a pdf"])
def test_a_damaged_pdf_is_reported_as_damaged(data):
    assert "damaged and could not be read" in refusal(data, "cut.pdf", CorruptDocument)


# --- Word ---------------------------------------------------------------------------------------------------------


def test_docx_headings_build_the_path_of_the_paragraphs_under_them():
    parsed = parse(filemakers.docx(title="Benefits guide"), filename="benefits.docx")
    assert parsed.kind == "docx" and parsed.title == "Benefits guide"
    assert block_with(parsed, "first day").heading_path == ("Benefits",)
    assert block_with(parsed, "two cleanings").heading_path == ("Benefits", "Dental")
    assert block_with(parsed, "Glasses").heading_path == ("Benefits", "Vision")
    assert [b.text for b in parsed.blocks if b.kind == "heading"] == ["Benefits", "Dental", "Vision"]


def test_docx_tables_are_one_block_with_the_header_first_where_they_stand():
    parsed = parse(filemakers.docx(), filename="benefits.docx")
    table = next(b for b in parsed.blocks if b.kind == "table")
    assert table.text.splitlines() == ["| Plan | Monthly cost |", "| --- | --- |", "| Basic | $20 |", "| Plus | $45 |"]
    order = texts(parsed)
    assert order.index("Dental cover includes two cleanings a year.") < order.index(table.text)
    assert order.index(table.text) < order.index("Glasses are reimbursed up to $150.")


def test_docx_list_items_are_list_blocks():
    parsed = parse(filemakers.docx(), filename="benefits.docx")
    assert [b.text for b in parsed.blocks if b.kind == "list"] == ["- Eye tests are free", "- Gym discount of 20%"]


def test_docx_title_style_tops_the_path_and_titles_the_document():
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    document = docx.Document()
    document.add_paragraph("Security handbook", style="Title")
    document.add_heading("Passwords", level=1)
    custom = document.styles.add_style("Policy Heading", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = document.styles["Heading 2"]
    document.add_paragraph("Rotation", style="Policy Heading")
    document.add_paragraph("Rotate service passwords every 90 days.")
    parsed = parse(_saved(document), filename="security.docx")
    assert parsed.title == "Security handbook"
    assert block_with(parsed, "every 90 days").heading_path == ("Security handbook", "Passwords", "Rotation")


def test_docx_merged_cells_are_not_repeated():
    import docx

    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Quarter"
    table.cell(0, 2).text = "Total"
    for cell, value in zip(table.rows[1].cells, ("Q1", "Q2", "$9")):
        cell.text = value
    parsed = parse(_saved(document), filename="totals.docx")
    assert parsed.blocks[0].text.splitlines()[0] == "| Quarter | Total |  |"


def test_a_damaged_docx_is_reported_as_damaged():
    broken = filemakers.zip_of({"[Content_Types].xml": b"<Types", "word/document.xml": b"<w:document"})
    message = refusal(broken, "notes.docx", CorruptDocument)
    assert "damaged and could not be read" in message and "save a fresh copy" in message


def test_a_macro_enabled_word_file_is_refused_with_what_to_save_it_as():
    source = zipfile_members(filemakers.docx())
    source["[Content_Types].xml"] = source["[Content_Types].xml"].replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml",
    )
    assert "save it as a Word Document (.docx)" in refusal(filemakers.zip_of(source), "macros.docm", UnsupportedType)


# --- PowerPoint ---------------------------------------------------------------------------------------------------


def test_pptx_slides_are_pages_with_their_title_table_and_speaker_notes():
    parsed = parse(filemakers.pptx(), filename="deck.pptx")
    assert parsed.kind == "pptx" and parsed.page_count == 2
    body = block_with(parsed, "Ship the mobile app")
    assert body.page == 1 and body.heading_path == ("Quarterly goals",)
    assert block_with(parsed, "Notes: Mention the beta testers.").page == 1
    table = block_with(parsed, "Sales")
    assert table.kind == "table" and table.page == 2 and table.text.splitlines()[0] == "| Team | Budget |"
    assert [b.text for b in parsed.blocks if b.kind == "heading"] == ["Quarterly goals", "Budget"]


def test_an_untitled_slide_is_named_by_its_number_and_grouped_text_is_kept():
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])  # blank layout: no title
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "Grouped caption"
    parsed = parse(_saved(presentation), filename="blank.pptx")
    caption = block_with(parsed, "Grouped caption")
    assert caption.page == 1 and caption.heading_path == ("Slide 1",)


# --- Excel and CSV ------------------------------------------------------------------------------------------------


def test_spreadsheet_rows_carry_their_header_and_sheet():
    parsed = parse(filemakers.xlsx(), filename="directory.xlsx")
    assert parsed.kind == "xlsx"
    grace = block_with(parsed, "Grace")
    assert grace.text == "Name: Grace; Office: Boston; Extension: 102"
    assert grace.heading_path == ("Staff",)
    assert block_with(parsed, "Orion").heading_path == ("Rooms",)
    assert [b.text for b in parsed.blocks if b.kind == "heading"] == ["Staff", "Rooms"]
    assert len(parsed.blocks) == 5  # two headings, three rows: the empty row is skipped


def test_spreadsheet_values_read_as_people_write_them():
    import datetime as dt

    rows = [
        ("Item", "Price", "Due", "Paid", "Note"),
        ("Desk", 199.0, dt.datetime(2026, 3, 1), True, None),
        ("Lamp", 12.5),
    ]
    parsed = parse(filemakers.xlsx({"Orders": rows}), filename="orders.xlsx")
    assert texts(parsed)[1:] == ["Item: Desk; Price: 199; Due: 2026-03-01; Paid: TRUE", "Item: Lamp; Price: 12.5"]


def test_a_spreadsheet_template_with_a_note_and_only_headers_still_has_text():
    sheets = {
        "Readme": [(None, "How to use: review the risks fortnightly as a team.")],
        "Risks": [("Title", "Impact", "Owner")],
    }
    parsed = parse(filemakers.xlsx(sheets), filename="risk_tracker.xlsx")
    assert "How to use: review the risks fortnightly as a team." in texts(parsed)
    assert "Columns: Title; Impact; Owner" in texts(parsed)


def test_a_spreadsheet_past_the_cell_limit_is_too_large(monkeypatch):
    monkeypatch.setattr(tabular, "MAX_CELLS", 5)
    message = refusal(filemakers.xlsx(), "huge.xlsx", TooLarge)
    assert "more than 5 cells" in message and "split it" in message


def test_a_damaged_spreadsheet_is_reported_as_damaged():
    broken = filemakers.zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook"})
    assert "damaged" in refusal(broken, "budget.xlsx", CorruptDocument)


def test_csv_rows_carry_their_header():
    parsed = parse(filemakers.csv_bytes(), filename="directory.csv")
    assert parsed.kind == "csv"
    assert texts(parsed) == ["Name: Ada; Office: London; Extension: 101", "Name: Grace; Office: Boston; Extension: 102"]


@pytest.mark.parametrize(("delimiter", "filename"), [(";", "europe.csv"), ("\t", "export.tsv"), ("|", "pipes.csv")])
def test_csv_delimiters_are_sniffed(delimiter, filename):
    parsed = parse(filemakers.csv_bytes(delimiter), filename=filename)
    assert texts(parsed)[0] == "Name: Ada; Office: London; Extension: 101"


def test_csv_quoted_fields_keep_their_commas_and_windows_encoding():
    data = 'Name,Note\r\nRen\u00e9,"Prefers tea, not coffee"\r\n'.encode("cp1252")
    assert texts(parse(data, filename="people.csv")) == ["Name: Ren\u00e9; Note: Prefers tea, not coffee"]


def test_csv_past_the_cell_limit_is_too_large(monkeypatch):
    monkeypatch.setattr(tabular, "MAX_CELLS", 4)
    refusal(filemakers.csv_bytes(), "big.csv", TooLarge)


# --- HTML ---------------------------------------------------------------------------------------------------------


def test_html_keeps_the_main_content_only():
    parsed = parse(filemakers.html(), filename="expenses.html")
    text = "\n".join(texts(parsed))
    assert parsed.kind == "html" and parsed.title == "Expense policy"
    assert "Meals are capped at $60 per day." in text
    for noise in ("tracking pixel", "Site menu", "Intranet header", "Copyright footer", "Related links", "color:red"):
        assert noise not in text


def test_html_headings_tables_and_lists_keep_their_structure():
    parsed = parse(filemakers.html(), filename="expenses.html")
    assert block_with(parsed, "capped at $60").heading_path == ("Expenses", "Meals")
    assert block_with(parsed, "Hotel").kind == "table"
    assert block_with(parsed, "Hotel").text.splitlines()[0] == "| Item | Limit |"
    assert [b.text for b in parsed.blocks if b.kind == "list"] == ["- Keep receipts", "- Use the corporate card"]


def test_html_without_main_drops_page_chrome_but_keeps_an_articles_own_header():
    page = b"""<html><head><title>Blog</title></head><body>
    <header>Site banner</header><div role="navigation">Menu links</div>
    <article><header><h1>Release 2.0</h1></header><div>Text straight in a div.<br>Second line.</div>
    <ol><li>Install<ul><li>on Linux</li></ul></li><li>Run</li></ol><p hidden>Hidden draft</p></article>
    <div class="cookie" aria-hidden="true">Cookie banner</div></body></html>"""
    parsed = parse(page, filename="blog.html")
    assert texts(parsed) == [
        "Release 2.0",
        "Text straight in a div.\nSecond line.",
        "1. Install",
        "  - on Linux",
        "2. Run",
    ]
    assert block_with(parsed, "straight in a div").heading_path == ("Release 2.0",)


def test_html_in_a_legacy_encoding_is_decoded_with_its_meta_charset():
    greeting = "\u041f\u0440\u0438\u0432\u0435\u0442"
    page = f'<html><head><meta charset="windows-1251"></head><body><p>{greeting}</p></body></html>'
    assert texts(parse(page.encode("cp1251"), filename="ru.html")) == [greeting]


def test_html_without_a_title_is_titled_by_its_first_heading():
    assert parse(b"<html><body><h1>Holidays</h1><p>Ten days.</p></body></html>", filename="h.html").title == "Holidays"


def test_a_page_of_nothing_but_navigation_has_no_text_to_index():
    page = b"<html><body><nav>Home | About</nav><footer>(c) 2026</footer></body></html>"
    assert "no text to index" in refusal(page, "menu.html", EmptyDocument)


def test_deeply_nested_html_is_read():
    page = b"<html><body>" + b"<div>" * 3000 + b"Deep text." + b"</div>" * 3000 + b"</body></html>"
    assert texts(parse(page, filename="deep.html")) == ["Deep text."]


# --- Markdown -----------------------------------------------------------------------------------------------------


def test_markdown_front_matter_gives_the_title_and_is_not_text():
    parsed = parse(filemakers.markdown(), filename="guide.md")
    assert parsed.kind == "markdown" and parsed.title == "Engineering guide"
    assert "layout: page" not in "\n".join(texts(parsed))
    assert texts(parsed)[0] == "Intro paragraph before any heading."


def test_markdown_headings_nest_and_a_hash_in_a_code_fence_is_not_one():
    parsed = parse(filemakers.markdown(), filename="guide.md")
    assert block_with(parsed, "post-hoc review").heading_path == ("Engineering", "Code review", "Hotfixes")
    code = block_with(parsed, "# not a heading")
    assert code.kind == "code" and code.heading_path == ("Engineering", "Code review")
    assert code.text == '```python\n# not a heading\nprint("hello")\n```'


def test_markdown_tables_are_one_block():
    table = block_with(parse(filemakers.markdown(), filename="guide.md"), "| API | Team A |")
    assert table.kind == "table" and table.text.splitlines()[0] == "| Service | Owner |"


def test_markdown_setext_headings_lists_and_template_tags():
    source = b"""Handbook
========

Leave
-----

{% include "leave.html" %}

- Ask your manager
- Log it in the HR tool
  - before the first day
"""
    parsed = parse(source, filename="handbook.md")
    assert parsed.title == "Handbook"
    assert block_with(parsed, "{% include").heading_path == ("Handbook", "Leave")
    lists = [b.text for b in parsed.blocks if b.kind == "list"]
    assert lists == ["- Ask your manager", "- Log it in the HR tool\n  - before the first day"]


# --- plain text ---------------------------------------------------------------------------------------------------


def test_plain_text_is_split_into_paragraphs_on_blank_lines():
    parsed = parse(b"First line\nstill first.\r\n\r\n  \nSecond.\n", filename="notes.txt")
    assert parsed.kind == "text" and texts(parsed) == ["First line\nstill first.", "Second."]


def test_plain_text_in_legacy_windows_encoding_is_read():
    parsed = parse("Caf\xe9 opens at 8.\n\nParking is free.".encode("cp1252"), filename="notes.txt")
    assert texts(parsed) == ["Café opens at 8.", "Parking is free."]


def test_utf16_text_is_read():
    assert texts(parse("Z\u00fcrich office.".encode("utf-16"), filename="notes.txt")) == ["Z\u00fcrich office."]


# --- dispatch and refusals ----------------------------------------------------------------------------------------


def test_a_given_kind_skips_detection():
    assert parse(b"# Not a heading here", filename="notes.md", kind="text").blocks[0].kind == "paragraph"


def test_type_is_detected_from_content_when_the_extension_lies():
    assert parse(filemakers.docx(), filename="notes.txt").kind == "docx"


def test_a_plain_zip_is_not_parsed_as_a_document():
    message = refusal(filemakers.zip_of({"a.txt": b"x"}), "bundle.zip", UnsupportedType)
    assert "zip archive" in message and "upload" in message


@pytest.mark.parametrize(
    ("data", "name", "error", "advice"),
    [
        (b"", "empty.txt", EmptyDocument, "empty"),
        (b"  \n\t \n", "blank.md", EmptyDocument, "empty"),
        (filemakers.encrypted_pdf(), "salaries.pdf", EncryptedDocument, "upload an unlocked copy"),
        (filemakers.scanned_pdf(), "scan.pdf", EmptyDocument, "run OCR"),
        (filemakers.truncated_pdf(), "cut.pdf", CorruptDocument, "could not be read"),
        (b"plain words, not a PDF at all", "report.pdf", UnsupportedType, "not a PDF"),
        (filemakers.png(), "photo.png", UnsupportedType, "PNG image"),
        (filemakers.elf(), "tool", UnsupportedType, "program"),
        (bytes(range(256)) * 8, "random.bin", UnsupportedType, "Lantern reads PDF"),
        (filemakers.encrypted_office(), "locked.docx", EncryptedDocument, "password-protected"),
        (filemakers.legacy_office(), "old.doc", UnsupportedType, "save it as .docx"),
        (b"PK\x03\x04 broken zip", "broken.docx", CorruptDocument, "damaged"),
        (b"", "empty.pdf", EmptyDocument, "empty"),
    ],
)
def test_bad_input_gets_an_error_naming_the_file_and_what_to_do(data, name, error, advice):
    assert advice in refusal(data, name, error)


@pytest.mark.parametrize(
    ("maker", "filename"),
    [
        (lambda: filemakers.pdf(["Hello world. " * 30, "Second page."]), "a.pdf"),
        (filemakers.docx, "a.docx"),
        (filemakers.pptx, "a.pptx"),
        (filemakers.xlsx, "a.xlsx"),
    ],
)
def test_truncated_or_scrambled_files_raise_only_ingestion_errors(maker, filename):
    rng = random.Random(filename)
    original = maker()
    damaged = [original[: rng.randrange(1, len(original))] for _ in range(15)]
    for _ in range(40):
        scrambled = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            scrambled[rng.randrange(len(scrambled))] = rng.randrange(256)
        damaged.append(bytes(scrambled))
    for data in damaged:
        try:
            parse(data, filename=filename)
        except IngestionError as error:
            assert filename in str(error)


# --- helpers ------------------------------------------------------------------------------------------------------


def _saved(document) -> bytes:
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zipfile_members(data: bytes) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
