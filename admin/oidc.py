"""OpenID Connect single sign-on for the admin app: the authorization code flow with PKCE (S256), through Authlib.

The browser half (state, nonce, PKCE verifier) travels in a signed cookie that lives 10 minutes and is spent on the
callback; the server half (discovery, the token request, the ID token's signature against the provider's JWKS and
its iss/aud/exp/iat/nonce claims) runs here. Every way a sign-in can fail is an `OidcError` whose message a person
can act on.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import store
from admin import audit
from admin.errors import AdminConfigError
from store.models import NO_ROLE, USER_ROLES

log = logging.getLogger(__name__)

# How long a started sign-in may take at the provider before its cookie is refused.
FLOW_TTL_S = 600
FLOW_COOKIE = "ragbot_oidc"
SCOPES = "openid email profile"
# ID tokens may be a little off the provider's clock.
LEEWAY_S = 60
# Who the audit log names for what single sign-on did by itself (a user created, a role from the provider's groups).
SSO_ACTOR = "sso"
UNKNOWN_STATE = "This sign-in was not started here, or was already used: start again from the sign-in page."
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.@-]")


class OidcError(Exception):
    """A sign-in through the identity provider failed; the message says why, for the person signing in."""

    status_code = 401


class ProviderUnreachable(OidcError):
    """The identity provider did not answer (or not as a provider): not the person's fault."""

    status_code = 502


class OidcConfigError(AdminConfigError):
    """The OIDC settings cannot work; the message names the setting."""


@dataclass(frozen=True)
class Grant:
    """A role (and for a team admin, the team) given to a user signing in through the provider."""

    role: str
    team: str | None = None

    @classmethod
    def parse(cls, text: str, setting: str) -> Grant:
        """`role` or `team_admin:TEAM`, as OIDC_DEFAULT_ROLE and OIDC_ROLE_MAP write it."""
        role, _, team = text.strip().partition(":")
        role, team = role.strip(), team.strip() or None
        if role not in (*USER_ROLES, NO_ROLE):
            raise OidcConfigError(f"{setting}: unknown role {role!r}; use one of {', '.join((*USER_ROLES, NO_ROLE))}.")
        if (role == "team_admin") != (team is not None):
            raise OidcConfigError(f"{setting}: write a team admin as team_admin:TEAM (only a team admin has a team).")
        return cls(role, team)


def parse_role_map(text: str | None) -> dict[str, Grant]:
    """OIDC_ROLE_MAP, "group=role,group2=team_admin:team", in order (the first group a user has wins)."""
    mapping: dict[str, Grant] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        group, sep, grant = item.partition("=")
        if not sep or not group.strip():
            raise OidcConfigError(f"OIDC_ROLE_MAP: {item.strip()!r} is not GROUP=ROLE.")
        mapping[group.strip()] = Grant.parse(grant, "OIDC_ROLE_MAP")
    return mapping


