"""Start-up of the ragbot commands, this checkout against a baseline commit: wall and CPU seconds of whole
processes, as a user starts them.

Commands timed, each in a fresh interpreter through the CLI entry (`bot.cli.main`):

- `--help`: the command line alone;
- `ingest`: a first ingest of a small folder (two pages of `sample_kb/sso`) into an empty store, so it holds
  loading the embedder and embedding a few dozen chunks;
- `ask`: one question on a small collection (all of `sample_kb/sso`, ingested once before), with the default
  reranker id `Qwen/Qwen3-Reranker-0.6B`, which is not in the (empty, private) Hugging Face cache: with
  HF_HUB_OFFLINE=1, so the pure start-up and answering;
- `ask, hub down`: the same without HF_HUB_OFFLINE and with HF_ENDPOINT at a closed local port: a machine that
  cannot reach the hub. The baseline retried for ~23 s there (`rerank 23206 ms` in its timings, 22 warning
  lines); `stderr lines` counts what the user saw besides the answer.

Each tree runs from its own folder with its own PYTHONPATH (the baseline is a `git worktree` of `--baseline`, made
once at `--base-dir`), its own database and store; the two take turns run by run so that load from other processes
falls on both alike. Reported: the median of `--runs` runs, wall and CPU (user + system of the child), and
now/baseline ratios. On a shared CPU the absolute seconds hold only for the machine and the moment (the load
average is printed); the ratios, taken within one run, are what to compare.

    python bench/startup.py
    python bench/startup.py --runs 5 --only help ask
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from bot.cli import main; sys.argv = ['ragbot', *sys.argv[1:]]; main()"
QUESTION = "How do I rotate the SAML certificate?"
CORPUS = ROOT / "sample_kb" / "sso"
INGEST_FILES = ("overview.md", "saml-okta.md")


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    stderr_lines: int


@dataclass
class Tree:
    label: str
    root: Path
    work: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RAGBOT_", "RERANK_", "EMBED_", "QDRANT_", "LLM_", "SLACK_", "HF_"))
            and k not in ("DATABASE_URL", "TRANSFORMERS_OFFLINE", "PYTHONPATH")
        }
        env.update(
            PYTHONPATH=str(self.root),
            DATABASE_URL=f"sqlite:///{self.work / 'ragbot.db'}",
            QDRANT_PATH=str(self.work / "qdrant"),
            RANKING_SPOOL_DIR=str(self.work / "spool"),
            HF_HOME=str(self.work / "hf"),  # an empty cache: the default reranker id is not in it
            TOKENIZERS_PARALLELISM="false",
        )
        env.update(extra)
        return env

    def run(self, args: list[str], env: dict[str, str], timeout: float = 600) -> Run:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", ENTRY, *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: ragbot {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(wall, cpu, len([line for line in done.stderr.splitlines() if line.strip()]))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens here once the socket is closed


def baseline_tree(commit: str, folder: Path) -> Path:
    """A worktree of `commit` at `folder` (made once; never touches this checkout's files)."""
    if not (folder / "bot" / "cli" / "__init__.py").is_file():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit], check=True)
    return folder


def check_imports_from(tree: Tree) -> None:
    """The tree's own code runs (PYTHONPATH before the editable install), not this checkout's."""
    done = subprocess.run(
        [sys.executable, "-c", "import bot; print(bot.__file__)"],
        cwd=tree.root,
        env=tree.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    where = Path(done.stdout.strip()).resolve()
    if tree.root.resolve() not in where.parents:
        raise SystemExit(f"{tree.label}: imports bot from {where}, not from {tree.root}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="606bd9d", help="commit to compare with (default: %(default)s)")
    parser.add_argument("--base-dir", type=Path, default=Path("/tmp/startup-base"), help="its worktree")
    parser.add_argument("--runs", type=int, default=3, help="runs per command and tree (median)")
    parser.add_argument(
        "--only", nargs="+", choices=("help", "ingest", "ask", "ask-hub-down"), help="time only these commands"
    )
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="ragbot-startup-"))
    try:
        trees = [
            Tree("baseline", baseline_tree(options.baseline, options.base_dir), scratch / "baseline"),
            Tree("now", ROOT, scratch / "now"),
        ]
        docs = scratch / "docs"
        shutil.copytree(CORPUS, docs, ignore=shutil.ignore_patterns("*.pdf"))
        small = scratch / "small"
        small.mkdir()
        for name in INGEST_FILES:
            shutil.copy(CORPUS / name, small / name)
        for tree in trees:
            tree.work.mkdir()
            check_imports_from(tree)
            tree.run(["ingest", str(docs)], tree.env(HF_HUB_OFFLINE="1"))  # the collection `ask` searches

        hub_down = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            "help": (["--help"], {}),
            "ingest": (["ingest", str(small)], {"HF_HUB_OFFLINE": "1"}),
            "ask": (["ask", QUESTION], {"HF_HUB_OFFLINE": "1"}),
            "ask-hub-down": (["ask", QUESTION], hub_down),
        }
        chosen = options.only or list(commands)
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
        print(f"baseline {options.baseline} ({options.base_dir}) vs now ({ROOT}); median of {options.runs} runs\n")
        results: dict[tuple[str, str], list[Run]] = {}
        for name in chosen:
            args, extra = commands[name]
            for n in range(options.runs):
                for tree in trees:
                    env = tree.env(**extra)
                    if name == "ingest":  # a first ingest each time: a fresh store and database
                        fresh = tree.work / f"ingest-{n}"
                        env.update(QDRANT_PATH=str(fresh / "qdrant"), DATABASE_URL=f"sqlite:///{fresh}.db")
                    results.setdefault((name, tree.label), []).append(tree.run(args, env))

        header = f"{'command':<14}{'baseline wall':>15}{'now wall':>10}{'ratio':>7}"
        header += f"{'baseline cpu':>14}{'now cpu':>9}{'ratio':>7}{'stderr lines':>15}"
        print(header)
        for name in chosen:
            base, now = results[(name, "baseline")], results[(name, "now")]
            bw, nw = (statistics.median(r.wall_s for r in runs) for runs in (base, now))
            bc, nc = (statistics.median(r.cpu_s for r in runs) for runs in (base, now))
            lines = f"{max(r.stderr_lines for r in base)} -> {max(r.stderr_lines for r in now)}"
            print(
                f"{name:<14}{bw:>13.2f} s{nw:>8.2f} s{nw / bw:>7.2f}{bc:>12.2f} s{nc:>7.2f} s{nc / bc:>7.2f}{lines:>15}"
            )
        print(f"\nload average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
