"""Checking the model's [n] citations against the passages they point to.

Markers to passages that were not in the prompt are removed. Every sentence that cites a passage gets a support
score for that passage, and is verified when the score reaches SUPPORT_THRESHOLD:

    support = 0.6 * lexical + 0.4 * cosine
    lexical = share of the sentence's content terms (stemmed, stop words removed) found in the passage
    cosine  = embedding similarity of the sentence and the passage's best-matching window of sentences

Lexical overlap is the sharper signal (a model answering from a passage reuses its words); the cosine rescues a
paraphrase in other words, but alone it cannot tell "about the same topic" from "says this", so it weighs less.
A number stated in the sentence but absent from the passage makes the citation unverified whatever the score: a
wrong figure with the right words around it is the hallucination that matters most. Sentences without markers are
left alone. Lexical overlap needs the answer and the passages in one language; the embedding model is English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ingestion.embedding import embed_interactive, lexical_terms

if TYPE_CHECKING:
    from kb.selectors import Passage

# Calibrated on the handbook eval set (reference answers against their evidence passage, a neighbouring passage of
# the same page and a passage of another page) and on the packaged model's own answers: supported sentences scored
# 0.55 to 0.95, other pages' passages 0.05 to 0.35 (higher only with a wrong number, caught separately), and a
# neighbouring passage of the same page 0.1 to 0.65, depending on how much of the fact it repeats.
SUPPORT_THRESHOLD = 0.5
LEXICAL_WEIGHT = 0.6
# A sentence with fewer content terms than this ("Yes [1].") claims nothing checkable beyond the question.
MIN_CHECKABLE_TERMS = 2
# Passage windows compared with a sentence: this many consecutive sentences, so a claim drawn from two adjacent
# sentences still matches, and a long merged passage is not truncated by the embedding model's 256-token limit.
WINDOW_SENTENCES = 3

# [1]  [1, 2]  [1,2]  [Passage 3]  (a run like [1][2] is two markers)
MARKER = re.compile(r"\[(?:passages?\s*)?(\d+(?:\s*,\s*\d+)*)\]", re.IGNORECASE)
# A sentence ends at . ! ? (with any markers right after it) before whitespace, or at a line break.
_SENTENCE = re.compile(
    r"[^\n]*?(?:[.!?。！？]+(?:\s*\[(?:passages?\s*)?\d+(?:\s*,\s*\d+)*\])*(?=\s|$)|(?=\n)|$)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# "one" is left out: as often a pronoun ("the one you use") as a number.
NUMBER_WORDS = {w: i for i, w in enumerate("two three four five six seven eight nine ten eleven twelve".split(), 2)}
_NUMBER_WORD = re.compile(rf"\b(?:{'|'.join(NUMBER_WORDS)})\b", re.IGNORECASE)
_LIST_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


@dataclass(frozen=True)
class Citation:
    n: int
    sentence: str  # the citing sentence, without its markers
    verified: bool
    support: float  # 0..1


@dataclass(frozen=True)
class CitationReport:
    text: str  # the answer with markers to nonexistent passages removed
    citations: list[Citation]

    @property
    def unverified(self) -> list[int]:
        """Passage numbers cited at least once by a sentence they do not support, in order of first citation."""
        seen: list[int] = []
        for citation in self.citations:
            if not citation.verified and citation.n not in seen:
                seen.append(citation.n)
        return seen


def check(*, answer: str, passages: Sequence[Passage]) -> CitationReport:
    """The answer with dangling markers removed, and one Citation per (sentence, cited passage)."""
    by_number = {p.n: p for p in passages}
    text = remove_dangling_markers(answer, valid=set(by_number))
    cited = cited_sentences(text)
    if not cited:
        return CitationReport(text=text, citations=[])
    scores = _support_scores(cited, by_number)
    citations = [
        Citation(n=n, sentence=sentence, verified=verified, support=support)
        for (sentence, n), (support, verified) in zip(_pairs(cited), scores)
    ]
    return CitationReport(text=text, citations=citations)


def remove_dangling_markers(text: str, *, valid: set[int]) -> str:
    """`text` with numbers that name no passage dropped from its markers, markers left empty removed, and the
    others written as the page links them ("[Passage 2]" -> "[2]")."""

    def keep_valid(match: re.Match) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        kept = [n for n in numbers if n in valid]
        if kept == numbers and match.group(0)[1].isdigit():
            return match.group(0)
        return f"[{', '.join(map(str, kept))}]" if kept else "\0"

    marked = MARKER.sub(keep_valid, text)
    if "\0" not in marked:
        return marked
    # Remove the space before a dropped marker ("claim [9]." -> "claim."), and a doubled space it leaves behind.
    cleaned = re.sub(r"[ \t]*\0", "", marked)
    return re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", cleaned)


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """(sentence without markers, cited passage numbers in order, once each) for each sentence with markers."""
    found = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        numbers: list[int] = []
        for marker in MARKER.finditer(sentence):
            for n in re.split(r"\s*,\s*", marker.group(1)):
                if int(n) not in numbers:
                    numbers.append(int(n))
        if numbers:
            found.append((_plain(sentence), numbers))
    return found


def _plain(sentence: str) -> str:
    without = MARKER.sub("", sentence)
    without = _LIST_BULLET.sub("", without)
    without = re.sub(r"\s+([.,;:!?])", r"\1", without)
    return " ".join(without.split())


def _pairs(cited: list[tuple[str, list[int]]]) -> list[tuple[str, int]]:
    return [(sentence, n) for sentence, numbers in cited for n in numbers]


# --- Support ---------------------------------------------------------------------------------------


def _support_scores(cited: list[tuple[str, list[int]]], passages: dict[int, Passage]) -> list[tuple[float, bool]]:
    """(support, verified) for each (sentence, passage) pair, in order; one embedding call for all of them."""
    pairs = _pairs(cited)
    checkable = [(sentence, n) for sentence, n in pairs if _checkable(sentence)]
    sentences = list(dict.fromkeys(sentence for sentence, _ in checkable))
    windows = {n: passage_windows(passages[n]) for n in dict.fromkeys(n for _, n in checkable)}
    cosines = _cosines(sentences, windows) if sentences else {}
    results = []
    for sentence, n in pairs:
        passage = passages[n]
        if not _checkable(sentence):
            results.append((1.0, True))
            continue
        lexical = lexical_support(sentence, passage)
        support = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosines[(sentence, n)]
        verified = support >= SUPPORT_THRESHOLD and not missing_numbers(sentence, passage)
        results.append((round(support, 3), verified))
    return results


def _checkable(sentence: str) -> bool:
    return len(set(lexical_terms(sentence))) >= MIN_CHECKABLE_TERMS or bool(_numbers(sentence))


def lexical_support(sentence: str, passage: Passage) -> float:
    """The share of the sentence's content terms that occur in the passage (its title and headings included)."""
    terms = set(lexical_terms(sentence))
    if not terms:
        return 0.0
    source = set(lexical_terms(_passage_source(passage)))
    return len(terms & source) / len(terms)