@dataclass(frozen=True)
class OidcConfig:
    """The provider and the sign-in policy. `issuer` is the provider's issuer URL (discovery is under it);
    `allowed_domains` limits sign-in to verified emails of those domains (empty: anyone the provider signs in);
    `default_role` is what a first sign-in gets (role none: no rights until an admin grants some); `role_claim`
    with `role_map` sets the role from a claim (a list of groups, say) at every sign-in that matches."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    allowed_domains: tuple[str, ...] = ()
    default_role: Grant = Grant(NO_ROLE)
    role_claim: str | None = None
    role_map: dict[str, Grant] = field(default_factory=dict)
    provider_name: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(
        cls,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        allowed_domains: str | None = None,
        default_role: str | None = None,
        role_claim: str | None = None,
        role_map: str | None = None,
        provider_name: str | None = None,
    ) -> OidcConfig:
        """The settings as written (comma-separated lists, `role[:team]`), checked: OidcConfigError says which one
        is wrong."""
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OidcConfigError(f"OIDC_ISSUER must be the provider's URL (https://...), not {issuer!r}.")
        if not client_id or not client_secret:
            raise OidcConfigError("OIDC_ISSUER is set: set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too.")
        domains = tuple(d.strip().lower().lstrip("@") for d in (allowed_domains or "").split(",") if d.strip())
        mapping = parse_role_map(role_map)
        if mapping and not role_claim:
            raise OidcConfigError("OIDC_ROLE_MAP needs OIDC_ROLE_CLAIM: the claim that lists the groups (groups).")
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=client_id,
            client_secret=client_secret,
            allowed_domains=domains,
            default_role=Grant.parse(default_role or NO_ROLE, "OIDC_DEFAULT_ROLE"),
            role_claim=role_claim or None,
            role_map=mapping,
            provider_name=provider_name or None,
        )

    @property
    def label(self) -> str:
        """What the sign-in button names: the provider's name, else the issuer's host."""
        return self.provider_name or urlsplit(self.issuer).netloc


class OidcProvider:
    """One identity provider: discovery and its keys (fetched once, the keys again when a token names a key the
    set lacks, as after a rotation), the authorization URL, and the code exchanged for verified claims."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def _client(self, redirect_uri: str) -> OAuth2Client:
        c = self.config
        return OAuth2Client(
            client_id=c.client_id,
            client_secret=c.client_secret,
            scope=SCOPES,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=c.timeout_s,
        )

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = httpx2.get(url, timeout=self.config.timeout_s, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ProviderUnreachable(f"Cannot reach the identity provider at {url}: {reason}.") from None
        if response.status_code != 200:
            status = response.status_code
            raise ProviderUnreachable(f"The identity provider answered HTTP {status} for its {what} ({url}).")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderUnreachable(f"The identity provider's {what} at {url} is not a JSON object.")
        return body

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached once it was fetched and checked)."""
        with self._lock:
            if self._metadata is None:
                url = f"{self.config.issuer}/.well-known/openid-configuration"
                meta = self._get_json(url, "discovery document")
                if meta.get("issuer", "").rstrip("/") != self.config.issuer:
                    raise OidcError(
                        f"The identity provider at {url} names its issuer {meta.get('issuer')!r}, not "
                        f"{self.config.issuer!r}: set OIDC_ISSUER to the issuer it names."
                    )
                missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not meta.get(k)]
                if missing:
                    raise OidcError(f"The identity provider's discovery document lacks {', '.join(missing)}.")
                self._metadata = meta
            return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._keys is None or refresh:
                uri = self._metadata["jwks_uri"] if self._metadata else ""
                try:
                    self._keys = KeySet.import_key_set(self._get_json(uri, "signing keys"))
                except (JoseError, ValueError, TypeError) as exc:
                    raise OidcError(f"The identity provider's signing keys at {uri} cannot be read: {exc}.") from None
            return self._keys

    def begin(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The provider's authorization URL, and what the callback must see again (state, nonce, verifier)."""
        meta = self.metadata()
        flow = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32)}
        flow["verifier"] = secrets.token_urlsafe(48)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=flow["state"], code_verifier=flow["verifier"], nonce=flow["nonce"]
            )
        return url, flow

    def finish(self, flow: dict[str, str], code: str, redirect_uri: str) -> dict[str, Any]:
        """Exchange `code` (with the PKCE verifier) for tokens and return the ID token's claims, verified."""
        meta = self.metadata()
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(
                    meta["token_endpoint"], grant_type="authorization_code", code=code, code_verifier=flow["verifier"]
                )
        except OAuthError as exc:
            detail = exc.description or exc.error
            raise OidcError(f"The identity provider refused the sign-in code: {detail}.") from None
        except httpx2.HTTPError as exc:
            url = meta["token_endpoint"]
            raise ProviderUnreachable(f"Cannot reach the identity provider at {url}: {exc}.") from None
        except ValueError as exc:
            raise OidcError(f"The identity provider's token answer cannot be read: {exc}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("The identity provider sent no ID token: is the client registered for OpenID Connect?")
        return self._verify(id_token, flow["nonce"], token.get("access_token"))

    def _verify(self, id_token: str, nonce: str, access_token: str | None) -> dict[str, Any]:
        meta = self.metadata()
        algorithms = [a for a in meta.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, key=self._key_set(), registry=registry)
            except InvalidKeyIdError:  # a key the cached set lacks: the provider may have rotated its keys
                decoded = jwt.decode(id_token, key=self._key_set(refresh=True), registry=registry)
            options = {
                "iss": {"essential": True, "values": [meta["issuer"]]},
                "aud": {"essential": True, "values": [self.config.client_id]},
            }
            params = {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token}
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=LEEWAY_S)
        except BadSignatureError:
            raise OidcError("The ID token's signature does not match the identity provider's keys.") from None
        except ExpiredTokenError:
            raise OidcError("The ID token has expired: sign in again (and check this server's clock).") from None
        except MissingClaimError as exc:
            raise OidcError(f"The ID token lacks the {exc.claim!r} claim.") from None
        except InvalidClaimError as exc:
            raise OidcError(_claim_message(exc.claim, self.config.client_id)) from None
        except (JoseError, ValueError) as exc:
            raise OidcError(f"The ID token cannot be verified: {exc}.") from None
        return dict(claims)


def _claim_message(claim: str, client_id: str) -> str:
    return {
        "aud": f"The ID token was issued for another application (its audience is not {client_id!r}).",
        "iss": "The ID token was issued by another identity provider than OIDC_ISSUER.",
        "nonce": "The ID token does not belong to this sign-in (its nonce differs): start again.",
        "iat": "The ID token is dated in the future: check this server's clock.",
        "nbf": "The ID token is not valid yet: check this server's clock.",
    }.get(claim, f"The ID token's {claim!r} claim is not valid.")


