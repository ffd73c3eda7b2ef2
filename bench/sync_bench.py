"""`ragbot sync` on a web source of 1,000 pages served on 127.0.0.1: the first sync against a re-sync with nothing
changed, which must fetch conditionally (If-None-Match / If-Modified-Since, answered 304) and embed nothing.

Two ways a site is read, each synced twice into a fresh embedded store and SQLite database through the same code
as `ragbot sync` (`bot.app.sources.run_sync`, default embedders):
- `crawl`: from the start page, which links every page; the re-sync asks for each page conditionally and follows
  the links it stored, since a 304 carries no body;
- `sitemap`: a sitemap with each page's <lastmod>; the re-sync reads the sitemap and asks for no page at all.

Printed per mode: seconds, requests to pages, 304s, embedder calls and chunks written, for both syncs, and the
first sync's time over the re-sync's (a ratio measured in one run; absolute times hold only for this machine).
The site answers at once and the pace between requests is 0 (`--delay`): the figures are ragbot's own cost, not a
polite crawl's (1 s a request by default, so 1,000 pages take 17 minutes on a public site whatever ragbot does).

    python bench/sync_bench.py                     # 1,000 pages, both modes
    python bench/sync_bench.py --pages 200 --modes crawl

Measured 2026-12-07 on a 2-core CPU with nothing else running (1,000 pages, default embedders): crawl, first sync
66.2 s (1,036 chunks in 10 embed calls), re-sync 1.1 s (1,001 conditional requests, 1,001 304s, nothing embedded):
60x; sitemap with lastmod, first sync 68.3 s, re-sync 0.2 s (no page requested): 321x. Embedding is most of a
first sync on a CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import store  # noqa: E402
from bot.app import Components  # noqa: E402
from bot.app.sources import run_sync  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.retrieval.sources.web_site import WebSite, html  # noqa: E402

WORDS = (
    "account admin api audit backup billing browser cache certificate channel cluster compliance connector contract "
    "customer dashboard data deployment device discount domain email encryption endpoint enterprise export feature "
    "firewall gateway import incident integration invoice license limit login migration mobile network okta order "
    "partner password payment permission plan policy pricing privacy quota region renewal report request retention "
    "role saml schedule security server session sso storage subscription support team tenant token trial upgrade "
    "user vault webhook workflow workspace"
).split()
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def site_pages(count: int, seed: int = 7) -> dict[str, tuple[str, datetime]]:
    """`count` pages of about 150 words each, distinct, and a start page that links them all."""
    rng = random.Random(seed)
    pages: dict[str, tuple[str, datetime]] = {}
    for number in range(count):
        sentences = [" ".join(rng.choices(WORDS, k=15)).capitalize() + "." for _ in range(10)]
        title = f"Guide {number}: {' '.join(rng.choices(WORDS, k=3))}"
        pages[f"/docs/p{number}.html"] = (html(title, body=" ".join(sentences)), T0 + timedelta(minutes=number))
    pages["/docs/"] = (html("All guides", links=[f"/docs/p{number}.html" for number in range(count)]), T0)
    return pages


def counting(encode: Callable[..., Any], calls: list[int]) -> Callable[..., Any]:
    def encode_counted(texts: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return encode(texts, *args, **kwargs)

    return encode_counted


def run_mode(mode: str, pages: int, delay: float) -> list[dict[str, Any]]:
    sitemap = "flat" if mode == "sitemap" else None
    with (
        tempfile.TemporaryDirectory(prefix="ragbot-sync-bench-") as folder,
        WebSite(site_pages(pages), sitemap=sitemap, sitemap_lastmod=True, sitemap_paths=None) as site,
    ):
        if sitemap:
            site.sitemap_paths = [path for path in site.pages if path != "/docs/"]
        settings = Settings(
            _env_file=None,
            qdrant_path=str(Path(folder) / "qdrant"),
            database_url=f"sqlite:///{Path(folder) / 'ragbot.db'}",
        )
        rows = []
        with Components(settings) as parts:
            calls = [0]
            for embedder in parts.embedders:  # loaded before the clock starts
                embedder.encode = counting(embedder.encode, calls)  # type: ignore[method-assign]
            url = site.url("/sitemap.xml" if sitemap else "/docs/")
            with parts.sessions.begin() as session:
                store.add_source(
                    session, name="site", kind="web", settings={"url": url, "delay": delay}, collection="bench"
                )
            for label in ("first sync", "re-sync, nothing changed"):
                site.reset_counts()
                calls[0] = 0
                started = time.perf_counter()
                report = run_sync(parts, "site")
                seconds = time.perf_counter() - started
                assert report.status == "ok", report.error
                rows.append(
                    {
                        "mode": mode,
                        "sync": label,
                        "seconds": seconds,
                        "documents": report.documents,
                        "page requests": site.page_requests(),
                        "304s": sum(site.not_modified.values()),
                        "embed calls": calls[0],
                        "chunks written": report.chunks,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--modes", nargs="+", choices=("crawl", "sitemap"), default=["crawl", "sitemap"])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between requests (the source's --delay)")
    args = parser.parse_args(argv)
    columns = ("mode", "sync", "seconds", "documents", "page requests", "304s", "embed calls", "chunks written")
    print(" | ".join(columns))
    for mode in args.modes:
        first, again = run_mode(mode, args.pages, args.delay)
        for row in (first, again):
            print(" | ".join(f"{row[c]:.1f}" if c == "seconds" else str(row[c]) for c in columns), flush=True)
        print(f"{mode}: the first sync took {first['seconds'] / again['seconds']:.1f}x the re-sync's time", flush=True)


if __name__ == "__main__":
    main()
