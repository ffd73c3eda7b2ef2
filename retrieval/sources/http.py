"""The one HTTP client every connector uses: auth headers, a polite pace, 429/503 with Retry-After, conditional GETs,
and errors that say what to fix. Connectors speak their API's paths and shapes; this speaks HTTP."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import httpx

from retrieval.sources.base import KnownDocument, SourceAuthError, SourceError

USER_AGENT = "ragbot-sync/1 (+https://github.com/ragbot)"
RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRIES = 5
MAX_RETRY_WAIT_S = 120.0  # a Retry-After longer than this is not waited out: the sync fails and says so


class FetchError(SourceError):
    """One request failed for good (after retries): `status` is the HTTP status, 0 for a network error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: either delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class SourceHttp:
    """`token_env` is the environment variable the credentials came from, named when the source refuses them.
    `min_interval` spaces requests (seconds between the starts of two requests), for sites crawled politely.
    `rate_limit_wait` reads an API's own rate-limit signal from a refused response: seconds to wait before retrying,
    or None for the usual handling (GitHub answers a spent rate limit with 403, which is not an auth error)."""

    def __init__(
        self,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        token_env: str = "",
        what: str = "the source",
        timeout: float = 30.0,
        min_interval: float = 0.0,
        max_retries: int = MAX_RETRIES,
        max_retry_wait: float = MAX_RETRY_WAIT_S,
        sleep: Callable[[float], None] = time.sleep,
        follow_redirects: bool = True,
        rate_limit_wait: Callable[[httpx.Response], float | None] | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            auth=auth,
            timeout=timeout,
            follow_redirects=follow_redirects,
        )
        self.token_env = token_env
        self.what = what
        self.min_interval = min_interval
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.sleep = sleep
        self.rate_limit_wait = rate_limit_wait
        self._last_start = 0.0
        self.requests = 0  # sent, retries included (the sync bench reads it)

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        known: KnownDocument | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """GET with If-None-Match / If-Modified-Since from `known`; a 304 is returned, not raised."""
        conditional = dict(headers or {})
        if known is not None and known.etag:
            conditional["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            conditional["If-Modified-Since"] = known.last_modified
        return self.request("GET", url, params=params, headers=conditional, ok=(*ok, 304) if known else ok)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """One request, retried on 429/502/503/504 (Retry-After honoured, else exponential back-off) and on
        network errors; 401/403 raise `SourceAuthError`, any other status outside `ok` raises `FetchError`."""
        for attempt in range(self.max_retries + 1):
            self._pace()
            self.requests += 1
            try:
                response = self.client.request(method, url, params=params, headers=headers, json=json)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries:
                    raise FetchError(f"{self.what}: cannot reach {_show(url)}: {exc}") from exc
                self.sleep(min(2.0**attempt, self.max_retry_wait))
                continue
            if response.status_code in ok:
                return response
            limited = self.rate_limit_wait(response) if self.rate_limit_wait else None
            if response.status_code in (401, 403) and limited is None:
                raise SourceAuthError(self._auth_message(response))
            if (limited is not None or response.status_code in RETRY_STATUSES) and attempt < self.max_retries:
                wait = limited if limited is not None else retry_after_seconds(response.headers.get("Retry-After"))
                wait = min(2.0**attempt, 30.0) if wait is None else wait
                if wait > self.max_retry_wait:
                    raise FetchError(
                        f"{self.what} asked to wait {wait:.0f} s before the next request (HTTP "
                        f"{response.status_code}); try the sync later",
                        response.status_code,
                    )
                self.sleep(wait)
                continue
            raise FetchError(
                f"{self.what}: HTTP {response.status_code} for {_show(str(response.request.url))}",
                response.status_code,
            )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _auth_message(self, response: httpx.Response) -> str:
        fix = f"check the token in {self.token_env}" if self.token_env else "this source needs a token (--token-env)"
        return f"{self.what} refused the credentials (HTTP {response.status_code}): {fix}"

    def _pace(self) -> None:
        if self.min_interval <= 0:
            return
        wait = self._last_start + self.min_interval - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last_start = time.monotonic()

    def close(self) -> None:
        self.client.close()


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The response's JSON object, or FetchError saying that `what` answered something else (an HTML error page
    from a proxy, a list where an object belongs)."""
    try:
        data = response.json()
    except ValueError as exc:
        raise FetchError(f"{what} answered with something other than JSON", response.status_code) from exc
    if not isinstance(data, dict):
        raise FetchError(f"{what} answered with something other than a JSON object", response.status_code)
    return data


def http_date(moment: datetime) -> str:
    """A datetime as an HTTP date (Last-Modified, If-Modified-Since)."""
    return email.utils.format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def _show(url: str) -> str:
    """A URL fit for a message: the query string (where tokens sometimes travel) left out."""
    return url.split("?", 1)[0]
