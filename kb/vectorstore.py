"""The only module that talks to Qdrant.

One Qdrant collection holds every chunk: a dense vector (cosine) and a sparse lexical vector (IDF modifier), with
payload `document_id`, `collection_id`, `version`, `ordinal`, `page`. In embedded mode the client opens a local
folder, which Qdrant locks to one process; every call here goes through one client per process.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from qdrant_client import QdrantClient, models

from ingestion.types import SparseVector

from .embedded_index import EmbeddedIndex

logger = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "sparse"
INDEXED_FIELDS = ("document_id", "collection_id", "version")

# Searches in embedded mode go to the in-process mirror, so local mode's warning about large collections (it is
# about its own search speed) does not apply.
warnings.filterwarnings("ignore", message="Local mode is not recommended", category=UserWarning)

_client: QdrantClient | None = None
_index: EmbeddedIndex | None = None  # embedded mode: the in-process search mirror (kb/embedded_index.py)
_client_lock = threading.Lock()
# Local mode keeps its state in plain Python structures; one operation at a time keeps them consistent.
_local_lock = threading.RLock()


class VectorStoreLocked(RuntimeError):
    """Another process holds the embedded vector store (a running portal, or another `manage.py ingest`)."""


@dataclass(frozen=True)
class PointDraft:
    point_id: str
    dense: Sequence[float]
    sparse: SparseVector
    payload: dict


@dataclass(frozen=True)
class ScoredPoint:
    point_id: str
    score: float
    payload: dict
    dense: Sequence[float] | None = None


def is_embedded() -> bool:
    return not settings.QDRANT_URL


def client() -> QdrantClient:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = _connect()
                _ensure_collection(_client)
    return _client


def _connect() -> QdrantClient:
    if not is_embedded():
        return QdrantClient(url=settings.QDRANT_URL, api_key=settings.QDRANT_API_KEY, timeout=30)
    settings.QDRANT_PATH.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(settings.QDRANT_PATH), force_disable_check_same_thread=True)
    except RuntimeError as error:
        if "already accessed" in str(error):
            raise VectorStoreLocked(
                f"The vector store in {settings.QDRANT_PATH} is in use by another Lantern process."
            ) from error
        raise


def close() -> None:
    """Release the client (and, in embedded mode, the folder lock)."""
    global _client, _index
    with _client_lock:
        if _client is not None:
            _client.close()
            _client = None
        _index = None


def _serialised(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        if not is_embedded():
            return func(*args, **kwargs)
        with _local_lock:
            return func(*args, **kwargs)

    return wrapper


def _ensure_collection(qdrant: QdrantClient) -> None:
    global _index
    _index = None  # (re)loaded from the store on next use
    name = settings.QDRANT_COLLECTION
    if qdrant.collection_exists(name):
        _local_write_ahead(qdrant)
        return
    from ingestion.embedding import DENSE_DIM

    qdrant.create_collection(
        name,
        vectors_config={DENSE: models.VectorParams(size=DENSE_DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    if not is_embedded():  # local mode has no payload indexes (it scans), the server needs them to filter fast
        for field in INDEXED_FIELDS:
            qdrant.create_payload_index(name, field_name=field, field_schema=models.PayloadSchemaType.INTEGER)
    _local_write_ahead(qdrant)


def _local_storage(qdrant: QdrantClient):
    """The SQLite connection behind a local-mode collection, or None (server mode, or a client that moved it)."""
    try:
        return qdrant._client.collections[settings.QDRANT_COLLECTION].storage.storage
    except (AttributeError, KeyError):
        return None


def _local_write_ahead(qdrant: QdrantClient) -> None:
    # Local mode commits every point on its own, and in SQLite's default journal each commit waits for several
    # disk syncs (~20 ms a point here, as long as embedding it). Write-ahead logging without a sync per commit
    # (as our Django database runs) plus one checkpoint per upsert (`_local_sync`) keeps every upsert durable.
    storage = _local_storage(qdrant) if is_embedded() else None
    if storage is not None:
        storage.execute("PRAGMA journal_mode=WAL")
        storage.execute("PRAGMA synchronous=NORMAL")


def _local_sync() -> None:
    """Make the writes so far durable before the caller records them (a document indexed, or deleted)."""
    storage = _local_storage(client()) if is_embedded() else None
    if storage is not None:
        storage.execute("PRAGMA wal_checkpoint(PASSIVE)")  # syncs the log to disk first


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.indices, values=vector.values)


@_serialised
def points_upsert(points: Sequence[PointDraft]) -> None:
    if not points:
        return
    client().upsert(
        settings.QDRANT_COLLECTION,
        points=[
            models.PointStruct(
                id=p.point_id,
                vector={DENSE: list(map(float, p.dense)), SPARSE: _sparse(p.sparse)},
                payload=p.payload,
            )
            for p in points
        ],
        wait=True,
    )
    _local_sync()
    if is_embedded():
        for p in points:
            _embedded_index().upsert(p.point_id, p.dense, p.sparse.indices, p.sparse.values, p.payload)


def _match(field: str, value: int) -> models.FieldCondition:
    return models.FieldCondition(key=field, match=models.MatchValue(value=value))


@_serialised
def points_delete(*, document_id: int | None = None, collection_id: int | None = None, keep_version: int | None = None) -> None:
    """Delete a document's points (all versions but `keep_version`, if given), or a whole collection's."""
    must = [_match("document_id", document_id)] if document_id is not None else []
    if collection_id is not None:
        must.append(_match("collection_id", collection_id))
    if not must:
        raise ValueError("points_delete needs a document or a collection")
    must_not = [_match("version", keep_version)] if keep_version is not None else []
    client().delete(
        settings.QDRANT_COLLECTION,
        points_selector=models.FilterSelector(filter=models.Filter(must=must, must_not=must_not)),
        wait=True,
    )
    _local_sync()
    if is_embedded():
        _embedded_index().delete_where(document_id=document_id, collection_id=collection_id, keep_version=keep_version)


@_serialised
def points_count(*, document_id: int | None = None, version: int | None = None) -> int:
    must = []
    if document_id is not None:
        must.append(_match("document_id", document_id))
    if version is not None:
        must.append(_match("version", version))
    result = client().count(settings.QDRANT_COLLECTION, count_filter=models.Filter(must=must) if must else None, exact=True)
    return result.count


@_serialised
def points_ids(*, document_id: int) -> set[str]:
    ids, offset = set(), None
    while True:
        batch, offset = client().scroll(
            settings.QDRANT_COLLECTION,
            scroll_filter=models.Filter(must=[_match("document_id", document_id)]),
            limit=1000,
            offset=offset,
            with_payload=False,
        )
        ids.update(str(p.id) for p in batch)
        if offset is None:
            return ids


@_serialised
def points_dense(*, document_id: int, version: int | None = None) -> dict[str, list[float]]:
    """Each point's dense vector for one document (one version, if given): point id -> vector (for cosine use:
    in embedded mode it comes from the mirror, normalised, since local mode's scroll tests every point in Python)."""
    if is_embedded():
        return {point_id: vector.tolist() for point_id, vector in _embedded_index().dense_of(document_id=document_id, version=version).items()}
    must = [_match("document_id", document_id)] + ([_match("version", version)] if version is not None else [])
    vectors, offset = {}, None
    while True:
        batch, offset = client().scroll(
            settings.QDRANT_COLLECTION,
            scroll_filter=models.Filter(must=must),
            limit=1000,
            offset=offset,
            with_payload=False,
            with_vectors=[DENSE],
        )
        vectors.update({str(p.id): list(p.vector[DENSE]) for p in batch})
        if offset is None:
            return vectors


