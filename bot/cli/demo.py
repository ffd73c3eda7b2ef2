"""`ragbot demo`: the sample knowledge base in a collection and preset of its own, three sample questions, then
Slack when it is configured; `ragbot demo --remove` takes it all away again.

The sample documents are fictional: they live only in the collection `demo`, searched by the preset `demo`, so
`ragbot ingest` (which writes RAGBOT_COLLECTION) and the real presets never meet them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bot.cli.ask import print_result
from bot.cli.console import err, out, plural
from bot.cli.serve import Host, run_server

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.app import Components
    from retrieval import Embedder, Index

SAMPLE_KB = Path(__file__).resolve().parents[2] / "sample_kb"
DEMO_COLLECTION = "demo"  # the demo's own collection and the name of its preset
DEMO_PRESET = DEMO_COLLECTION
DEMO_QUESTIONS = (
    "Can we integrate single sign-on for this customer?",
    "发票需要盖什么章？",
    "What is the API rate limit and what happens when we exceed it?",
)


def _sample_root() -> str:
    return SAMPLE_KB.as_posix().rstrip("/") + "/"


def holds_only_the_sample(index: Index, collection: str, embedders: Sequence[Embedder]) -> bool:
    """A demo collection from an older ragbot (no lexical vector, or other embedding models) is rebuilt without
    asking, but only when it holds nothing but the sample knowledge base: a collection with the user's own
    documents is never dropped."""
    from retrieval.errors import CollectionMismatchError
    from retrieval.index import check_compatible, dense_vectors
    from retrieval.lexical import LEXICAL_MODEL

    info = index.collection_info(collection)
    if info is None:
        return False
    try:
        primary = embedders[0]
        check_compatible(collection, info, primary.dimension, primary.name, dense_vectors(embedders))
    except CollectionMismatchError:
        pass  # built with other models: outdated
    else:
        if info.lexical_model == LEXICAL_MODEL:
            return False
    root = _sample_root()
    return all(path.startswith(root) for path in index.file_hashes(collection))


def remove_sample_from(index: Index, collection: str) -> list[str]:
    """Delete the sample knowledge base's files from `collection` (where an older `ragbot demo` wrote them, into
    RAGBOT_COLLECTION) and return their paths; every other document stays. A collection that held nothing else is
    dropped, so that the next `ragbot ingest` creates it afresh."""
    if index.collection_info(collection) is None:
        return []
    root = _sample_root()
    held = index.file_hashes(collection)
    files = sorted(path for path in held if path.startswith(root))
    if files and len(files) == len(held):
        index.drop_collection(collection)
        return files
    for path in files:
        index.delete_file(collection, path)
    return files


def clear_old_demo(index: Index, collection: str) -> list[str]:
    """`remove_sample_from`, and one line saying so when there was something to remove."""
    files = remove_sample_from(index, collection)
    if files:
        out.print(
            f"Removed the demo's {plural(len(files), 'sample file')} that an older `ragbot demo` left in "
            f"'{escape(collection)}'; your own documents there are untouched."
        )
    return files


def _check_apart(parts: Components) -> None:
    """RAGBOT_COLLECTION may not be the demo's collection: the two would be one again."""
    if parts.settings.ragbot_collection == DEMO_COLLECTION:
        err.print(
            f"[red]Error:[/] RAGBOT_COLLECTION={DEMO_COLLECTION!r} is the demo's own collection: set RAGBOT_COLLECTION "
            "to another name (the default is 'kb') for your documents."
        )
        raise typer.Exit(1)


def demo_components(parts: Components) -> Components:
    """`parts` as the demo serves Slack: the same loaded models, index and database, with RAGBOT_COLLECTION set to
    the demo's collection for this process, so channels on the default preset answer from the sample."""
    from bot.app import Components

    settings = parts.settings.model_copy(update={"ragbot_collection": DEMO_COLLECTION})
    shared = ("engine", "sessions", "index", "embedders", "reranker")
    return Components(settings, **{name: getattr(parts, name) for name in shared})


def remove_demo(parts: Components) -> None:
    """Drop the demo's collection and preset (with its channel bindings), and any sample files an older demo left
    in RAGBOT_COLLECTION. Logged questions stay in the question log (`ragbot logs purge` ages them out)."""
    from bot.answering import Presets

    index = parts.index
    dropped = index.collection_info(DEMO_COLLECTION) is not None
    if dropped:
        index.drop_collection(DEMO_COLLECTION)
    removed_preset = Presets(parts.sessions, parts.settings.ragbot_collection).remove(DEMO_PRESET, DEMO_COLLECTION)
    done = [f"the collection '{DEMO_COLLECTION}'"] if dropped else []
    done += [f"the preset '{DEMO_PRESET}'"] if removed_preset else []
    out.print(f"Removed {' and '.join(done)}." if done else "No demo to remove.")
    clear_old_demo(index, parts.settings.ragbot_collection)


def demo(
    serve: Annotated[bool, typer.Option(help="Start the server afterwards when Slack is configured")] = True,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove the demo: its collection and preset, and nothing of yours")
    ] = False,
) -> None:
    """Ingest the sample knowledge base into the collection 'demo' (when needed), answer three sample questions
    with the preset 'demo', then serve Slack from it. Your documents (RAGBOT_COLLECTION) never see it."""
    from bot.app import open_components
    from retrieval import ingest_path

    with open_components() as parts:
        _check_apart(parts)
        if remove:
            remove_demo(parts)
            return
        if not SAMPLE_KB.is_dir():
            missing = f"The sample knowledge base is missing at {SAMPLE_KB}"
            err.print(f"[red]Error:[/] {escape(missing)}; run from a ragbot checkout.")
            raise typer.Exit(1)
        mine = parts.settings.ragbot_collection
        with err.status("Preparing the sample knowledge base…"):
            clear_old_demo(parts.index, mine)
            summary = ingest_path(
                SAMPLE_KB,
                parts.index,
                parts.embedders,
                DEMO_COLLECTION,
                chunk_tokens=parts.settings.chunk_tokens,
                overlap_tokens=parts.settings.chunk_overlap_tokens,
                rebuild=holds_only_the_sample(parts.index, DEMO_COLLECTION, parts.embedders),
            )
        parts.answers.presets.ensure(DEMO_PRESET, DEMO_COLLECTION)
        out.print(
            f"Sample knowledge base: {summary.files} files in '{DEMO_COLLECTION}' "
            f"({len(summary.added) + len(summary.updated)} indexed now, {len(summary.unchanged)} already there), "
            f"answered with the preset '{DEMO_PRESET}'. Your documents go to '{escape(mine)}' and never meet it; "
            "`ragbot demo --remove` removes the demo.\n"
        )
        for question in DEMO_QUESTIONS:
            out.rule(f"[bold]{escape(question)}")
            print_result(parts.answers.ask(question, preset_name=DEMO_PRESET, collection=DEMO_COLLECTION))
            out.print()
        settings = parts.settings
        if serve and settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token):
            out.print(
                f"Slack channels on the default preset answer from '{DEMO_COLLECTION}' while `ragbot demo` runs; "
                f"`ragbot serve` answers from '{escape(mine)}'."
            )
            with demo_components(parts) as serving:
                run_server(serving, host, port)
        elif serve:
            out.print(
                "To answer in Slack, set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN "
                "(Socket Mode) and run `ragbot demo` or `ragbot serve` again (README: 'Slack')."
            )
