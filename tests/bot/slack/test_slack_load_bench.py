"""`bench/slack_load.py` runs: a short burst through the real Slack path loses and repeats nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "slack_load.py"


def test_a_short_burst_is_answered_once_each(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("slack_load", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    slack = bench.SlackStandIn()
    parts, (server, service), url = bench.start_bot(f"sqlite:///{tmp_path / 'b.db'}", 2, 0.05, slack, tmp_path)
    try:
        result = bench.run_rate(url, rate=20, seconds=2, slack=slack, parts=parts, start=0)
    finally:
        server.should_exit = True
        service.close()
        parts.close()
        slack.server.shutdown()
    assert (result["sent"], result["http_200"], result["lost"], result["duplicated"]) == (40, 40, 0, 0)
    assert result["ack_p50_ms"] > 0 and result["max_queue"] >= 0
