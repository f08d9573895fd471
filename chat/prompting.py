"""The prompts the language model reads: a grounded answer from numbered passages, and a follow-up made standalone.

A CPU model reads the prompt at a few dozen tokens per second, so the prompt is kept under PROMPT_TOKEN_BUDGET:
the system prompt and two example turns are a fixed prefix (llama.cpp reuses its cached state, so after the first
question only the rest is read), the question always goes in, passages go in whole in rank order until the budget
is reached and the next one is cut at a sentence boundary, and the earlier turns of the conversation get what a
small share of the budget allows, most recent first. Passages reach the model compacted (`compact_text`).

Tokens are counted with `llm.estimate_tokens` (characters / 3.5), not the server's tokenizer: it costs nothing, needs
no running model (building a prompt must not wait for one to load), gives the same prompt on every server, and
leans high for English prose, so the real prompt is within the budget (measured: see benchmarks/answer.py).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from .llm import CHARS_PER_TOKEN_ESTIMATE, estimate_tokens

if TYPE_CHECKING:
    from kb.selectors import Passage

NOT_FOUND = "I could not find this in the knowledge base."

# Kept fixed (no dates, names or counts in it), like the example turns after it, so the server's KV cache of this
# prefix is reused by every question. Measured with the packaged 1.5B model on handbook questions (benchmarks and
# the report of this change): without example turns it answered "[1]" alone, or without any citation, or gave
# NOT_FOUND for answerable questions; an extra "cite each fact" reminder after the question made it answer NOT_FOUND
# to everything. One worked example of each outcome fixed both.
SYSTEM_PROMPT = (
    "You are Lantern, an assistant that answers employees' questions using passages from the company's documents. "
    "Answer only from the passages. Cite the passage number in square brackets after each fact, like [1]. "
    f"Answer in the language of the question. If the passages do not contain the answer, reply: {NOT_FOUND}"
)
_EXAMPLE_PASSAGES = (
    "Passages:\n"
    "[1] Travel > Booking flights\nBook flights through the travel portal at least 14 days before departure.\n"
    "[2] Equipment > Laptops\nLaptops are replaced every four years. Ask the IT desk for a replacement."
)
# The answered example comes last: the model leans towards the turn it read most recently.
EXAMPLE_TURNS = [
    {"role": "user", "content": f"{_EXAMPLE_PASSAGES}\n\nQuestion: How much is the parking fee at the office?"},
    {"role": "assistant", "content": NOT_FOUND},
    {"role": "user", "content": f"{_EXAMPLE_PASSAGES}\n\nQuestion: How often do I get a new laptop?"},
    {"role": "assistant", "content": "You get a new laptop every four years [2]; ask the IT desk for it [2]."},
]

REWRITE_SYSTEM_PROMPT = (
    "Rewrite the user's last question as one standalone search query, using the conversation only to fill in "
    "what the question refers to. Reply with the query alone, in the language of the question."
)

# Chat-template tokens around each message (Qwen: "<|im_start|>role\n" ... "<|im_end|>\n"), and the assistant
# header that starts the reply.
TOKENS_PER_MESSAGE = 5
TOKENS_FOR_REPLY = 3
# A passage cut shorter than this says too little to be worth its header.
MIN_TRIMMED_PASSAGE_TOKENS = 40
# The earlier turns may use at most this share of the budget; each earlier answer at most this many tokens.
HISTORY_SHARE = 0.2
HISTORY_ANSWER_TOKENS = 80
# A question pasted with pages of text keeps at most this share of the budget, so passages still fit.
QUESTION_SHARE = 0.4

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_WORD = re.compile(r"\w+")
STEM_CHARS = 5
_STOP_WORDS = frozenset(
    "the and for are was were what when where which who whom why how does did can could should would will with "
    "from that this these those there their them they you your our have has had not any all about into onto than "
    "then but its it's may might must shall per via get got do is am be an as at by if in of on or to up".split()
)
_SENTENCE_END = re.compile(r"[.!?。！？](?=[\s\"')\]]|$)|\n")
# [words](target) and ![alt](target); a target may hold one level of parentheses or a {% template tag %}.
_MARKDOWN_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:\{%[^%]*%\}|[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)")
_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


@dataclass(frozen=True)
class Prompt:
    messages: list[dict]  # OpenAI chat messages
    # The passages as the model read them: numbered 1..n as their [n] markers, text compacted (`compact_text`), the
    # last one possibly cut short.
    passages: list[Passage]
    prompt_tokens: int  # estimated, chat-template tokens included


def build_messages(*, question: str, passages: Sequence[Passage], history: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The answer prompt for `question` over `passages` (best first) after the (question, answer) turns in `history`."""
    budget = settings.PROMPT_TOKEN_BUDGET
    question = _cut_to_tokens(question.strip(), int(budget * QUESTION_SHARE))
    prefix = prefix_messages()
    fixed = sum(_message_tokens(m["content"]) for m in prefix) + _message_tokens(_user_content("", question))
    fixed += TOKENS_FOR_REPLY
    turns = _history_messages(history, budget=min(int(budget * HISTORY_SHARE), max(0, budget - fixed)))
    used = fixed + sum(_message_tokens(m["content"]) for m in turns)
    included = _fit_passages(passages, budget=budget - used, question=question)
    user = _user_content(_passages_block(included), question)
    messages = [*prefix, *turns, {"role": "user", "content": user}]
    tokens = sum(_message_tokens(m["content"]) for m in messages) + TOKENS_FOR_REPLY
    return Prompt(messages=messages, passages=included, prompt_tokens=tokens)


