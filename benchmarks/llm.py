"""Time to first token and generation speed of the packaged model on a fixed ~300-token RAG prompt.

    .venv/bin/python benchmarks/llm.py [--runs 3] [--max-tokens 128] [--assemble]

Assembles the model if needed and starts (or reuses) the local llama.cpp server through the same code the portal
uses, then streams the answer to the prompt `--runs` times through `chat.llm.stream_chat`. Each run tags every
passage line with the run number, so the prompt has the same shape and length but no stretch of it is in the
server's prompt cache: these rows measure a question asked for the first time. A last row repeats the last prompt
exactly, to show what the prompt cache saves. --assemble also times joining the 22 model parts from scratch
(into a temporary directory, removed afterwards). Prints a table and exits; never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["LLM_BASE_URL"] = ""  # always the packaged model, whatever the shell says
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from django.conf import settings  # noqa: E402
from django.test import override_settings  # noqa: E402

from chat import llm, local_model  # noqa: E402

SYSTEM = (
    "You are Lantern, the company's knowledge assistant. Answer the employee's question using only the passages "
    "below. Cite passages by their tag in square brackets. If the passages do not contain the answer, say so."
)
PASSAGES = [
    "Employees accrue 2.08 days of paid vacation per month worked, up to 25 days per calendar year.",
    "Unused vacation of up to 5 days may be carried over into the first quarter of the following year.",
    "Vacation requests longer than one week must be submitted to the team lead at least 30 days in advance.",
    "Sick leave does not reduce vacation balance; a doctor's note is required from the fourth day of absence.",
    "Remote work is allowed up to three days per week after the probation period of six months has ended.",
    "Travel expenses are reimbursed within 14 days when the receipts are uploaded to the expense portal.",
    "Public holidays that fall on a weekend are not compensated with an additional day off.",
    "Parental leave is granted for up to 12 months and can be split between both parents in blocks of 2 months.",
    "Employees who leave the company are paid out for accrued vacation days that were not taken.",
    "Questions about the vacation policy can be sent to the HR service desk at hr-desk@example.com.",
]
QUESTION = (
    "How many vacation days can I carry over into next year, and until when must I take them? "
    "Explain the rules that apply in detail."
)


@dataclass
class Run:
    label: str
    prompt_tokens: int
    first_token_s: float
    generated_tokens: int
    generation_s: float
    total_s: float

    @property
    def tokens_per_s(self) -> float:
        # The first token's time is prompt processing; speed is measured over the tokens after it.
        return (self.generated_tokens - 1) / self.generation_s if self.generation_s > 0 else 0.0


def messages_for(run: int) -> list[dict]:
    passages = "\n".join(f"[R{run}-{number}] {text}" for number, text in enumerate(PASSAGES, start=1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {QUESTION}"},
    ]


def prompt_tokens(messages: list[dict]) -> int:
    """Exact: the server renders its chat template (POST /apply-template), then tokenizes the result."""
    root = llm.base_url().removesuffix("/v1")
    request = urllib.request.Request(
        f"{root}/apply-template",
        data=json.dumps({"messages": messages}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return llm.count_tokens(json.loads(response.read())["prompt"])


def timed_run(label: str, messages: list[dict], *, max_tokens: int) -> Run:
    started = time.perf_counter()
    first = last = 0.0
    pieces = []
    for delta in llm.stream_chat(messages, max_tokens=max_tokens, temperature=0.0):
        last = time.perf_counter()
        first = first or last
        pieces.append(delta)
    generated = llm.count_tokens("".join(pieces))
    return Run(label, prompt_tokens(messages), first - started, generated, last - first, last - started)


def print_table(runs: list[Run]) -> None:
    header = f"{'run':<22} {'prompt tok':>10} {'first token s':>13} {'gen tok':>8} {'gen tok/s':>9} {'total s':>8}"
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.label:<22} {run.prompt_tokens:>10} {run.first_token_s:>13.2f} {run.generated_tokens:>8} "
            f"{run.tokens_per_s:>9.1f} {run.total_s:>8.2f}"
        )


def time_fresh_assembly() -> float:
    with tempfile.TemporaryDirectory(prefix="lantern-bench-") as scratch, override_settings(DATA_DIR=Path(scratch)):
        started = time.perf_counter()
        local_model.model_file(source=local_model.packaged_model())
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--assemble", action="store_true", help="also time joining the model parts from scratch")
    args = parser.parse_args()

    if args.assemble:
        print(f"joining the 22 parts from scratch (copy + sha256 + rename): {time_fresh_assembly():.1f} s")

    started = time.perf_counter()
    model = local_model.model_file()
    assembly_s = time.perf_counter() - started
    started = time.perf_counter()
    url = local_model.ensure_server()
    start_s = time.perf_counter() - started
    threads = settings.LOCAL_LLM_THREADS or len(os.sched_getaffinity(0))
    print(f"model   {model} ({model.stat().st_size / 1e9:.2f} GB), ready in {assembly_s:.2f} s")
    print(f"server  {url}, ready in {start_s:.2f} s; {threads} threads, context {settings.LOCAL_LLM_CONTEXT}")
    print()

    try:
        runs = [timed_run(f"{n} (new prompt)", messages_for(n), max_tokens=args.max_tokens) for n in range(1, args.runs + 1)]
        cached = timed_run(f"{args.runs} again (cached)", messages_for(args.runs), max_tokens=args.max_tokens)
    finally:
        local_model.stop_server()

    print_table([*runs, cached])
    print()
    print(
        f"median of {len(runs)} new prompts: first token {statistics.median(r.first_token_s for r in runs):.2f} s, "
        f"{statistics.median(r.tokens_per_s for r in runs):.1f} generated tokens/s"
    )


if __name__ == "__main__":
    main()
