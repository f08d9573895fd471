from ingestion import embedding
from ingestion.chunking import Chunker, chunk_document
from ingestion.types import Block, ParsedDocument

LIMIT = embedding.max_sequence_tokens()  # 256 word pieces, [CLS] and [SEP] included


def sentences(n: int, topic: str) -> str:
    return " ".join(f"The {topic} policy rule number {i} says employees must file form {i} before day {i}." for i in range(n))


def model_tokens(text: str) -> int:
    return len(embedding.tokenizer().encode(text).ids)  # with the model's special tokens


def test_no_chunk_is_longer_than_the_model_reads_title_and_headings_included():
    long_title = "Annual report " * 40
    parsed = ParsedDocument(
        kind="text",
        blocks=[
            Block(sentences(120, "travel"), heading_path=("Travel", "Per diem")),
            Block("word" * 2000),  # one enormous token run with no sentence boundary
            Block("| a | b |\n|---|---|\n" + "\n".join(f"| row {i} | value {i} |" for i in range(300)), kind="table"),
        ],
    )
    drafts = chunk_document(parsed, title=long_title).drafts
    assert len(drafts) > 10
    assert max(model_tokens(d.embed_text) for d in drafts) <= LIMIT


def test_every_chunk_carries_its_title_and_heading_path_for_embedding():
    parsed = ParsedDocument(kind="markdown", blocks=[Block(sentences(3, "leave"), heading_path=("Leave", "Annual leave"))])
    [draft] = chunk_document(parsed, title="Employee handbook").drafts
    assert draft.embed_text.startswith("Employee handbook\nLeave > Annual leave\n")
    assert draft.heading_path == ("Leave", "Annual leave")


def test_sections_of_useful_size_become_separate_chunks():
    parsed = ParsedDocument(
        kind="markdown",
        blocks=[
            Block("Leave", kind="heading", heading_path=("Leave",)),
            Block(sentences(5, "leave"), heading_path=("Leave",)),
            Block("Travel", kind="heading", heading_path=("Travel",)),
            Block(sentences(5, "travel"), heading_path=("Travel",)),
        ],
    )
    drafts = chunk_document(parsed, title="Handbook").drafts
    assert [d.heading_path for d in drafts] == [("Leave",), ("Travel",)]
    assert "travel" not in drafts[0].text and "leave" not in drafts[1].text


def test_tiny_sections_are_merged_with_the_next_one_keeping_its_heading_line():
    parsed = ParsedDocument(
        kind="markdown",
        blocks=[
            Block("Contacts", kind="heading", heading_path=("Contacts",)),
            Block("Email hr@example.com.", heading_path=("Contacts",)),
            Block("Phone", kind="heading", heading_path=("Contacts", "Phone")),
            Block("Call 555-0100.", heading_path=("Contacts", "Phone")),
        ],
    )
    [draft] = chunk_document(parsed, title="Handbook").drafts
    assert draft.text == "Email hr@example.com.\n\nPhone\n\nCall 555-0100."


def test_a_paragraph_that_fits_is_never_split():
    short = sentences(4, "badge")
    parsed = ParsedDocument(kind="text", blocks=[Block(sentences(9, "parking")), Block(short), Block(sentences(9, "travel"))])
    drafts = chunk_document(parsed, title="Handbook").drafts
    assert len([d for d in drafts if short in d.text]) == 1  # whole in one chunk (elsewhere only as overlap)


def test_consecutive_pieces_of_a_long_paragraph_overlap():
    parsed = ParsedDocument(kind="text", blocks=[Block(sentences(60, "security"))])
    drafts = Chunker(title="T", overlap_tokens=40).chunk(parsed).drafts
    assert len(drafts) >= 3
    for before, after in zip(drafts, drafts[1:]):
        assert after.char_start < before.char_end  # the next chunk starts inside the previous one
        assert before.text[-30:] in after.text


def test_a_table_too_long_for_one_chunk_repeats_its_header_in_each_piece():
    header = "| Name | Office |\n|---|---|"
    table = header + "\n" + "\n".join(f"| Person {i} | Room {i} |" for i in range(200))
    drafts = chunk_document(ParsedDocument(kind="docx", blocks=[Block(table, kind="table")]), title="Directory").drafts
    assert len(drafts) > 1
    assert all(d.text.startswith(header) for d in drafts)
    assert all(f"| Person {i} | Room {i} |" in "".join(d.text for d in drafts) for i in range(200))


def test_a_table_that_fits_stays_in_one_chunk():
    table = "| Grade | Days |\n|---|---|\n| A | 13 |\n| B | 20 |"
    parsed = ParsedDocument(kind="docx", blocks=[Block(sentences(2, "leave")), Block(table, kind="table")])
    drafts = chunk_document(parsed, title="Leave").drafts
    assert any(table in d.text for d in drafts)


def test_character_spans_locate_each_chunk_in_the_extracted_text():
    parsed = ParsedDocument(kind="text", blocks=[Block(sentences(30, "expense")), Block(sentences(30, "remote work"))])
    result = chunk_document(parsed, title="Policies")
    for draft in result.drafts:
        assert result.text[draft.char_start : draft.char_end] == draft.text


def test_chunks_report_the_pages_they_come_from():
    parsed = ParsedDocument(
        kind="pdf",
        page_count=3,
        blocks=[Block(sentences(12, "page one"), page=1), Block(sentences(12, "page two"), page=2), Block(sentences(12, "page three"), page=3)],
    )
    drafts = chunk_document(parsed, title="Report").drafts
    assert drafts[0].page_start == 1
    assert drafts[-1].page_end == 3
    third = next(d for d in drafts if "page three" in d.text)
    assert third.page_end == 3


def test_sentences_and_rows_counted_from_their_block_match_the_tokenizer_on_their_own():
    # The chunker tokenizes each block once and counts its sentences from the word pieces' offsets.
    mixed = (
        "Café prices rose 12.5% in Zürich; see https://example.com/a_b?c=1. 東京 office\u00a0opens at 9:00!\n"
        "Tabs\tand\u2003em spaces count too. Naïve résumé co\u0301ntent.\nsupercalifragilisticexpialidocious" * 6
    )
    table = "| a | b |\n|---|---|\n" + "\n".join(f"| naïve row {i} | 値 {i} |" for i in range(200))
    chunker = Chunker(title="T", overlap_tokens=8)
    for kind, text in (("paragraph", mixed), ("table", table)):
        units = chunker.units_of(0, Block(text, kind=kind), (0, len(text)), text)
        assert len(units) > 3
        for unit in units:
            assert unit.tokens == embedding.count_tokens(text[unit.start : unit.end])


def test_each_chunk_records_its_own_word_piece_count():
    parsed = ParsedDocument(kind="text", blocks=[Block(sentences(40, "Zürich café")), Block("word" * 900)])
    for draft in chunk_document(parsed, title="Policies").drafts:
        assert draft.token_count == embedding.count_tokens(draft.text)
