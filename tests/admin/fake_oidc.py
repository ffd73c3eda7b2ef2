"""A small OpenID Connect provider on 127.0.0.1 for the SSO tests: discovery, JWKS, an authorize endpoint that
signs in `user` at once (redirecting back with code and state), and a token endpoint that checks the client's
secret, the redirect URI, single use of the code and the PKCE verifier against the S256 challenge, and answers
with an RS256 ID token (joserfc). Knobs on the instance make it misbehave the ways the tests need."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "ragbot-admin"
CLIENT_SECRET = "fake-client-secret-for-tests"


@dataclass
class Grant:
    """A code the authorize endpoint gave out, waiting for the token request."""

    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    nonce: str | None
    claims: dict[str, Any]


@dataclass
class FakeProvider:
    """The provider's state: who signs in (`user`, extra ID token claims), and the knobs."""

    key: RSAKey
    issuer: str = ""
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "email": "ann@example.com"})
    audience: str | None = None  # None: the client id
    sign_with: RSAKey | None = None  # another key: a bad signature
    lifetime_s: int = 300  # negative: an expired token
    codes: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience or grant.client_id,
            "iat": now if self.lifetime_s > 0 else now - 3600,
            "exp": now + self.lifetime_s,
            **grant.claims,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        key = self.sign_with or self.key
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class _Handler(BaseHTTPRequestHandler):
    provider: FakeProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        p = self.provider
        url = urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            self._json(
                {
                    "issuer": p.issuer,
                    "authorization_endpoint": f"{p.issuer}/authorize",
                    "token_endpoint": f"{p.issuer}/token",
                    "jwks_uri": f"{p.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "scopes_supported": ["openid", "email", "profile"],
                }
            )
        elif url.path == "/jwks":
            self._json(KeySet([p.key]).as_dict(private=False))
        elif url.path == "/authorize":
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if (
                q.get("client_id") != CLIENT_ID
                or q.get("response_type") != "code"
                or "openid" not in q.get("scope", "")
            ):
                self._json({"error": "invalid_request"}, 400)
                return
            code = secrets.token_urlsafe(16)
            p.codes[code] = Grant(
                q["client_id"],
                q["redirect_uri"],
                q.get("code_challenge", ""),
                q.get("code_challenge_method", ""),
                q.get("nonce"),
                dict(p.user),
            )
            self.send_response(302)
            self.send_header("location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
            self.send_header("content-length", "0")
            self.end_headers()
        else:
            self._json({"error": "not_found"}, 404)

    def do_POST(self) -> None:
        p = self.provider
        if urlsplit(self.path).path != "/token":
            self._json({"error": "not_found"}, 404)
            return
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        p.token_requests.append(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            self._json({"error": "invalid_client"}, 401)
            return
        grant = p.codes.pop(form.get("code", ""), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            self._json({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
            return
        if form.get("redirect_uri") != grant.redirect_uri:
            self._json({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}, 400)
            return
        if grant.method != "S256" or s256(form.get("code_verifier", "")) != grant.challenge:
            self._json({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
            return
        self._json(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": p.id_token(grant),
            }
        )


class FakeOidcServer:
    """The provider served on 127.0.0.1 (a free port) for as long as the `with` block lasts."""

    def __init__(self, key: RSAKey) -> None:
        self.provider = FakeProvider(key)
        handler = type("Handler", (_Handler,), {"provider": self.provider})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.provider.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return self.provider.issuer

    def __enter__(self) -> FakeOidcServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
