"""A Celery worker running as threads inside the current process.

Embedded mode uses it because Qdrant local mode locks its folder to one process: the portal (`manage.py serve`), or
`manage.py ingest` when no portal is running, hosts the worker next to the only vector-store client.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery import signals
from celery import worker as celery_worker
from celery.worker import state
from django.conf import settings

from portal.celery import app

logger = logging.getLogger(__name__)


class _Controller(celery_worker.WorkController):
    def __init__(self, *args, **kwargs):
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer):
        # celery's own worker class sends this signal; a bare WorkController does not, and the start-up recovery of
        # abandoned documents (ingestion.tasks) listens for it.
        signals.worker_ready.send(sender=consumer)
        self.ready.set()


class EmbeddedWorker:
    """The worker as a supervised thread: if Celery gives up on an unrecoverable error, a new worker takes over
    (and its start-up recovery requeues what the old one was doing), so uploads never wait for a restart."""

    RESTART_DELAY_SECONDS = 2.0

    def __init__(self, *, concurrency: int | None = None):
        self.concurrency = concurrency or settings.WORKER_CONCURRENCY
        self._controller: _Controller | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_ready = threading.Event()
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, timeout: float = 60.0) -> None:
        app.finalize()
        app.set_current()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="lantern-worker", daemon=True)
        self._thread.start()
        if not self._first_ready.wait(timeout):
            raise RuntimeError(f"The ingestion worker did not start within {timeout:.0f}s")
        logger.info("Ingestion worker running in this process (%d thread(s))", self.concurrency)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._controller = self._new_controller()
            ready_relay = threading.Thread(target=self._relay_ready, args=(self._controller,), daemon=True)
            ready_relay.start()
            self._controller.start()  # returns when stopped, or after Celery logged an unrecoverable error
            if self._stopping.is_set():
                return
            self.restarts += 1
            logger.error("The ingestion worker stopped unexpectedly; starting a new one (restart %d)", self.restarts)
            self._stopping.wait(self.RESTART_DELAY_SECONDS)

    def _relay_ready(self, controller: _Controller) -> None:
        if controller.ready.wait(120):
            self._first_ready.set()

    def _new_controller(self) -> _Controller:
        state.should_terminate = None
        return _Controller(
            app=app,
            hostname=f"embedded-{os.getpid()}@{socket.gethostname()}",
            pool="threads",
            concurrency=self.concurrency,
            loglevel=logging.getLevelName(logging.getLogger().level),
            queues=[settings.CELERY_TASK_DEFAULT_QUEUE],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=None,
        )

    def stop(self, *, timeout: float = 60.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        state.should_terminate = 0  # the worker's own loop checks this flag and shuts down cleanly
        self._thread.join(timeout)
        state.should_terminate = None
        if self._thread.is_alive():
            logger.warning("The ingestion worker was still busy after %.0fs; leaving it to exit with the process", timeout)
        self._thread = None

    def __enter__(self) -> EmbeddedWorker:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def worker_for_this_process():
    """A context that makes sure queued documents get processed while a command waits for them.

    Embedded mode with no portal running: this process hosts a worker (it can open the vector store). A running portal
    holds the store, so its worker does the work; with a Qdrant server, the deployment's workers do.
    """
    from contextlib import nullcontext

    from kb import vectorstore

    if not vectorstore.is_embedded():
        return nullcontext()
    try:
        vectorstore.client()
    except vectorstore.VectorStoreLocked:
        logger.info("A running portal holds the vector store; its worker processes the files.")
        return nullcontext()
    return EmbeddedWorker()