class FlowCookie:
    """The signed cookie that carries a started sign-in's state, nonce, PKCE verifier and `next` to the callback:
    it expires after FLOW_TTL_S and the callback deletes it, so a replayed or unknown state is refused. It is
    SameSite=Lax, unlike the session cookie: the provider's redirect back is a cross-site navigation, which would
    not carry a Strict cookie."""

    def __init__(self, secret_key: str) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="ragbot-admin-oidc")

    def dump(self, flow: dict[str, str]) -> str:
        return self._signer.dumps(flow)

    def load(self, value: str | None, state: str | None) -> dict[str, str]:
        """The started sign-in whose state the provider sent back; OidcError when there is none."""
        if not value or not state:
            raise OidcError(UNKNOWN_STATE)
        try:
            flow = self._signer.loads(value, max_age=FLOW_TTL_S)
        except SignatureExpired:
            raise OidcError("The sign-in took longer than 10 minutes: start again from the sign-in page.") from None
        except BadSignature:
            raise OidcError("This sign-in was not started here: start again from the sign-in page.") from None
        if not isinstance(flow, dict) or not secrets.compare_digest(str(flow.get("state", "")), state):
            raise OidcError(UNKNOWN_STATE)
        return flow


def _email_of(claims: dict[str, Any], config: OidcConfig) -> str | None:
    """The claims' email, checked against the policy: OidcError when the person may not sign in."""
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    if email is not None and claims.get("email_verified") is False:
        raise OidcError(f"The identity provider has not verified the email {email}: verify it there first.")
    if config.allowed_domains:
        domain = email.rpartition("@")[2].lower() if email else ""
        if domain not in config.allowed_domains:
            shown = email or "no email"
            raise OidcError(
                f"Sign-in is limited to {', '.join('@' + d for d in config.allowed_domains)} accounts, and this "
                f"account has {shown}."
            )
    return email


def _mapped_grant(claims: dict[str, Any], config: OidcConfig) -> Grant | None:
    if not config.role_claim or not config.role_map:
        return None
    value = claims.get(config.role_claim)
    groups = {value} if isinstance(value, str) else {g for g in value if isinstance(g, str)} if value else set()
    return next((grant for group, grant in config.role_map.items() if group in groups), None)


def _free_name(session: Session, claims: dict[str, Any], email: str | None) -> str:
    """A sign-in name for a new user: the email (or preferred username) made safe and unique; never someone
    else's account, which links by issuer and subject only."""
    raw = email or claims.get("preferred_username") or f"sso-{claims['sub']}"
    base = _NAME_CHARS.sub("-", str(raw))[:56] or "sso-user"
    name, n = base, 1
    while session.scalar(select(store.User.id).where(store.User.name == name)) is not None:
        n += 1
        name = f"{base}-{n}"
    return name


def _invited_user(session: Session, email: str, issuer: str, subject: str) -> store.User | None:
    """The user an admin invited with this (provider-verified) email and who has no single sign-on identity yet,
    now linked to this identity; None when there is none. Only an invited row with no identity is taken: an
    account that already signs in through the provider is never re-linked by email."""
    user = session.scalar(
        select(store.User).where(
            func.lower(store.User.email) == email.lower(),
            store.User.oidc_issuer.is_(None),
            store.User.oidc_subject.is_(None),
        )
    )
    if user is None or not user.active:
        return user
    user.oidc_issuer, user.oidc_subject = issuer, subject
    after = {"email": email, "issuer": issuer}
    audit.record(session, SSO_ACTOR, audit.Action.USER_SSO_LINK, f"user {user.name}", None, after)
    log.info("Invited admin user %s signed in through %s for the first time.", user.name, issuer)
    return user


def sso_user(session: Session, claims: dict[str, Any], config: OidcConfig) -> store.User:
    """The user the verified `claims` sign in: found by issuer and subject, else an invited user with the same
    provider-verified email and no identity yet (`_invited_user`), else created on a first sign-in with the
    default role (none unless OIDC_DEFAULT_ROLE says otherwise). OidcError when the policy refuses them or the
    user is switched off. Flushes; the caller commits."""
    email = _email_of(claims, config)
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    user = session.scalar(
        select(store.User).where(store.User.oidc_issuer == issuer, store.User.oidc_subject == subject)
    )
    if user is None and email is not None and claims.get("email_verified") is True:
        user = _invited_user(session, email, issuer, subject)
    grant = _mapped_grant(claims, config)
    if user is None:
        initial = grant or config.default_role
        user = store.User(
            name=_free_name(session, claims, email),
            password_hash=None,
            role=initial.role,
            team=initial.team,
            email=email,
            oidc_issuer=issuer,
            oidc_subject=subject,
        )
        session.add(user)
        after = {"role": user.role, "team": user.team, "email": email, "issuer": issuer}
        audit.record(session, SSO_ACTOR, audit.Action.USER_CREATE, f"user {user.name}", None, after)
        log.info("Created admin user %s on their first sign-in through %s (role %s).", user.name, issuer, user.role)
    else:
        if not user.active:
            raise OidcError("This account is switched off: ask an admin to switch it on again.")
        if grant is not None and (user.role, user.team) != (grant.role, grant.team):
            before = {"role": user.role, "team": user.team}
            user.role, user.team = grant.role, grant.team
            after = {"role": user.role, "team": user.team}
            audit.record(session, SSO_ACTOR, audit.Action.USER_ROLE, f"user {user.name}", before, after)
        if email:
            user.email = email
    session.flush()
    return user