def missing_numbers(sentence: str, passage: Passage) -> list[str]:
    """Numbers the sentence states that the passage does not contain ("300 hours" against a passage saying 240)."""
    present = set(_numbers(_passage_source(passage)))
    return [n for n in _numbers(sentence) if n not in present]


def _numbers(text: str) -> list[str]:
    """Numbers in `text`, normalised: "1,000" is 1000, "05" is 5, and "two" is 2 (two to twelve)."""
    text = _NUMBER_WORD.sub(lambda m: str(NUMBER_WORDS[m.group(0).lower()]), text)
    numbers = [re.sub(r"(?<=\d),(?=\d{3}\b)", "", n) for n in _NUMBER.findall(text)]
    return [n.lstrip("0") or "0" if n.isdigit() else n for n in numbers]


def _passage_source(passage: Passage) -> str:
    return " ".join([passage.title, *passage.heading_path, passage.text])


def passage_windows(passage: Passage) -> list[str]:
    """Overlapping runs of WINDOW_SENTENCES sentences covering the passage (the passage itself if shorter)."""
    sentences = [_plain(m.group(0)) for m in _SENTENCE.finditer(passage.text)]
    sentences = [s for s in sentences if s]
    if len(sentences) <= WINDOW_SENTENCES:
        return [" ".join(sentences) or passage.text]
    return [" ".join(sentences[i : i + WINDOW_SENTENCES]) for i in range(len(sentences) - WINDOW_SENTENCES + 1)]


def _cosines(sentences: list[str], windows: dict[int, list[str]]) -> dict[tuple[str, int], float]:
    """Cosine of each sentence with each cited passage's best window, from one batched embedding call."""
    window_texts = [w for ws in windows.values() for w in ws]
    vectors = embed_interactive(sentences + window_texts)
    sentence_vectors = vectors[: len(sentences)]
    result: dict[tuple[str, int], float] = {}
    offset = len(sentences)
    for n, ws in windows.items():
        block = vectors[offset : offset + len(ws)]
        offset += len(ws)
        best = (sentence_vectors @ block.T).max(axis=1) if len(ws) else np.zeros(len(sentences))
        for sentence, score in zip(sentences, best):
            result[(sentence, n)] = max(0.0, float(score))
    return result