def prefix_messages() -> list[dict]:
    """The fixed start of every answer prompt."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *EXAMPLE_TURNS]


def warm_up_messages() -> list[dict]:
    """The fixed prefix and the start of a question: asked once (max_tokens=1) when the model server starts, it
    leaves the prefix in the server's cache, so the first real question does not wait for it to be read."""
    return [*prefix_messages(), {"role": "user", "content": "Passages:"}]


def rewrite_messages(*, question: str, history: Sequence[tuple[str, str]]) -> list[dict]:
    """A small prompt asking the model to turn a follow-up ("and for contractors?") into a standalone query."""
    lines = []
    for asked, answered in list(history)[-2:]:
        lines.append(f"User: {_cut_to_tokens(asked.strip(), 60)}")
        lines.append(f"Assistant: {_cut_to_tokens(_without_markers(answered), 60)}")
    conversation = "\n".join(lines)
    user = f"Conversation:\n{conversation}\n\nLast question: {question.strip()}\n\nStandalone search query:"
    return [{"role": "system", "content": REWRITE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


# --- Abstention ----------------------------------------------------------------------------------

# "Not found" as the model phrases it, after normalising (lower case, no accents, ’ -> ', markers removed).
_ABSTENTION_PATTERNS = [
    r"\b(?:i|we) (?:could not|couldn't|cannot|can't|can not|did not|didn't|was unable to|am unable to) find\b",
    r"\b(?:not|isn't|is not) (?:found|mentioned|covered|included|addressed|stated) in (?:the|this|our|these) "
    r"(?:knowledge base|passages|documents|context|provided)",
    r"\b(?:knowledge base|passages|documents|provided (?:passages|context)) (?:do|does|did) not "
    r"(?:contain|include|mention|cover|say|provide|specify|state|address)",
    r"\bno (?:information|answer|mention) (?:about|on|of|for|regarding|in)\b",
    r"\bnicht in der wissens",  # de: "... nicht in der Wissensdatenbank finden"
    r"\b(?:konnte|kann)\b[^.]{0,60}\b(?:nicht|nichts|keine)\b[^.]{0,60}\bfinden\b",  # de: "konnte dazu nichts finden"
    r"\bje n'ai pas (?:pu )?trouve",  # fr
    r"\b(?:no (?:pude|he podido|pudimos|encontre)|no se encontro)",  # es
    r"\bnon (?:sono riuscit[oa] a trovare|ho trovato|e stato possibile trovare)",  # it
    r"\bnao (?:consegui|encontrei|foi possivel encontrar)",  # pt
    r"\b(?:kon|heb) (?:dit |dat |het )?niet (?:vinden|gevonden)",  # nl
]
_ABSTENTION = re.compile("|".join(f"(?:{p})" for p in _ABSTENTION_PATTERNS))
_NOT_FOUND_CORE = "could not find this in the knowledge base"
_ANSWER_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def is_abstention(answer: str) -> bool:
    """True when the answer says the knowledge base does not hold the answer (NOT_FOUND or a close variant).

    It does when it opens with a not-found sentence that cites nothing (or is NOT_FOUND itself), or when it cites no
    passage at all and says not-found somewhere. "The passages do not name the form, but the deadline is 45 days [1]"
    and "Up to 240 hours [1]. I could not find the form, though." are answers.
    """
    sentences = [s for s in _ANSWER_SENTENCE.split(answer.strip()) if s.strip()]
    if not sentences:
        return False
    first = _normalised(sentences[0])
    if _NOT_FOUND_CORE in first:
        return True
    if _ABSTENTION.search(first) and not _MARKER.search(sentences[0]):
        return True
    return not _MARKER.search(answer) and any(_ABSTENTION.search(_normalised(s)) for s in sentences)


def _normalised(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_without_markers(text).lower().split())


# --- Budget --------------------------------------------------------------------------------------


def _message_tokens(content: str) -> int:
    return estimate_tokens(content) + TOKENS_PER_MESSAGE


def _user_content(passages_block: str, question: str) -> str:
    return f"Passages:\n{passages_block}\n\nQuestion: {question}"


def _passage_header(n: int, passage: Passage) -> str:
    """"[1] Leave policy > Annual leave (page 3)": where the passage comes from, for the model and for citing."""
    path = [passage.title] + [h for h in passage.heading_path if h and h != passage.title]
    page = f" (page {passage.page})" if passage.page else ""
    return f"[{n}] {' > '.join(p for p in path if p)}{page}"


def _passage_entry(n: int, passage: Passage) -> str:
    return f"{_passage_header(n, passage)}\n{passage.text.strip()}"


def _passages_block(passages: Sequence[Passage]) -> str:
    return "\n\n".join(_passage_entry(p.n, p) for p in passages)


def _fit_passages(passages: Sequence[Passage], *, budget: int, question: str = "") -> list[Passage]:
    """Passages in rank order, each focused on the question (`focus_text`), while they fit; then the next one cut at
    a sentence boundary if enough is left.

    Estimated piecewise; the joined block is never longer than the sum of its pieces plus their separators.
    """
    included: list[Passage] = []
    left = budget
    for passage in passages:
        n = len(included) + 1
        text = compact_text(passage.text)
        passage = dataclasses.replace(passage, text=focus_text(text, question=question, tokens=_passage_cap(n)))
        cost = estimate_tokens(_passage_entry(n, passage) + "\n\n")
        if cost <= left:
            included.append(dataclasses.replace(passage, n=n))
            left -= cost
            continue
        room = left - estimate_tokens(_passage_header(n, passage) + "\n" + "\n\n")
        if not included:
            # A prompt without passages can only end in NOT_FOUND: the best passage goes in, however small the budget.
            room = max(room, MIN_TRIMMED_PASSAGE_TOKENS)
        if room >= MIN_TRIMMED_PASSAGE_TOKENS:
            text = _cut_at_sentence(passage.text.strip(), room)
            if text:
                included.append(dataclasses.replace(passage, n=n, text=text))
        break
    return included


def _passage_cap(n: int) -> int:
    """Most tokens passage `n` may take: the best passage PROMPT_PASSAGE_TOKENS, the others two thirds of it
    (0: whole passages)."""
    cap = settings.PROMPT_PASSAGE_TOKENS
    if cap <= 0:
        return 1 << 30
    return cap if n == 1 else max(MIN_TRIMMED_PASSAGE_TOKENS, cap * 2 // 3)


def focus_text(text: str, *, question: str, tokens: int) -> str:
    """The run of consecutive sentences of `text` that fits in `tokens` around the sentence sharing most words with
    the question, growing towards the neighbour that shares more (the next one on a tie); "…" marks what was left out.

    Every token the model reads costs time on a CPU, and the words around a matching sentence are where an answer
    usually is; the passage page still shows the whole passage.
    """
    if estimate_tokens(text) <= tokens:
        return text
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(text) if s.strip()]
    if len(sentences) < 2:
        return _cut_to_tokens(text, tokens)
    wanted = _stems(question)
    overlap = [len(wanted & _stems(s)) for s in sentences]
    best = max(range(len(sentences)), key=lambda i: (overlap[i], -i))
    first = last = best
    used = estimate_tokens(sentences[best])
    if used > tokens:
        return _cut_to_tokens(sentences[best], tokens)
    while True:
        options = [i for i in (last + 1, first - 1) if 0 <= i < len(sentences)]
        if not options:
            break
        pick = max(options, key=lambda i: (overlap[i], i > last))
        cost = estimate_tokens(sentences[pick]) + 1
        if used + cost > tokens:
            break
        used += cost
        first, last = min(first, pick), max(last, pick)
    body = " ".join(sentences[first : last + 1])
    return ("… " if first > 0 else "") + body + (" …" if last < len(sentences) - 1 else "")


def _stems(text: str) -> set[str]:
    """Content words of `text`, lower-cased and cut to their first letters (a crude stem that needs no language)."""
    words = _WORD.findall(text.lower())
    return {w if w.isdigit() else w[:STEM_CHARS] for w in words if w.isdigit() or (len(w) > 2 and w not in _STOP_WORDS)}


def compact_text(text: str) -> str:
    """Passage text with fewer tokens and the same meaning: markdown links keep their words and lose their
    targets (a URL costs 20-40 tokens the model does not need; the passage page keeps the links), and runs of
    blank lines and spaces shrink to one."""
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()


def _cut_at_sentence(text: str, tokens: int) -> str:
    """The longest start of `text` that ends a sentence and fits in `tokens`; a word boundary and "…" if no
    sentence ends early enough to keep at least half of what fits."""
    if tokens <= 0:
        return ""
    if estimate_tokens(text) <= tokens:
        return text
    limit = _chars_for(tokens)
    head = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].rstrip()
    return _cut_to_tokens(text, tokens)


def _cut_to_tokens(text: str, tokens: int) -> str:
    """`text`, or its start cut at a word boundary with "…" so that it fits in `tokens`."""
    if estimate_tokens(text) <= tokens:
        return text
    limit = max(0, _chars_for(tokens) - 1)
    head = text[:limit]
    if " " in head[limit // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip() + "…"


def _chars_for(tokens: int) -> int:
    # The inverse of estimate_tokens (which rounds up): this many characters never estimate above `tokens`.
    return int(tokens * CHARS_PER_TOKEN_ESTIMATE)


def _history_messages(history: Sequence[tuple[str, str]], *, budget: int) -> list[dict]:
    """The most recent (question, answer) turns that fit in `budget`, oldest first, answers shortened and stripped
    of their [n] markers (those numbers pointed to another turn's passages)."""
    turns: list[list[dict]] = []
    left = budget
    for asked, answered in reversed(list(history)):
        pair = [
            {"role": "user", "content": asked.strip()},
            {"role": "assistant", "content": _cut_at_sentence(_without_markers(answered), HISTORY_ANSWER_TOKENS)},
        ]
        cost = sum(_message_tokens(m["content"]) for m in pair)
        if cost > left or not pair[1]["content"]:
            break
        turns.insert(0, pair)
        left -= cost
    return [message for pair in turns for message in pair]


def _without_markers(text: str) -> str:
    return _MARKER.sub("", text).strip()
