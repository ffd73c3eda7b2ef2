"""Credentials out of text: the one function every layer uses before an error or a status is shown or stored.

Configured URLs carry secrets (`https://user:secret@host/`, `?api_key=...`), and errors quote URLs. This package
sits below every other one and imports nothing from the project, so the leaves (`retrieval`, `rerank`, `store`),
which may not import each other, can all mask what they raise with the same rules."""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_secrets"]

MASK = "***"

# scheme:// then the authority: everything up to the path, the query, the fragment or a blank (RFC 3986). A
# password with an unencoded "@" still ends at the last "@" of the authority, as URL parsers read it.
_AUTHORITY = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^/?#\s]+)")
# A query or matrix parameter (`?name=value`, `&name=value`, `;name=value`); masked when its name ends like a secret's.
_PARAMETER = re.compile(r"(?P<name>[?&;][\w.\-\[\]]+=)(?P<value>[^&;#\s'\"<>|]*)")
_SECRET_NAME = re.compile(
    r"(key|token|secret|passw(or)?d|pwd|pass|signature|sig|credentials?|auth|session)\]?=$", re.IGNORECASE
)


def _mask_userinfo(match: re.Match[str]) -> str:
    authority = match["authority"]
    if "@" not in authority:
        return match.group(0)
    userinfo, host = authority.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    # `user:password@` keeps the user (it says which account); a lone `token@` is the secret itself.
    shown = f"{user}:{MASK}" if has_password else MASK
    return f"{match['scheme']}{shown}@{host}"


def _mask_parameter(match: re.Match[str]) -> str:
    if not match["value"] or not _SECRET_NAME.search(match["name"]):
        return match.group(0)
    return match["name"] + MASK


def mask_secrets(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by ``***``: the password of `user:password@`
    (a lone `token@` entirely) and the values of query parameters named like a key, token, secret, password or
    signature. Everything else is left as it was, so a masked error still says where and what went wrong."""
    if not text:
        return text
    return _PARAMETER.sub(_mask_parameter, _AUTHORITY.sub(_mask_userinfo, text))
