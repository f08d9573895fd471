"""`manage.py ask "question" [--collection NAME] [--json]`: the chat page's answer in a terminal."""

from __future__ import annotations

import json

from django.core.management import BaseCommand, CommandError

from audit.services import audit_question_asked
from chat.cli import add_user_argument, user_named
from chat.services import answer_collect, answer_stream
from kb.models import Collection
from kb.selectors import collections_readable


class Command(BaseCommand):
    help = "Answer a question from the knowledge base, with its cited passages."

    def add_arguments(self, parser):
        parser.add_argument("question")
        parser.add_argument("--collection", action="append", default=[], help="Limit to this collection (repeatable).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object (see README).")
        add_user_argument(parser)

    def handle(self, *args, question, collection, as_json, user, **options):
        if not question.strip():
            raise CommandError("The question is empty.")
        self.user = user_named(user)
        collection_ids = self._collections(collection)
        audit_question_asked(user=self.user, text=question, target="manage.py ask")
        if as_json:
            result = answer_collect(text=question, user=self.user, collection_ids=collection_ids)
            self.stdout.write(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
            error = result.error
        else:
            error = self._stream(question, collection_ids)
        if error:
            raise CommandError(error)

    def _collections(self, names: list[str]) -> list[int] | None:
        if not names:
            return None
        # A collection the user may not read is reported as missing: its name is not theirs to learn.
        readable = Collection.objects.filter(pk__in=collections_readable(user=self.user))
        found = dict(readable.filter(name__in=names).values_list("name", "pk"))
        if missing := [n for n in names if n not in found]:
            known = ", ".join(readable.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No collection named {', '.join(missing)} (collections: {known}).")
        return list(found.values())

    def _stream(self, question: str, collection_ids: list[int] | None) -> str:
        """Sources first, then the answer as the model writes it, then what the citation check found."""
        streamed, error = [], ""
        for event in answer_stream(user=self.user, text=question, collection_ids=collection_ids):
            if event.type == "sources":
                self._sources(event.data["passages"])
            elif event.type == "token":
                streamed.append(event.data["text"])
                self.stdout.write(event.data["text"], ending="")
                self.stdout.flush()
            elif event.type == "error":
                error = event.data["message"]
            elif event.type == "citations":
                self._checked(event.data, streamed="".join(streamed).strip())
        return error

    def _sources(self, passages: list[dict]) -> None:
        if not passages:
            return
        self.stdout.write("Sources:")
        for passage in passages:
            where = " › ".join(passage["heading_path"])
            page = f", page {passage['page']}" if passage["page"] else ""
            self.stdout.write(f"  [{passage['n']}] {passage['title']}{' — ' + where if where else ''}{page}")
        self.stdout.write("")

    def _checked(self, final: dict, *, streamed: str) -> None:
        if not streamed:
            self.stdout.write(final["text"])
        elif final["text"] != streamed:
            self.stdout.write("\n\nWith citations to missing passages removed:\n" + final["text"])
        self.stdout.write("")
        if final["unverified"]:
            marks = ", ".join(f"[{n}]" for n in final["unverified"])
            self.stdout.write(self.style.WARNING(f"Not verified against the cited passage: {marks}"))
