"""A small OpenID Connect provider for tests: stdlib http.server on 127.0.0.1, a random port, its own thread.

It runs the authorization code flow for real, so the portal's OIDC client does its real HTTP, token validation and
JWKS lookup; only the person signing in is scripted.

    with OIDCProvider(client_id="lantern", client_secret="s3cret") as provider:
        provider.next_login = {"sub": "u1", "email": "erin@example.com", "groups": ["hr-staff"]}
        ...   # send the browser to the portal's /oidc/authenticate/, follow the redirects

Endpoints
    GET  /.well-known/openid-configuration   discovery (issuer = root_url)
    GET  /authorize                           checks client_id and the PKCE challenge's presence, remembers the
                                              request, and redirects to redirect_uri with ?code=...&state=...
                                              (the identity is whatever `next_login` holds at that moment)
    POST /token                               checks client credentials, the code, redirect_uri and the PKCE
                                              verifier; returns access_token and an id_token signed RS256
    GET  /userinfo                            the claims for a Bearer access token
    GET  /jwks                                the public signing key (kid "test-key")

Token faults, for tests of refusal (set `token_fault` before the callback reaches /token):
    "bad_signature"   signed by another RSA key under the same kid
    "wrong_audience"  aud is another client
    "expired"         exp (and iat) an hour in the past
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "test-key"


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OIDCProvider:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.signing_key = _rsa_key()
        self.next_login: dict = {}
        self.token_fault: str | None = None
        self.token_requests: list[dict] = []
        self._codes: dict[str, dict] = {}
        self._access_tokens: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle ---

    def start(self) -> OIDCProvider:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.provider = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="oidc-provider", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._httpd is not None, "OIDCProvider is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- what the endpoints serve ---

    def discovery(self) -> dict:
        root = self.root_url
        return {
            "issuer": root,
            "authorization_endpoint": f"{root}/authorize",
            "token_endpoint": f"{root}/token",
            "userinfo_endpoint": f"{root}/userinfo",
            "jwks_uri": f"{root}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict:
        public = RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict, str]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, "unknown client or response type"
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {"request": query, "claims": dict(self.next_login)}
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": location}, ""

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        self.token_requests.append(form)
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if (client_id, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or grant["request"].get("redirect_uri") != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant"}
        challenge = grant["request"].get("code_challenge")
        if challenge and _s256(form.get("code_verifier", "")) != challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access_tokens[access_token] = grant["claims"]
        id_token = self._id_token(grant["claims"], nonce=grant["request"].get("nonce"))
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}

    def userinfo(self, authorization: str) -> tuple[int, dict]:
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            claims = self._access_tokens.get(token)
        return (200, claims) if claims is not None else (401, {"error": "invalid_token"})

    def _id_token(self, claims: dict, *, nonce: str | None) -> str:
        now = int(time.time())
        payload = {"iss": self.root_url, "aud": self.client_id, "iat": now, "exp": now + 300, **claims}
        if nonce:
            payload["nonce"] = nonce
        key = self.signing_key
        if self.token_fault == "bad_signature":
            key = _rsa_key()
        elif self.token_fault == "wrong_audience":
            payload["aud"] = "some-other-client"
        elif self.token_fault == "expired":
            payload["iat"], payload["exp"] = now - 7200, now - 3600
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": KEY_ID})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "TestOIDC/1"

    @property
    def provider(self) -> OIDCProvider:
        return self.server.provider  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(200, self.provider.discovery())
        elif url.path == "/jwks":
            self._json(200, self.provider.jwks())
        elif url.path == "/authorize":
            status, headers, text = self.provider.authorize(query)
            self._send(status, text.encode(), "text/plain", headers)
        elif url.path == "/userinfo":
            self._json(*self.provider.userinfo(self.headers.get("Authorization", "")))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        if urlsplit(self.path).path != "/token":
            self._json(404, {"error": "not_found"})
            return
        basic = None
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            basic = (user, password)
        self._json(*self.provider.token(form, basic))

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", {})

    def _send(self, status: int, body: bytes, content_type: str, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
