"""What a new user meets at the server's door: `GET /` leads to the admin app, and a port another process holds is
one clear line before anything says "listening"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.app.web import create_http_app


def test_the_root_leads_to_the_admin_app_when_it_is_mounted() -> None:
    admin = FastAPI()
    client = TestClient(create_http_app(None, admin))
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/admin/"
    # without the admin app (serve --no-admin) there is nothing to lead to
    assert TestClient(create_http_app(None, None)).get("/", follow_redirects=False).status_code == 404


def test_a_port_in_use_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGBOT_", "ADMIN_", "DATABASE_"))}
        env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'ragbot.db'}"
        run = subprocess.run(
            [str(Path(sys.executable).with_name("ragbot")), "admin", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = run.stdout + run.stderr
    lines = [line for line in output.splitlines() if line.strip() and "WARNING" not in line]
    assert run.returncode == 1, output
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0], output
    assert "listening" not in output and "Traceback" not in output
