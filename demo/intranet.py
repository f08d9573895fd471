"""Serve demo/intranet.html as an intranet would: with a freshly minted widget token for the signed-in employee.

    python demo/intranet.py --portal http://localhost:8000 --key wk_... --secret ... --user alice --group hr

Then open http://localhost:8080/ (add http://localhost:8080 to the widget key's allowed origins first). GET
/lantern-token returns a fresh token, as the page's data-token-url asks when the one in the page expires.
"""

from __future__ import annotations

import argparse
import json
import string
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

try:
    from demo.mint_token import mint_token  # imported from the repository root (tests)
except ImportError:
    from mint_token import mint_token  # run as `python demo/intranet.py`

PAGE = Path(__file__).with_name("intranet.html")


def intranet_page(*, portal: str, key: str, secret: str, username: str, groups: list[str]) -> str:
    """The demo page for `username`, embedding the widget of `key` with a token signed by `secret`."""
    token = mint_token(key=key, secret=secret, username=username, groups=groups)
    return string.Template(PAGE.read_text()).substitute(portal=portal.rstrip("/"), key=key, token=token, user=username)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the demo intranet page with Lantern's chat widget.")
    parser.add_argument("--portal", required=True, help="the portal's address, e.g. http://localhost:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()

    class Intranet(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/lantern-token":
                body = json.dumps({"token": mint_token(key=args.key, secret=args.secret, username=args.user, groups=args.group)})
                content_type = "application/json"
            elif self.path in ("/", "/index.html"):
                body = intranet_page(portal=args.portal, key=args.key, secret=args.secret, username=args.user, groups=args.group)
                content_type = "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body.encode())

    print(f"Intranet demo on http://localhost:{args.port}/ (allow this origin on the widget key)")
    ThreadingHTTPServer(("", args.port), Intranet).serve_forever()


if __name__ == "__main__":
    main()
