"""`ragbot`: the one command line for ingest, ask, demo and database upgrades."""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

SAMPLE_KB = Path(__file__).resolve().parent.parent / "sample_kb"
DEMO_QUESTIONS = (
    "Can we integrate single sign-on for this customer?",
    "发票需要盖什么章？",
    "What is the API rate limit and what happens when we exceed it?",
)

app = typer.Typer(
    help="ragbot: answers product questions from your documents, reranked by Qwen3-Reranker, with sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
admin_app = typer.Typer(help="The admin web app and its users.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")

# soft_wrap: long URLs stay whole when the output is piped or captured.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _components():  # imported late: `ragbot --help` should not pay for torch
    from bot.components import Components
    from bot.settings import get_settings

    return Components(get_settings())


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A folder (searched recursively) or one file: .md .txt .html .pdf")],
    collection: Annotated[str | None, typer.Option(help="Collection to write to [default: RAGBOT_COLLECTION]")] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Drop the collection and index everything again (after EMBED_MODEL or ragbot changes)"),
    ] = False,
) -> None:
    """Ingest documents: new and changed files are (re)indexed, unchanged ones skipped, deleted ones removed."""
    from retrieval import ingest_path
    from retrieval.errors import RetrievalError
    from retrieval.ingest import discover_files

    if not path.exists():
        raise RetrievalError(f"No such file or folder: {path}")
    with _components() as parts:
        name = collection or parts.settings.ragbot_collection
        total = len(discover_files(path.resolve()))
        if total == 0:
            raise RetrievalError(f"No .md, .txt, .html or .pdf files found in {path}")
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Loading model", total=total, current="")
            embedder = parts.embedder
            progress.update(task, description="Ingesting")

            def advance(file: str, outcome: str) -> None:
                progress.update(task, advance=1, current=f"{outcome}: {Path(file).name}")

            summary = ingest_path(
                path,
                parts.index,
                embedder,
                name,
                chunk_tokens=parts.settings.chunk_tokens,
                overlap_tokens=parts.settings.chunk_overlap_tokens,
                progress=advance,
                rebuild=rebuild,
            )
    out.print(
        f"[bold]Ingested {summary.files} files into '{summary.collection}'[/] in {summary.seconds:.1f} s: "
        f"{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.unchanged)} unchanged, "
        f"{len(summary.removed)} removed, {len(summary.failed)} failed; {summary.chunks} chunks written."
    )
    for removed in summary.removed:
        out.print(f"  removed: {escape(removed)}")
    for failed, reason in summary.failed.items():
        err.print(f"  [red]failed:[/] {escape(failed)}: {escape(reason)}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes")],
    channel: Annotated[str | None, typer.Option(help="Slack channel id whose preset to use")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    require_rerank: Annotated[
        bool | None, typer.Option("--require-rerank", help="Fail if reranking cannot run [env: RERANK_REQUIRED]")
    ] = None,
) -> None:
    """Answer a question from the knowledge base, with numbered sources and timings."""
    from bot.pipeline import validate_question

    validate_question(question)  # before loading anything
    with _components() as parts:
        result = parts.pipeline.ask(question, channel=channel, require_rerank=require_rerank or None)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        _print_result(result)


def _print_result(result) -> None:
    out.print(escape(result.answer))
    if result.note:
        out.print(f"[yellow]{escape(result.note)}[/]")
    heading = "Sources" if result.status == "ok" else "Closest passages (not used)"
    out.print(f"\n[bold]{heading}[/]")
    for c in result.citations:
        score = f"{c.score:.2f}" if c.score is not None else "n/a"
        where = f"{c.title} › {c.section}" if c.section else c.title
        out.print(f"  [{c.n}] {escape(where)} — {escape(c.source)}  (rerank {score})")
    rerank = result.rerank if result.rerank == "ok" else f"[yellow]{escape(result.rerank)}[/]"
    out.print(
        f"\npreset [bold]{escape(result.preset.name)}[/] v{result.preset.version} · "
        f"retrieval {result.retrieval_mode} · rerank {rerank} · "
        f"answer {escape(result.answer_writer)} · ranking #{result.ranking_id}"
    )
    t = result.timings_ms
    out.print(
        "timings: "
        + " · ".join(
            f"{stage} {t.get(stage, 0.0):.0f} ms" for stage in ("embed", "search", "rerank", "answer", "total")
        )
    )
    if result.retrieval_note:
        out.print(f"[yellow]retrieval: {escape(result.retrieval_note)}[/]")