def collections_filter(collection_ids: Sequence[int]) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key="collection_id", match=models.MatchAny(any=list(collection_ids)))])


@_serialised
def points_search(
    *,
    dense: Sequence[float] | None,
    sparse: SparseVector | None,
    collection_ids: Sequence[int],
    limit: int,
    prefetch_limit: int = 50,
    with_dense: bool = False,
) -> list[ScoredPoint]:
    """Hybrid search: dense and sparse candidates fused by reciprocal rank, filtered to readable collections.

    With only one of the two vectors, that one ranks alone (the evaluate command measures each side this way).
    `with_dense` returns each hit's dense vector: fused scores are ranks, so callers that need a similarity (a score
    floor) compute it from the vector.
    """
    vectors = [DENSE] if with_dense else False
    if not collection_ids:
        return []
    if is_embedded():
        return _embedded_search(dense, sparse, collection_ids, limit=limit, prefetch_limit=prefetch_limit, with_dense=with_dense)
    query_filter = collections_filter(collection_ids)
    has_sparse = sparse is not None and bool(sparse.indices)
    if dense is not None and has_sparse:
        response = client().query_points(
            settings.QDRANT_COLLECTION,
            prefetch=[
                models.Prefetch(query=list(dense), using=DENSE, limit=prefetch_limit, filter=query_filter),
                models.Prefetch(query=_sparse(sparse), using=SPARSE, limit=prefetch_limit, filter=query_filter),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
            with_vectors=vectors,
        )
    elif dense is not None:
        response = client().query_points(
            settings.QDRANT_COLLECTION, query=list(dense), using=DENSE, query_filter=query_filter, limit=limit, with_vectors=vectors
        )
    elif has_sparse:
        response = client().query_points(
            settings.QDRANT_COLLECTION, query=_sparse(sparse), using=SPARSE, query_filter=query_filter, limit=limit, with_vectors=vectors
        )
    else:
        return []
    return [
        ScoredPoint(
            point_id=str(p.id),
            score=float(p.score),
            payload=p.payload or {},
            dense=(p.vector or {}).get(DENSE) if with_dense and isinstance(p.vector, dict) else None,
        )
        for p in response.points
    ]


# --- Embedded mode: searches answered by the in-process mirror ------------------------------------------


def _embedded_index() -> EmbeddedIndex:
    """The mirror of the embedded store, loaded from it on first use. Callers hold `_local_lock`."""
    global _index
    if _index is None:
        from ingestion.embedding import DENSE_DIM

        index = EmbeddedIndex(DENSE_DIM)
        offset = None
        while True:
            batch, offset = client().scroll(
                settings.QDRANT_COLLECTION, limit=1000, offset=offset, with_payload=True, with_vectors=True
            )
            for point in batch:
                sparse = point.vector.get(SPARSE)
                index.upsert(
                    str(point.id), point.vector[DENSE], sparse.indices if sparse else [], sparse.values if sparse else [],
                    point.payload or {},
                )
            if offset is None:
                break
        _index = index
        logger.info("Embedded search index loaded: %d points", index.size)
    return _index


def _embedded_search(dense, sparse, collection_ids, *, limit: int, prefetch_limit: int, with_dense: bool) -> list[ScoredPoint]:
    hits = _embedded_index().search(
        dense=dense,
        sparse_indices=sparse.indices if sparse is not None else [],
        collection_ids=collection_ids,
        limit=limit,
        prefetch_limit=prefetch_limit,
    )
    return [
        ScoredPoint(point_id=h.point_id, score=h.score, payload=h.payload, dense=h.dense.tolist() if with_dense else None)
        for h in hits
    ]
