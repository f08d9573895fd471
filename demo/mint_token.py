"""How an intranet backend mints a sign-in token for Lantern's chat widget (PyJWT, HS256).

The intranet already knows who the employee is. When it renders a page with the widget it signs a short-lived token
with the widget key's secret (Django admin → Chat → Widget keys) and puts it in the script tag's data-token, or serves
it from the URL named in data-token-url. Lantern checks the signature, the audience (the key id), the expiry and that
the token lives no longer than WIDGET_TOKEN_MAX_SECONDS, then asks as that user with exactly those groups.

    python demo/mint_token.py --key wk_... --secret ... --user alice --group hr --group finance

Any language works: it is a standard JWT with claims sub, groups, iat, exp, aud (and optionally email).
"""

from __future__ import annotations

import argparse
import time

import jwt


def mint_token(
    *, key: str, secret: str, username: str, groups: list[str] | tuple[str, ...] = (), email: str = "",
    lifetime_seconds: int = 600, now: float | None = None,
) -> str:
    """A token for `username` in `groups`, valid for `lifetime_seconds` from `now`, for the widget key `key`."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": username, "groups": list(groups), "aud": key, "iat": issued, "exp": issued + lifetime_seconds}
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm="HS256")


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a sign-in token for Lantern's chat widget.")
    parser.add_argument("--key", required=True, help="the widget key id (wk_...)")
    parser.add_argument("--secret", required=True, help="the widget key's secret, from the portal's admin")
    parser.add_argument("--user", required=True, help="the employee's user name")
    parser.add_argument("--group", action="append", default=[], help="a group the employee belongs to (repeatable)")
    parser.add_argument("--email", default="")
    parser.add_argument("--lifetime", type=int, default=600, help="seconds the token stays valid (default 600)")
    args = parser.parse_args()
    print(mint_token(key=args.key, secret=args.secret, username=args.user, groups=args.group, email=args.email,
                     lifetime_seconds=args.lifetime))


if __name__ == "__main__":
    main()
