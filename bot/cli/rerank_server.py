"""`ragbot rerank-server`: the in-process reranking engine over HTTP for many bot processes."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from bot.cli.console import err

MIN_API_KEY_CHARS = 32  # in production: a key short enough to guess is no key


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def rerank_server(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    model: Annotated[str | None, typer.Option(help="Model id or folder [default: RERANK_MODEL]")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda [default: RERANK_DEVICE]")] = None,
) -> None:
    """Serve the reranker over HTTP: POST /v1/rerank (dynamic batching), GET /healthz, /readyz, /metrics.

    With RERANK_SERVER_API_KEY set, /v1/rerank and /metrics require `Authorization: Bearer <key>`; in
    production (RAGBOT_ENV=production) the server does not start without it."""
    from bot.app import open_components, rerank_batcher_factory
    from rerank.server import run_rerank_server

    with open_components(rerank_model=model, rerank_device=device) as parts:
        s = parts.settings
        api_key = (s.rerank_server_api_key or "").strip() or None
        if api_key is None and s.ragbot_env == "production":
            err.print(
                "[red]Error:[/] RERANK_SERVER_API_KEY is not set: in production the rerank server refuses to start "
                "without it (clients send it as RERANK_API_KEY)."
            )
            raise typer.Exit(1)
        if api_key is not None and len(api_key) < MIN_API_KEY_CHARS and s.ragbot_env == "production":
            err.print(
                f"[red]Error:[/] RERANK_SERVER_API_KEY is {len(api_key)} characters long: in production use at "
                f"least {MIN_API_KEY_CHARS} (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
            raise typer.Exit(1)
        if api_key is None and not is_loopback(host):
            err.print(
                f"[yellow]Warning:[/] RERANK_SERVER_API_KEY is not set and the server listens on {host}: anyone who "
                "can reach this port can use the reranker. Set RERANK_SERVER_API_KEY (clients send it as "
                "RERANK_API_KEY)."
            )
        err.print(f"Reranker service on http://{host}:{port}/v1/rerank (model {s.rerank_model}; loading…)")
        run_rerank_server(
            rerank_batcher_factory(s),
            s.rerank_model,
            host=host,
            port=port,
            max_documents=s.rerank_max_documents,
            max_document_chars=s.rerank_max_document_chars,
            max_request_chars=s.rerank_max_request_chars,
            api_key=api_key,
        )
