"""Docker healthcheck of the web service: exit 0 when the portal's health URL answers 200, else 1.

The probe reaches uvicorn directly over plain HTTP, so it presents itself as the reverse proxy's requests do:
a Host taken from ALLOWED_HOSTS (Django answers any other with 400) and X-Forwarded-Proto: https (an HTTPS
redirect would otherwise answer 301). Standard library only: it runs every 30 s and must stay cheap.

Usage: python docker/healthcheck.py http://127.0.0.1:8000/healthz
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    """The first concrete host of ALLOWED_HOSTS (".example.com" stands for example.com), else localhost."""
    for pattern in allowed_hosts.split(","):
        host = pattern.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def check(url: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    headers = {"Host": probe_host(os.environ.get("ALLOWED_HOSTS", "")), "X-Forwarded-Proto": "https"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}: {error.read(300).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return False, str(getattr(error, "reason", error))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 1  # Docker reserves exit status 2
    healthy, detail = check(argv[1])
    print(f"{argv[1]}: {detail}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
