"""Whose X-Forwarded-For a real `ragbot admin serve` believes (issue 13: "X-Forwarded-For from 127.0.0.1 dodges
the per-address limit"; uvicorn's own default trusts it from 127.0.0.1, so anyone on the host could name the
address the sign-in throttle counts). FORWARDED_ALLOW_IPS names the proxies to believe; empty believes none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bot.app.web import server_config
from bot.settings import Settings

HTML = {"accept": "text/html"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def admin_serve(home: Path, forwarded_allow_ips: str | None) -> Iterator[httpx.Client]:
    """`ragbot admin serve` on 127.0.0.1 with its own SQLite database; a client with a cookie jar."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORWARDED_", "RAGBOT_", "ADMIN_", "DATABASE_"))}
    env["DATABASE_URL"] = f"sqlite:///{home / 'ragbot.db'}"
    if forwarded_allow_ips is not None:
        env["FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    log = home / "admin.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("ragbot")), "admin", "serve", "--port", str(port)],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.time() < deadline, "ragbot admin serve did not come up"
                time.sleep(0.2)
        with httpx.Client(base_url=base, headers=HTML, timeout=30) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Traceback" not in log.read_text()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def wrong_guesses(client: httpx.Client, name: str, forwarded_for: list[str]) -> list[int]:
    """One wrong sign-in of `name` per X-Forwarded-For value, as a browser would post the form."""
    csrf = csrf_of(client.get("/admin/login").text)
    statuses = []
    for address in forwarded_for:
        response = client.post(
            "/admin/login",
            data={"name": name, "password": "not-the-password", "csrf_token": csrf},
            headers={"X-Forwarded-For": address},
        )
        statuses.append(response.status_code)
    return statuses


def login_redirect(client: httpx.Client) -> str:
    """Where a signed-out page sends the browser: an absolute URL, whose scheme says whether
    X-Forwarded-Proto was believed."""
    response = client.get("/admin/", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    assert response.status_code == 303
    return response.headers["location"]


def test_without_forwarded_allow_ips_a_forged_x_forwarded_for_does_not_dodge_the_throttle(tmp_path: Path) -> None:
    with admin_serve(tmp_path, None) as client:
        # the admin alone is ready once its database answers (what compose's health check asks)
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})
        # six wrong guesses, each claiming another address: counted as six from 127.0.0.1
        statuses = wrong_guesses(client, "admin", [f"203.0.113.{i}" for i in range(1, 7)])
        assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
        assert login_redirect(client).startswith("http://127.0.0.1:")  # X-Forwarded-Proto ignored too


def test_with_forwarded_allow_ips_the_proxys_headers_are_believed(tmp_path: Path) -> None:
    with admin_serve(tmp_path, "127.0.0.1") as client:
        assert login_redirect(client).startswith("https://127.0.0.1:")
        statuses = wrong_guesses(client, "admin", ["198.51.100.7"] * 6)
        assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
        # another name from another forwarded address is that address's own first try
        assert wrong_guesses(client, "reviewer", ["198.51.100.8"]) == [401]


@pytest.mark.parametrize(
    ("setting", "proxy_headers", "trusted"),
    [
        ("", False, None),
        ("  ", False, None),
        ("10.0.0.5", True, "10.0.0.5"),
        ("10.0.0.0/8,::1", True, "10.0.0.0/8,::1"),
    ],
)
def test_server_config_trusts_only_forwarded_allow_ips(
    monkeypatch: pytest.MonkeyPatch, setting: str, proxy_headers: bool, trusted: str | None
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", setting)
    config = server_config(object(), "127.0.0.1", 8000, Settings(_env_file=None))
    assert config.proxy_headers is proxy_headers
    if trusted is not None:
        assert config.forwarded_allow_ips == trusted
