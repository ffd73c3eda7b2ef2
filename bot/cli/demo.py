"""`ragbot demo`: the sample knowledge base, three sample questions, then Slack when it is configured."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.ask import print_result
from bot.cli.console import err, out
from bot.cli.serve import Host, run_server

if TYPE_CHECKING:
    from retrieval import Index

SAMPLE_KB = Path(__file__).resolve().parents[2] / "sample_kb"
DEMO_QUESTIONS = (
    "Can we integrate single sign-on for this customer?",
    "发票需要盖什么章？",
    "What is the API rate limit and what happens when we exceed it?",
)


def holds_only_the_sample(index: Index, collection: str) -> bool:
    """A demo collection from an older ragbot (no lexical vector) is rebuilt without asking, but only when it holds
    nothing but the sample knowledge base: a collection with the user's own documents is never dropped."""
    from retrieval.lexical import LEXICAL_MODEL

    info = index.collection_info(collection)
    if info is None or info.lexical_model == LEXICAL_MODEL:
        return False
    root = SAMPLE_KB.as_posix().rstrip("/") + "/"
    return all(path.startswith(root) for path in index.file_hashes(collection))


def demo(
    serve: Annotated[bool, typer.Option(help="Start the server afterwards when Slack is configured")] = True,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Ingest the sample knowledge base (when needed), answer three sample questions, then serve Slack."""
    from bot.app import open_components
    from retrieval import ingest_path

    if not SAMPLE_KB.is_dir():
        raise typer.BadParameter(f"The sample knowledge base is missing at {SAMPLE_KB}; run from a ragbot checkout.")
    with open_components() as parts:
        collection = parts.settings.ragbot_collection
        with err.status("Preparing the sample knowledge base…"):
            summary = ingest_path(
                SAMPLE_KB,
                parts.index,
                parts.embedder,
                collection,
                chunk_tokens=parts.settings.chunk_tokens,
                overlap_tokens=parts.settings.chunk_overlap_tokens,
                rebuild=holds_only_the_sample(parts.index, collection),
            )
        out.print(
            f"Sample knowledge base: {summary.files} files in '{collection}' "
            f"({len(summary.added) + len(summary.updated)} indexed now, {len(summary.unchanged)} already there).\n"
        )
        for question in DEMO_QUESTIONS:
            out.rule(f"[bold]{escape(question)}")
            print_result(parts.answers.ask(question))
            out.print()
        settings = parts.settings
        if serve and settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token):
            run_server(parts, host, port)
        elif serve:
            out.print(
                "To answer in Slack, set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN "
                "(Socket Mode) and run `ragbot demo` or `ragbot serve` again (README: 'Slack')."
            )
