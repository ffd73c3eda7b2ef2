"""`ragbot serve` and `ragbot admin serve`: the web server (Slack over HTTP or Socket Mode, the admin app)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.console import err

if TYPE_CHECKING:
    from bot.app import Components

Host = Annotated[str, typer.Option(help="Interface to listen on")]
NoAdmin = Annotated[
    bool,
    typer.Option(
        "--no-admin",
        help="Leave the admin app out (run it apart with `ragbot admin serve`, off the public Slack port)",
    ),
]


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound and listening before anything says "listening": a port another process holds
    is one clear line and exit 1 here, not a message from deep inside uvicorn after ours."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.print(
            f"[red]Error:[/] cannot listen on {host}:{port}: {reason}. Another process (an earlier ragbot?) may "
            "hold the port: stop it, or pass --port."
        )
        raise typer.Exit(1) from None


def serve(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    no_admin: NoAdmin = False,
) -> None:
    """Run the Slack bot: HTTP (POST /slack/events, GET /healthz) and, with SLACK_APP_TOKEN, Socket Mode."""
    from bot.app import open_components

    with open_components() as parts:
        run_server(parts, host, port, admin=not no_admin)


def run_server(parts: Components, host: str, port: int, *, admin: bool = True) -> None:
    """Serve Slack (and the admin app unless `admin` is False) from `parts` until SIGTERM or Ctrl-C (models load
    before taking traffic). On SIGTERM the server stops taking requests, running answers finish within
    SHUTDOWN_GRACE_S, the rest go back to the queue, and the process exits 0."""
    import signal

    import uvicorn

    from bot.app.web import build_service, server_config

    # Before taking traffic: the embedded store must be this process's (another one holding it is a clear error
    # now, not a failure on every question), and the models are loaded.
    parts.index.collection_info(parts.settings.ragbot_collection)
    service = build_service(parts, admin=admin)
    _ = parts.embedders, parts.answers.reranker_status()
    server = uvicorn.Server(server_config(service.http, host, port, parts.settings))
    sock = listening_socket(host, port)
    # uvicorn shuts down on SIGTERM and then raises the signal again for the handler it found; this one lets
    # the process live on to drain its answers instead of dying there.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        service.start()
        if service.app is None:
            modes = "admin only: Slack is not configured, see README 'Slack'"
        else:
            slack = [
                name
                for name, on in (("HTTP", parts.settings.slack_signing_secret), ("Socket Mode", service.socket_mode))
                if on
            ]
            modes = f"Slack over {' + '.join(slack)}" + (", admin" if service.admin else ", no admin")
        admin_at = f"; admin app: http://{host}:{port}/admin/" if service.admin else ""
        err.print(f"ragbot is listening on http://{host}:{port} ({modes}){admin_at}")
        server.run(sockets=[sock])
    finally:
        service.close()
        signal.signal(signal.SIGTERM, previous)


def admin_serve(host: Host = "127.0.0.1", port: Annotated[int, typer.Option(help="Port to listen on")] = 8001) -> None:
    """Run the admin app on its own (for deployments that split it from the Slack bot)."""
    from functools import partial

    import uvicorn

    from bot.app import open_components
    from bot.app.health import admin_readiness
    from bot.app.web import build_admin, create_http_app, server_config

    with open_components() as parts:
        http = create_http_app(None, build_admin(parts), ready=partial(admin_readiness, parts))
        sock = listening_socket(host, port)
        err.print(f"ragbot admin is listening on http://{host}:{port}/admin/")
        uvicorn.Server(server_config(http, host, port, parts.settings)).run(sockets=[sock])
