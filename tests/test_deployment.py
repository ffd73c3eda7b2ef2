"""The production compose file as an attacker would find it (issue 13): no demo in the bot's command, production
mode, secrets only from `.env` with none defaulted, Qdrant and PostgreSQL and the reranker off the host's ports and
each behind a key, the admin app on 127.0.0.1 apart from the Slack port, restart policies, health checks that the
images can run; and the image holds every package the project installs."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
LONG_RUNNING = ("qdrant", "postgres", "reranker", "ragbot", "admin")
SECRETS = (
    "POSTGRES_PASSWORD",
    "QDRANT_API_KEY",
    "RERANK_SERVER_API_KEY",
    "ADMIN_SECRET_KEY",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
)
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<how>:\?|:-|\?|-)?(?P<rest>[^}]*)\}")


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def references() -> list[re.Match[str]]:
    return list(_REFERENCE.finditer((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def env_of(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def test_the_bot_serves_slack_in_production_without_the_demo_or_the_admin() -> None:
    bot = SERVICES["ragbot"]
    assert bot["command"][:3] == ["ragbot", "serve", "--no-admin"] and "demo" not in bot["command"]
    assert all(env_of(name)["RAGBOT_ENV"] == "production" for name in ("ragbot", "admin", "reranker", "ingest"))
    assert [str(p).rsplit(":", 1)[-1] for p in bot["ports"]] == ["8000"]  # the Slack port only


def test_the_admin_app_runs_apart_and_only_on_the_hosts_loopback() -> None:
    admin = SERVICES["admin"]
    assert admin["command"][:3] == ["ragbot", "admin", "serve"]
    assert all(str(port).startswith("127.0.0.1:") for port in admin["ports"])
    assert env_of("admin")["ADMIN_SECRET_KEY"].startswith("${ADMIN_SECRET_KEY:?")


def test_qdrant_postgres_and_the_reranker_are_not_published_and_need_their_keys() -> None:
    for name in ("qdrant", "postgres", "reranker"):
        assert "ports" not in SERVICES[name], f"{name} must stay on the internal network"
    assert env_of("qdrant")["QDRANT__SERVICE__API_KEY"].startswith("${QDRANT_API_KEY:?")
    assert env_of("reranker")["RERANK_SERVER_API_KEY"].startswith("${RERANK_SERVER_API_KEY:?")
    assert env_of("postgres")["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for client in ("ragbot", "admin", "ingest"):
        env = env_of(client)
        assert env["RERANK_API_KEY"].startswith("${RERANK_SERVER_API_KEY:?")
        assert env["QDRANT_API_KEY"].startswith("${QDRANT_API_KEY:?")
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_every_secret_is_required_and_listed_in_env_example_without_a_value() -> None:
    example = env_example()
    found = references()
    assert {m["name"] for m in found} <= set(example), "every variable compose reads is in .env.example"
    for secret in SECRETS:
        uses = [m for m in found if m["name"] == secret]
        assert uses and all(m["how"] == ":?" for m in uses), f"{secret} must be required (${{{secret}:?...}})"
        assert example[secret] == "", f".env.example must not give {secret} a value"
    assert example["RANKING_RETENTION_DAYS"] == "90"


def test_ingest_is_a_one_off_tool() -> None:
    ingest = SERVICES["ingest"]
    assert ingest["profiles"] == ["tools"] and ingest["command"] == ["ragbot", "ingest", "/kb"]
    assert any(volume.endswith(":/kb:ro") for volume in ingest["volumes"])


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_restart_and_are_health_checked(name: str) -> None:
    service = SERVICES[name]
    assert service["restart"] == "unless-stopped"
    test = service["healthcheck"]["test"]
    assert "curl" not in " ".join(test) and "wget" not in " ".join(test)  # neither is in the images
    if name in ("ragbot", "reranker", "admin"):
        assert test[:3] == ["CMD", "python", "-c"] and "/readyz" in test[3]


class _Status(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz() -> Iterator[tuple[int, type[_Status]]]:
    handler = type("Handler", (_Status,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["ragbot", "reranker"])
def test_the_health_check_fails_while_not_ready(name: str, readyz: tuple[int, type[_Status]]) -> None:
    """The one-liner compose runs in the container: exit 0 on 200, non-zero on /readyz's 503."""
    port, handler = readyz
    code = SERVICES[name]["healthcheck"]["test"][3]
    code = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", code)
    python = shutil.which("python") or "python3"
    assert subprocess.run([python, "-c", code], capture_output=True, timeout=30).returncode == 0
    handler.status = 503
    assert subprocess.run([python, "-c", code], capture_output=True, timeout=30).returncode != 0


def test_the_image_copies_every_installed_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r"^include = \[(.*)\]$", pyproject, re.M)
    packages = {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    assert packages <= copied


def test_env_files_stay_out_of_git_and_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in (ROOT / ".dockerignore").read_text(encoding="utf-8").split()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_validates_with_env_example_and_refuses_a_missing_secret(tmp_path: Path) -> None:
    filled = tmp_path / "env"
    filled.write_text("".join(f"{k}={v or 'placeholder'}\n" for k, v in env_example().items()), encoding="utf-8")
    clean = {"PATH": os.environ["PATH"]}

    def config(env_file: Path) -> subprocess.CompletedProcess[str]:
        command = ["docker-compose", "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "config"]
        return subprocess.run([*command, "-q"], capture_output=True, text=True, env=clean, timeout=60)

    assert config(filled).returncode == 0, config(filled).stderr
    missing = tmp_path / "missing"
    missing.write_text(
        "".join(line for line in filled.read_text().splitlines(True) if not line.startswith("ADMIN_SECRET_KEY=")),
        encoding="utf-8",
    )
    refused = config(missing)
    assert refused.returncode != 0 and "set ADMIN_SECRET_KEY in .env" in refused.stderr
