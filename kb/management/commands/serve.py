"""Start the portal: migrations, a first admin account, the ingestion worker (embedded mode) and the web server."""

from __future__ import annotations

import json
import os
import secrets

import uvicorn
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError, call_command

from kb import vectorstore

PID_FILE_NAME = "portal.json"


class Command(BaseCommand):
    help = "Run Lantern: web server plus, in embedded mode, the ingestion worker in the same process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("LANTERN_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("LANTERN_PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="Do not run ingestion workers in this process.")
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args, host, port, no_worker, no_migrate, **options):
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=0)
        self._first_admin()
        worker = None
        if settings.EMBEDDED_WORKER and not no_worker:
            worker = self._start_worker()
        self._warm_up()
        state_file = settings.DATA_DIR / PID_FILE_NAME
        state_file.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{host}:{port}/"}))
        self.stdout.write(self.style.SUCCESS(f"Lantern is running at http://{host}:{port}/  (Ctrl+C to stop)"))
        try:
            config = uvicorn.Config("portal.asgi:application", host=host, port=port, lifespan="off", log_level="info")
            uvicorn.Server(config).run()
        finally:
            state_file.unlink(missing_ok=True)
            if worker is not None:
                worker.stop()
            vectorstore.close()

    def _start_worker(self):
        from ingestion.worker import EmbeddedWorker

        try:
            vectorstore.client()  # takes the embedded store's lock now, so a second portal fails here, clearly
        except vectorstore.VectorStoreLocked as error:
            raise CommandError(f"{error} Stop the other process (a portal or `manage.py ingest`) first.") from error
        worker = EmbeddedWorker()
        worker.start()
        return worker

    def _warm_up(self) -> None:
        """Load the embedding model and start the local language model in the background, so the first question
        does not wait for them (the page works meanwhile; a question asked earlier waits for what it needs)."""
        import threading

        def load():
            from chat import llm, local_model
            from chat.services import model_warm_up
            from ingestion import embedding

            embedding.embedding_model()
            embedding.embed_query("warm up")  # the questions' own copy of the model
            if settings.LLM_WARM_START:
                try:
                    self.stdout.write(f"Language model ready at {model_warm_up()}")
                except (local_model.LocalModelError, llm.LLMUnavailable) as error:
                    self.stderr.write(f"The language model could not be warmed up: {error}")

        threading.Thread(target=load, name="lantern-warm-up", daemon=True).start()

    def _first_admin(self) -> None:
        """On a fresh install, create `admin` with a random password and say where to find it."""
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        secret_file = settings.DATA_DIR / "initial_admin_password.txt"
        secret_file.write_text(password + "\n")
        secret_file.chmod(0o600)
        self.stdout.write(
            self.style.WARNING(f"Created the first administrator: user 'admin', password '{password}' (also in {secret_file}).")
        )
