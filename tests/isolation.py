"""Loaded with `-p` before pytest-django reads settings: a private data dir and Celery queue per test session."""

import os
import tempfile
import uuid

os.environ["LANTERN_DATA_DIR"] = tempfile.mkdtemp(prefix="lantern-test-")
os.environ["CELERY_QUEUE"] = f"lantern-test-{uuid.uuid4().hex[:8]}"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Portals started by tests must not load the 1 GB local model unless a test asks for it (a test that needs the real
# model starts it explicitly).
os.environ.setdefault("LLM_WARM_START", "0")
