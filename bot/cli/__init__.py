"""`ragbot`: the one command line. One module per command group, each a thin layer that parses, calls the
composition root (`bot.app`) or the answer service, and prints; heavy imports wait until a command runs, so
`ragbot --help` does not pay for torch."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.markup import escape

from bot.cli import admin, ask, db, demo, ingest, logs, rerank_server, serve, sources
from bot.cli.console import err
from bot.cli.errors import describe, is_user_error, unwrap
from bot.cli.eval import eval_command
from redact import mask_secrets

app = typer.Typer(
    help="ragbot: answers product questions from your documents, reranked by Qwen3-Reranker, with sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(ingest.ingest)
app.command()(ask.ask)
app.command()(demo.demo)
app.command()(serve.serve)
app.command("eval")(eval_command)
app.command("rerank-server")(rerank_server.rerank_server)
app.command("sync")(sources.sync)

source_app = typer.Typer(help="Sources that keep collections current: folders, websites, wikis, help centers.")
source_app.command("add")(sources.add)
source_app.command("list")(sources.list_sources)
source_app.command("remove")(sources.remove)
app.add_typer(source_app, name="source", no_args_is_help=True)

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
db_app.command("upgrade")(db.upgrade)
app.add_typer(db_app, name="db")

logs_app = typer.Typer(help="The question log: data care.", no_args_is_help=True)
logs_app.command("purge")(logs.purge)
app.add_typer(logs_app, name="logs")

admin_app = typer.Typer(help="The admin web app and its users.", no_args_is_help=True)
admin_app.command("create-user")(admin.create_user)
admin_app.command("set-password")(admin.set_password)
admin_app.command("deactivate")(admin.deactivate)
admin_app.command("serve")(serve.admin_serve)
app.add_typer(admin_app, name="admin")


def _quiet_libraries() -> None:
    """Model-loading progress bars and library chatter hide ragbot's own output. Said through the variables the
    libraries read when they load (transformers takes its level from TRANSFORMERS_VERBOSITY and its progress bars
    from HF_HUB_DISABLE_PROGRESS_BARS), so no command pays for importing transformers before it needs a model."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    """Entry point: known problems print one clear line and exit non-zero, never a traceback."""
    _quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)
    except Exception as raised:
        if os.environ.get("RAGBOT_DEBUG"):
            raise
        exc = unwrap(raised)
        if is_user_error(exc):
            err.print(f"[red]Error:[/] {escape(describe(exc))}")
            sys.exit(1)
        err.print(
            f"[red]Unexpected error:[/] {escape(type(exc).__name__)}: {escape(mask_secrets(str(exc)))}\n"
            "Run again with RAGBOT_DEBUG=1 to see the traceback, and please report it."
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
