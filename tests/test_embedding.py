"""The embedding model as the questions see it: the same vectors as ingestion, without waiting behind a batch."""

import threading

import numpy as np

from ingestion import embedding


def test_a_question_gets_the_same_vector_as_the_same_text_at_ingestion():
    text = "How many hours of annual leave carry over into the next year?"

    assert np.allclose(embedding.embed_query(text), embedding.embed_texts([text])[0], atol=1e-5)


def test_a_question_is_embedded_while_an_ingestion_batch_holds_the_model():
    embedding.embed_texts(["load the model"])
    done = threading.Event()
    vectors = []

    def ask():
        vectors.append(embedding.embed_query("Where do I book flights?"))
        done.set()

    with embedding._encode_lock:  # what a worker holds for the whole of a batch
        threading.Thread(target=ask, daemon=True).start()
        finished = done.wait(timeout=60)

    assert finished, "the question waited for the ingestion batch"
    assert len(vectors[0]) == embedding.DENSE_DIM


def test_embedding_a_question_leaves_the_callers_thread_count_as_it_was():
    import torch

    before = torch.get_num_threads()
    embedding.embed_query("Who approves travel?")

    assert torch.get_num_threads() == before
