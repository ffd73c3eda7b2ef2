"""`ragbot rerank-server`: the in-process reranking engine over HTTP for many bot processes."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.console import err


def rerank_server(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    model: Annotated[str | None, typer.Option(help="Model id or folder [default: RERANK_MODEL]")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda [default: RERANK_DEVICE]")] = None,
) -> None:
    """Serve the reranker over HTTP: POST /v1/rerank (dynamic batching), GET /healthz, GET /metrics."""
    from bot.app import open_components, rerank_batcher_factory
    from rerank.server import run_rerank_server

    with open_components(rerank_model=model, rerank_device=device) as parts:
        s = parts.settings
        err.print(f"Reranker service on http://{host}:{port}/v1/rerank (model {s.rerank_model}; loading…)")
        run_rerank_server(
            rerank_batcher_factory(s), s.rerank_model, host=host, port=port, max_documents=s.rerank_max_documents
        )
