"""Every supported format parsed from a real file, and every kind of bad input refused with a clear reason."""

import pytest

from ingestion.detection import detect_kind
from ingestion.parsers import parse
from ingestion.types import CorruptDocument, EmptyDocument, EncryptedDocument, UnsupportedType

from . import filemakers


def block_with(parsed, fragment: str):
    return next(b for b in parsed.blocks if fragment in b.text)


def test_pdf_text_keeps_its_page_numbers_and_metadata_title():
    parsed = parse(filemakers.pdf(["Welcome to the team.", "Badges are issued on day two."], title="Onboarding"), filename="onboarding.pdf")
    assert parsed.kind == "pdf" and parsed.page_count == 2 and parsed.title == "Onboarding"
    assert block_with(parsed, "Badges are issued").page == 2
    assert block_with(parsed, "Welcome").page == 1


def test_docx_keeps_headings_as_the_path_and_tables_whole_in_reading_order():
    parsed = parse(filemakers.docx(title="Benefits guide"), filename="benefits.docx")
    assert parsed.title == "Benefits guide"
    assert block_with(parsed, "two cleanings").heading_path == ("Benefits", "Dental")
    table = next(b for b in parsed.blocks if b.kind == "table")
    assert table.text.splitlines()[0] == "| Plan | Monthly cost |" and "| Plus | $45 |" in table.text
    order = [b.text for b in parsed.blocks]
    assert order.index(table.text) < order.index("Glasses are reimbursed up to $150.")


def test_pptx_slides_are_pages_with_their_title_table_and_speaker_notes():
    parsed = parse(filemakers.pptx(), filename="deck.pptx")
    assert parsed.page_count == 2
    body = block_with(parsed, "Ship the mobile app")
    assert body.page == 1 and body.heading_path == ("Quarterly goals",)
    assert block_with(parsed, "Notes: Mention the beta testers").page == 1
    assert "| Sales | $10k |" in block_with(parsed, "Sales").text


def test_spreadsheet_rows_carry_their_header_and_sheet():
    parsed = parse(filemakers.xlsx(), filename="directory.xlsx")
    grace = block_with(parsed, "Grace")
    assert grace.text == "Name: Grace; Office: Boston; Extension: 102"
    assert grace.heading_path == ("Staff",)
    assert block_with(parsed, "Orion").heading_path == ("Rooms",)


def test_a_spreadsheet_template_with_a_note_and_only_headers_still_has_text():
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append([None, "How to use: review the risks fortnightly as a team."])
    headers = workbook.create_sheet("Risks")
    headers.append(["Title", "Impact", "Owner"])
    out = io.BytesIO()
    workbook.save(out)
    parsed = parse(out.getvalue(), filename="risk_tracker.xlsx")
    texts = [b.text for b in parsed.blocks]
    assert "How to use: review the risks fortnightly as a team." in texts
    assert "Columns: Title; Impact; Owner" in texts


def test_csv_rows_carry_their_header():
    parsed = parse(filemakers.csv_bytes(), filename="directory.csv")
    assert parsed.kind == "csv"
    assert [b.text for b in parsed.blocks] == ["Name: Ada; Office: London; Extension: 101", "Name: Grace; Office: Boston; Extension: 102"]


def test_html_keeps_the_main_content_only():
    parsed = parse(filemakers.html(), filename="expenses.html")
    text = "\n".join(b.text for b in parsed.blocks)
    assert parsed.title == "Expense policy"
    assert "Meals are capped at $60 per day." in text and "| Hotel | $200 |" in text and "- Keep receipts" in text
    for noise in ("tracking pixel", "Site menu", "Intranet header", "Copyright footer", "Related links", "color:red"):
        assert noise not in text
    assert block_with(parsed, "capped at $60").heading_path == ("Expenses", "Meals")


def test_markdown_headings_code_fences_tables_and_front_matter():
    parsed = parse(filemakers.markdown(), filename="guide.md")
    assert parsed.title == "Engineering guide"
    assert "layout: page" not in "\n".join(b.text for b in parsed.blocks)
    assert block_with(parsed, "post-hoc review").heading_path == ("Engineering", "Code review", "Hotfixes")
    code = block_with(parsed, "# not a heading")
    assert code.kind == "code" and code.heading_path == ("Engineering", "Code review")
    assert block_with(parsed, "| API | Team A |").kind == "table"


def test_plain_text_in_legacy_windows_encoding_is_read():
    parsed = parse("Caf\xe9 opens at 8.\n\nParking is free.".encode("cp1252"), filename="notes.txt")
    assert [b.text for b in parsed.blocks] == ["Café opens at 8.", "Parking is free."]


def test_type_is_detected_from_content_when_the_extension_lies():
    assert detect_kind(filemakers.docx(), filename="notes.txt") == "docx"
    assert detect_kind(filemakers.pdf(["x"]), filename="scan.jpg") == "pdf"
    assert detect_kind(filemakers.zip_of({"a.txt": b"x"}), filename="bundle.bin") == "zip"


@pytest.mark.parametrize(
    ("data", "name", "error", "advice"),
    [
        (b"", "empty.txt", EmptyDocument, "empty"),
        (b"  \n\t \n", "blank.md", EmptyDocument, "empty"),
        (filemakers.encrypted_pdf(), "salaries.pdf", EncryptedDocument, "upload an unlocked copy"),
        (filemakers.scanned_pdf(), "scan.pdf", EmptyDocument, "run OCR"),
        (filemakers.pdf(["Truncated"])[:300], "cut.pdf", CorruptDocument, "could not be read"),
        (b"%PDF-1.7\nnot really a pdf", "fake.pdf", CorruptDocument, "could not be read"),
        (b"plain words, not a PDF at all", "report.pdf", UnsupportedType, "not a PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "photo.png", UnsupportedType, "PNG image"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 32, "tool", UnsupportedType, "program"),
        (bytes(range(256)) * 8, "random.bin", UnsupportedType, "it reads PDF"),
        (filemakers.encrypted_office(), "locked.docx", EncryptedDocument, "password-protected"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.doc", UnsupportedType, "save it as .docx"),
        (b"PK\x03\x04 broken zip", "broken.docx", UnsupportedType, "damaged"),
    ],
)
def test_bad_input_gets_an_error_naming_the_file_and_what_to_do(data, name, error, advice):
    with pytest.raises(error) as raised:
        parse(data, filename=name)
    assert name in str(raised.value) and advice in str(raised.value)


def test_a_plain_zip_is_not_parsed_as_a_document():
    with pytest.raises(UnsupportedType, match="archive"):
        parse(filemakers.zip_of({"a.txt": b"x"}), filename="bundle.zip")