def _holds_only_the_sample(index, collection: str) -> bool:
    """A demo collection from an older ragbot (no lexical vector) is rebuilt without asking, but only when it holds
    nothing but the sample knowledge base: a collection with the user's own documents is never dropped."""
    from retrieval.lexical import LEXICAL_MODEL

    info = index.collection_info(collection)
    if info is None or info.lexical_model == LEXICAL_MODEL:
        return False
    root = SAMPLE_KB.as_posix().rstrip("/") + "/"
    return all(path.startswith(root) for path in index.file_hashes(collection))


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(help="Start the server afterwards when Slack is configured")] = True,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Ingest the sample knowledge base (when needed), answer three sample questions, then serve Slack."""
    from retrieval import ingest_path

    if not SAMPLE_KB.is_dir():
        raise typer.BadParameter(f"The sample knowledge base is missing at {SAMPLE_KB}; run from a ragbot checkout.")
    with _components() as parts:
        collection = parts.settings.ragbot_collection
        with err.status("Preparing the sample knowledge base…"):
            summary = ingest_path(
                SAMPLE_KB,
                parts.index,
                parts.embedder,
                collection,
                chunk_tokens=parts.settings.chunk_tokens,
                overlap_tokens=parts.settings.chunk_overlap_tokens,
                rebuild=_holds_only_the_sample(parts.index, collection),
            )
        out.print(
            f"Sample knowledge base: {summary.files} files in '{collection}' "
            f"({len(summary.added) + len(summary.updated)} indexed now, {len(summary.unchanged)} already there).\n"
        )
        for question in DEMO_QUESTIONS:
            out.rule(f"[bold]{escape(question)}")
            _print_result(parts.pipeline.ask(question))
            out.print()
        settings = parts.settings
        if serve and settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token):
            _serve(parts, host, port)
        elif serve:
            out.print(
                "To answer in Slack, set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN "
                "(Socket Mode) and run `ragbot demo` or `ragbot serve` again (README: 'Slack')."
            )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Run the Slack bot: HTTP (POST /slack/events, GET /healthz) and, with SLACK_APP_TOKEN, Socket Mode."""
    with _components() as parts:
        _serve(parts, host, port)


def _serve(parts, host: str, port: int) -> None:
    import uvicorn

    from bot.server import build_service

    service = build_service(parts)
    _ = parts.embedder, parts.pipeline.reranker.get()  # load models before taking traffic
    try:
        service.start_socket_mode()
        if service.app is None:
            modes = "admin only: Slack is not configured, see README 'Slack'"
        else:
            slack = [
                name
                for name, on in (("HTTP", parts.settings.slack_signing_secret), ("Socket Mode", service.socket_mode))
                if on
            ]
            modes = f"Slack over {' + '.join(slack)}, admin"
        err.print(f"ragbot is listening on http://{host}:{port} ({modes}); admin app: http://{host}:{port}/admin/")
        uvicorn.run(service.http, host=host, port=port, log_level="warning")
    finally:
        service.close()


class RetrievalModeOption(str, Enum):
    dense = "dense"
    lexical = "lexical"
    hybrid = "hybrid"


