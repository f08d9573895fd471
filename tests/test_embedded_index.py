"""The embedded mode's in-process search mirror ranks exactly as Qdrant's own Query API does on the same points."""

import random
import uuid

import numpy as np
import pytest
from django.conf import settings
from qdrant_client import models

from ingestion.types import SparseVector
from kb import vectorstore

pytestmark = pytest.mark.skipif(bool(settings.QDRANT_URL), reason="the mirror exists only in embedded mode")

DIM = 384


def random_points(count: int, *, seed: int = 7) -> list[vectorstore.PointDraft]:
    rng = np.random.default_rng(seed)
    terms = rng.zipf(1.3, size=(count, 30)) % 500  # a skewed vocabulary, like words
    points = []
    for i in range(count):
        ids, tf = np.unique(terms[i], return_counts=True)
        points.append(
            vectorstore.PointDraft(
                point_id=str(uuid.UUID(int=i + 1)),
                dense=rng.normal(size=DIM).tolist(),
                # BM25-like weights, jittered so no two points tie (tie order is not part of either contract)
                sparse=SparseVector(indices=ids.tolist(), values=(tf / (tf + 1.2) + rng.uniform(0, 1e-3, len(tf))).tolist()),
                payload={"document_id": i // 3, "collection_id": 1 + i % 2, "version": 1, "ordinal": i % 3, "page": None},
            )
        )
    return points


def qdrant_ranking(dense, sparse, collections, limit, prefetch):
    """What Qdrant itself answers (local mode's reference implementation, not the mirror)."""
    query_filter = vectorstore.collections_filter(collections)
    client = vectorstore.client()
    name = settings.QDRANT_COLLECTION
    if dense is not None and sparse is not None:
        points = client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=dense, using="dense", limit=prefetch, filter=query_filter),
                models.Prefetch(query=models.SparseVector(indices=sparse.indices, values=sparse.values), using="sparse", limit=prefetch, filter=query_filter),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
        ).points
    elif dense is not None:
        points = client.query_points(name, query=dense, using="dense", query_filter=query_filter, limit=limit).points
    else:
        sparse_query = models.SparseVector(indices=sparse.indices, values=sparse.values)
        points = client.query_points(name, query=sparse_query, using="sparse", query_filter=query_filter, limit=limit).points
    return {str(p.id): p.score for p in points}


def mirror_ranking(dense, sparse, collections, limit, prefetch):
    hits = vectorstore.points_search(dense=dense, sparse=sparse, collection_ids=collections, limit=limit, prefetch_limit=prefetch)
    return {h.point_id: h.score for h in hits}


def assert_same_ranking(mirror: dict, qdrant: dict) -> None:
    assert list(mirror) == list(qdrant)  # the same points in the same order
    assert list(mirror.values()) == pytest.approx(list(qdrant.values()), rel=1e-4, abs=1e-6)  # float32 vs float64 sums


@pytest.fixture
def stored_points():
    points = random_points(240)
    vectorstore.points_upsert(points)
    return points


@pytest.mark.parametrize("mode", ["hybrid", "dense", "sparse"])
def test_the_mirror_ranks_like_qdrant(stored_points, mode):
    rng = random.Random(3)
    for _ in range(10):
        dense = np.random.default_rng(rng.randrange(10**6)).normal(size=DIM).tolist() if mode != "sparse" else None
        sparse = SparseVector(indices=sorted(rng.sample(range(60), 4)), values=[1.0] * 4) if mode != "dense" else None
        collections = [1] if rng.random() < 0.5 else [1, 2]
        # A limit above both prefetches together keeps every candidate, so score ties at the cut cannot differ.
        assert_same_ranking(mirror_ranking(dense, sparse, collections, 60, 25), qdrant_ranking(dense, sparse, collections, 60, 25))


def test_deleted_and_replaced_points_leave_the_mirror_as_they_leave_qdrant(stored_points):
    vectorstore.points_delete(document_id=4)
    replaced = vectorstore.PointDraft(
        point_id=stored_points[0].point_id, dense=stored_points[5].dense, sparse=stored_points[5].sparse,
        payload={**stored_points[0].payload, "version": 2},
    )
    vectorstore.points_upsert([replaced])
    vectorstore.points_delete(document_id=0, keep_version=2)
    dense, sparse = stored_points[7].dense, SparseVector(indices=stored_points[7].sparse.indices[:4], values=[1.0] * 4)

    assert_same_ranking(mirror_ranking(dense, sparse, [1, 2], 60, 25), qdrant_ranking(dense, sparse, [1, 2], 60, 25))
    everything = mirror_ranking(dense, None, [1, 2], 240, 240)
    assert not {p.point_id for p in stored_points[12:15]} & set(everything)  # document 4 is gone
    assert not {p.point_id for p in stored_points[1:3]} & set(everything)  # document 0's version 1 is gone
    assert len(everything) == 240 - 3 - 2
    # The replaced point now carries point 5's vectors: both are the best match for them.
    assert set(list(mirror_ranking(stored_points[5].dense, None, [1, 2], 2, 2))) == {stored_points[0].point_id, stored_points[5].point_id}


def test_a_restarted_process_loads_the_mirror_from_the_store(stored_points):
    dense = stored_points[9].dense
    before = mirror_ranking(dense, None, [1, 2], 10, 10)

    vectorstore.close()  # as a new process would: nothing in memory, the store on disk

    assert mirror_ranking(dense, None, [1, 2], 10, 10) == before
    assert next(iter(before)) == stored_points[9].point_id
