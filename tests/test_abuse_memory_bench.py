"""`bench/abuse_memory.py` runs against this checkout: every oversized unauthenticated request it sends is
refused (413 or 401), and the processes' peak growth stays far below what was sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "abuse_memory.py"


def test_the_bench_measures_refusals_on_this_checkout(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    args = ["--before", "none", "--slack-mb", "8", "--rerank-mb", "2", "--logins", "3", "--json", str(rows_file)]
    run = subprocess.run(
        [sys.executable, str(BENCH), *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {(row["process"], row["scenario"]): row for row in json.loads(rows_file.read_text())}
    assert set(rows) == {
        ("serve", "slack-body"),
        ("serve", "slack-chunked"),
        ("serve", "sign-in"),
        ("rerank-server", "rerank-doc"),
        ("rerank-server", "rerank-doc-keyed"),
    }
    assert rows[("serve", "slack-body")]["answers"].startswith("4x HTTP/1.1 413")
    assert rows[("serve", "slack-chunked")]["answers"].startswith("1x HTTP/1.1 401")
    assert rows[("serve", "sign-in")]["answers"].startswith("3x HTTP/1.1 413")
    assert rows[("rerank-server", "rerank-doc")]["answers"].startswith("1x HTTP/1.1 401")
    assert " 400 " in rows[("rerank-server", "rerank-doc-keyed")]["answers"]
    # 32 MB of Slack bodies at once: the process grows by a small fraction of it
    assert rows[("serve", "slack-body")]["peak_growth_mib"] < 16
    assert "Traceback" not in run.stdout