@app.command("eval")
def eval_command(
    eval_set: Annotated[Path | None, typer.Argument(help="JSONL evaluation set (README: 'Evaluation')")] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Rerank with this preset (repeatable)")] = None,
    instruction: Annotated[
        list[str] | None, typer.Option("--instruction", help="Rerank with this instruction (repeatable)")
    ] = None,
    candidates_k: Annotated[int | None, typer.Option(help="Candidates retrieved per question")] = None,
    no_rerank: Annotated[bool, typer.Option("--no-rerank", help="Retrieval only")] = False,
    retrieval: Annotated[
        RetrievalModeOption | None,
        typer.Option(help="Retrieval mode [default: the default preset's, normally hybrid]"),
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    from_logs: Annotated[bool, typer.Option("--from-logs", help="Replay labeled questions from the log")] = False,
    since: Annotated[str, typer.Option(help="With --from-logs: how far back, e.g. 7d, 12h")] = "7d",
) -> None:
    """Measure retrieval and reranking on labeled questions; compare presets or instructions."""
    from evaluation.compare import compare
    from evaluation.dataset import EvalSetError, load_eval_set
    from evaluation.report import LABELS, render_html, to_json
    from evaluation.runner import BASELINE, METRICS, evaluate, summarize

    if (eval_set is None) == (not from_logs):
        raise EvalSetError("Give an evaluation set (ragbot eval SET.jsonl) or --from-logs, not both or neither.")
    items = load_eval_set(eval_set) if eval_set is not None else []
    with _components() as parts:
        pipeline = parts.pipeline
        configs = _eval_configs(pipeline, preset or [], instruction or [], no_rerank)
        reranker = None
        if configs:
            reranker = pipeline.reranker.get()
            if reranker is None:
                raise EvalRerankerError(pipeline.reranker.error)
        default = pipeline.preset_for(None)
        k = candidates_k or default.candidates_k
        with Progress(
            TextColumn("[bold]Evaluating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            if from_logs:
                from evaluation.replay import logged_runs, parse_since

                task = progress.add_task("eval", total=None)
                with parts.sessions() as session:
                    runs = logged_runs(
                        session, parse_since(since), reranker, configs, lambda n: progress.update(task, completed=n)
                    )
                if not runs:
                    raise EvalSetError(f"No labeled rankings in the last {since}: label candidates in the admin app.")
            else:
                task = progress.add_task("eval", total=len(items))

                def own_instruction(item) -> str:
                    return pipeline.preset_for(item.channel, item.preset).instruction

                runs = evaluate(
                    items,
                    pipeline.retriever,
                    reranker,
                    configs,
                    default.collection,
                    k,
                    own_instruction,
                    lambda n: progress.update(task, completed=n),
                    mode=retrieval.value if retrieval else default.retrieval_mode,
                )
    summaries = summarize(runs)
    names = [s.name for s in summaries]
    comparisons = [compare(runs, BASELINE, name) for name in names[1:]]
    if len(names) > 2:
        comparisons.append(compare(runs, names[1], names[2]))
    if as_json:
        sys.stdout.write(json.dumps(to_json(summaries, comparisons, runs), ensure_ascii=False, indent=2) + "\n")
    else:
        from rich.table import Table

        mode = "" if from_logs else f", {retrieval.value if retrieval else default.retrieval_mode} retrieval"
        table = Table(title=f"{len(runs)} questions, {k if not from_logs else 'logged'} candidates each{mode}")
        for column in ("configuration", *(LABELS[m] for m in METRICS), "rerank p50 ms", "rerank p95 ms"):
            table.add_column(column, justify="left" if column == "configuration" else "right")
        for s in summaries:
            table.add_row(
                escape(s.name),
                *(f"{s.means[m]:.3f}" for m in METRICS),
                f"{s.rerank_p50_ms:.0f}",
                f"{s.rerank_p95_ms:.0f}",
            )
        out.print(table)
        for c in comparisons:
            out.print(
                f"{escape(c.b)} vs {escape(c.a)}: {LABELS[c.metric]} {c.mean_difference:+.3f} "
                f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}], {len(c.better)} better / {len(c.worse)} worse, "
                f"sign test p={c.sign_test_p:.3g}"
            )
    if report is not None:
        title = f"ragbot evaluation: {eval_set.name if eval_set else 'replay of labeled questions'}"
        report.write_text(render_html(summaries, comparisons, runs, title), encoding="utf-8")
        err.print(f"Report written to {report}")


class EvalRerankerError(RuntimeError):
    """Reranking configurations were asked for, but the reranker cannot be loaded."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"The reranker could not be loaded ({reason}); run with --no-rerank for retrieval only.")


def _eval_configs(pipeline, presets: list[str], instructions: list[str], no_rerank: bool) -> list:
    from evaluation.runner import EvalConfig

    if no_rerank:
        return []
    configs = []
    from evaluation.dataset import EvalSetError

    for name in presets:
        try:
            snapshot = pipeline.preset_for(None, name)
        except ValueError as exc:
            raise EvalSetError(f"{exc}: see the presets in the admin app, or use --instruction TEXT") from exc
        configs.append(EvalConfig(f"preset {name} v{snapshot.version}", snapshot.instruction))
    for text in instructions:
        configs.append(EvalConfig(f"instruction: {text[:50]}{'…' if len(text) > 50 else ''}", text))
    return configs or [EvalConfig("rerank, each question's preset", per_question=True)]


@app.command("rerank-server")
def rerank_server(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8080,
    model: Annotated[str | None, typer.Option(help="Model id or folder [default: RERANK_MODEL]")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda [default: RERANK_DEVICE]")] = None,
) -> None:
    """Serve the Qwen3 reranker over HTTP: POST /v1/rerank (dynamic batching), GET /healthz, GET /metrics."""
    from bot.settings import get_settings
    from rerank.server import run_rerank_server

    s = get_settings()
    err.print(f"Reranker service on http://{host}:{port}/v1/rerank (model {model or s.rerank_model}; loading…)")
    run_rerank_server(
        model or s.rerank_model,
        device=device or s.rerank_device,
        host=host,
        port=port,
        dtype=s.rerank_dtype,
        batch_tokens=s.rerank_batch_tokens,
        max_length=s.rerank_max_length,
        max_wait_ms=s.rerank_batch_wait_ms,
        max_queue=s.rerank_queue_size,
        max_documents=s.rerank_max_documents,
    )


@admin_app.command("create-user")
def admin_create_user(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[str, typer.Option(help="admin, team_admin or reviewer")],
    team: Annotated[str | None, typer.Option(help="The team whose presets a team_admin edits")] = None,
) -> None:
    """Create an admin-app user; the password comes from a prompt, or RAGBOT_ADMIN_PASSWORD for scripts."""
    import store
    from admin.users import UserError, create_user
    from bot.settings import get_settings

    password = os.environ.get("RAGBOT_ADMIN_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise UserError("No password: set RAGBOT_ADMIN_PASSWORD, or run this in a terminal to be asked for one.")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    url = get_settings().database_url
    engine = store.make_engine(url)
    try:
        store.upgrade_database(engine)
        with store.session_factory(engine).begin() as session:
            user = create_user(session, name, password, role, team)
            out.print(f"Created {user.role} '{user.name}'" + (f" of team '{user.team}'" if user.team else "") + ".")
    finally:
        engine.dispose()


@admin_app.command("serve")
def admin_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8001,
) -> None:
    """Run the admin app on its own (for deployments that split it from the Slack bot)."""
    import uvicorn

    from bot.server import build_admin, create_http_app

    with _components() as parts:
        http = create_http_app(None, build_admin(parts))
        err.print(f"ragbot admin is listening on http://{host}:{port}/admin/")
        uvicorn.run(http, host=host, port=port, log_level="warning")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (DATABASE_URL). Other commands also do this on first use."""
    import store
    from bot.settings import get_settings

    url = get_settings().database_url
    store.upgrade_database(url)
    out.print(f"Database is up to date: {store.mask_url(url)}")


def _quiet_libraries() -> None:
    """Model-loading progress bars and library chatter hide ragbot's own output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def _user_errors() -> tuple[type[BaseException], ...]:
    import pydantic

    import store
    from admin.app import AdminConfigError
    from admin.users import UserError
    from bot.pipeline import QuestionError, RerankRequiredError
    from bot.slack.app import SlackConfigError
    from evaluation.dataset import EvalSetError
    from rerank import RerankerLoadError
    from retrieval.errors import RetrievalError

    return (
        RetrievalError,
        RerankerLoadError,
        RerankRequiredError,
        QuestionError,
        store.DatabaseError,
        SlackConfigError,
        AdminConfigError,
        UserError,
        pydantic.ValidationError,
        EvalSetError,
        EvalRerankerError,
    )


def _describe(exc: BaseException) -> str:
    import pydantic

    if isinstance(exc, pydantic.ValidationError):  # from Settings(): name the environment variables
        problems = [
            f"{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        ]
        return "Invalid configuration: " + "; ".join(problems)
    return str(exc)


def main() -> None:
    """Entry point: known problems print one clear line and exit non-zero, never a traceback."""
    _quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RAGBOT_DEBUG"):
            raise
        if isinstance(exc, _user_errors()):
            err.print(f"[red]Error:[/] {escape(_describe(exc))}")
            sys.exit(1)
        err.print(
            f"[red]Unexpected error:[/] {escape(type(exc).__name__)}: {escape(str(exc))}\n"
            "Run again with RAGBOT_DEBUG=1 to see the traceback, and please report it."
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
