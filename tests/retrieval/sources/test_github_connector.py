"""The GitHub connector against a local server playing GitHub's REST API: a repository that changes between two
syncs, blob shas as versions, files that fail, rate limits (Retry-After, and a spent limit answered with 403),
refused tokens, truncated trees and unknown branches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from retrieval.sources import Changed, Failed, KnownDocument, SourceAuthError, SourceError, Unchanged
from retrieval.sources.github import GitHubConnector
from tests.retrieval.sources.fake_github import FakeGitHub, blob_sha

TOKEN_ENV = "GITHUB_TOKEN"
INSTALL = b"# Install\n\nRun `acme install` on a machine with 4 GB of memory.\n"
FAQ = b"Frequently asked questions\n\nCan I pay yearly? Yes.\n"
PDF = b"%PDF-1.4\n% not really a PDF, carried as bytes\n"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.commit_file("README.md", b"# Handbook\n")
    fake.commit_file("docs/guide/install.md", INSTALL, author="Grace Hopper")
    fake.commit_file("docs/faq.txt", FAQ)
    fake.commit_file("docs/pricing.pdf", PDF)
    fake.commit_file("docs/logo.png", b"\x89PNG\r\n")
    fake.commit_file("src/app.py", b"print('hi')\n")
    yield fake
    fake.close()


def connect(fake: FakeGitHub, sleeps: list[float] | None = None, **kwargs) -> GitHubConnector:
    options = {"path": "docs", "token": fake.token, "token_env": TOKEN_ENV, "api_url": fake.url, **kwargs}
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    return GitHubConnector(fake.repo, sleep=record, **options)


def by_key(items) -> dict[str, object]:
    return {item.meta.key if isinstance(item, Changed) else item.key: item for item in items}


def test_a_repository_that_changes_between_two_syncs(github: FakeGitHub) -> None:
    with connect(github) as connector:
        first = by_key(connector.walk({}))
    assert set(first) == {"docs/guide/install.md", "docs/faq.txt", "docs/pricing.pdf"}  # under docs/, supported
    assert all(isinstance(item, Changed) for item in first.values())
    install = first["docs/guide/install.md"]
    assert install.content == INSTALL and install.name == "install.md"
    assert install.version == blob_sha(INSTALL)
    assert install.meta.url == f"{github.url}/acme/handbook/blob/main/docs/guide/install.md"
    assert install.meta.title == "install"
    assert install.meta.section == ("docs", "guide")
    assert install.meta.author == "Grace Hopper"
    assert install.meta.updated == datetime.fromisoformat(github.commits[("main", "docs/guide/install.md")].date)
    assert install.meta.updated.tzinfo is not None and install.meta.updated.utcoffset() == timezone.utc.utcoffset(None)
    assert first["docs/pricing.pdf"].content == PDF and first["docs/pricing.pdf"].name == "pricing.pdf"
    for logged in github.requests:
        assert logged.headers["authorization"] == f"Bearer {github.token}"
        assert logged.headers["accept"] == "application/vnd.github+json"
        assert logged.headers["x-github-api-version"] == "2022-11-28"
    assert github.requests[1].path == "/repos/acme/handbook/git/trees/main"
    assert github.requests[1].query == {"recursive": ["1"]}
    commit_queries = [logged.query for logged in github.requests if logged.path.endswith("/commits")]
    assert {"path": ["docs/faq.txt"], "sha": ["main"], "per_page": ["1"]} in commit_queries

    github.commit_file("docs/faq.txt", FAQ + b"Can I pay monthly? Also yes.\n")
    github.commit_file("docs/new.md", b"# New\n\nA new page.\n")
    github.delete_file("docs/pricing.pdf")
    known = {key: KnownDocument(key, version=item.version) for key, item in first.items()}
    github.requests.clear()
    with connect(github) as connector:
        second = by_key(connector.walk(known))
    assert set(second) == {"docs/guide/install.md", "docs/faq.txt", "docs/new.md"}  # pricing.pdf deleted: absent
    assert isinstance(second["docs/guide/install.md"], Unchanged)
    assert isinstance(second["docs/faq.txt"], Changed) and b"monthly" in second["docs/faq.txt"].content
    assert isinstance(second["docs/new.md"], Changed) and second["docs/new.md"].meta.section == ("docs",)
    # The unchanged file cost nothing: no blob read of its sha, no commits call for its path.
    assert f"/repos/acme/handbook/git/blobs/{blob_sha(INSTALL)}" not in github.paths()
    assert not any(logged.query.get("path") == ["docs/guide/install.md"] for logged in github.requests)
    assert len([path for path in github.paths() if "/git/blobs/" in path]) == 2


def test_a_file_that_fails_to_fetch_is_failed_and_the_others_go_on(github: FakeGitHub) -> None:
    github.fail(f"/repos/acme/handbook/git/blobs/{blob_sha(FAQ)}", 500)
    with connect(github) as connector:
        items = by_key(connector.walk({}))
    failed = items["docs/faq.txt"]
    assert isinstance(failed, Failed) and "HTTP 500" in failed.reason
    assert failed.url == f"{github.url}/acme/handbook/blob/main/docs/faq.txt"
    assert isinstance(items["docs/guide/install.md"], Changed) and isinstance(items["docs/pricing.pdf"], Changed)


def test_a_retry_after_is_waited_out(github: FakeGitHub) -> None:
    github.fail("/repos/acme/handbook/git/trees/main", 429, headers={"retry-after": "9"}, message="slow down")
    sleeps: list[float] = []
    with connect(github, sleeps) as connector:
        items = list(connector.walk({}))
    assert sleeps == [9.0]
    assert len(items) == 3 and all(isinstance(item, Changed) for item in items)


def test_a_spent_rate_limit_answered_with_403_waits_for_the_reset(github: FakeGitHub) -> None:
    reset = int(time.time()) + 40
    limit = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    github.fail(
        f"/repos/acme/handbook/git/blobs/{blob_sha(INSTALL)}",
        403,
        headers=limit,
        message="API rate limit exceeded for user ID 1.",
    )
    sleeps: list[float] = []
    with connect(github, sleeps) as connector:
        items = by_key(connector.walk({}))
    assert len(sleeps) == 1 and 35 <= sleeps[0] <= 41  # until x-ratelimit-reset, not a refused token
    assert isinstance(items["docs/guide/install.md"], Changed) and items["docs/guide/install.md"].content == INSTALL


def test_a_rate_limit_too_long_to_wait_fails_the_sync_without_blaming_the_token(github: FakeGitHub) -> None:
    limit = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3000)}
    github.fail("/repos/acme/handbook/git/trees/main", 403, headers=limit, message="API rate limit exceeded")
    with connect(github) as connector, pytest.raises(SourceError, match="try the sync later") as raised:
        list(connector.walk({}))
    assert not isinstance(raised.value, SourceAuthError)


def test_a_refused_token_names_its_variable(github: FakeGitHub) -> None:
    with connect(github, token="ghp_revoked") as connector, pytest.raises(SourceAuthError, match=TOKEN_ENV):
        list(connector.walk({}))
    github.fail("/repos/acme/handbook", 403, message="Resource not accessible by personal access token")
    with connect(github) as connector, pytest.raises(SourceAuthError, match=TOKEN_ENV):
        list(connector.walk({}))


def test_a_public_repository_needs_no_token_and_a_private_one_says_which_variable(github: FakeGitHub) -> None:
    with connect(github, token=None) as connector, pytest.raises(SourceError, match=f"token in {TOKEN_ENV}"):
        list(connector.walk({}))
    github.private = False
    github.requests.clear()
    with connect(github, token=None) as connector:
        items = list(connector.walk({}))
    assert len(items) == 3
    assert all("authorization" not in logged.headers for logged in github.requests)


def test_the_default_branch_is_read_when_none_is_given_and_a_missing_branch_is_clear() -> None:
    fake = FakeGitHub(default_branch="trunk")
    try:
        fake.commit_file("docs/a.md", b"# A\n")
        with connect(fake) as connector:
            items = list(connector.walk({}))
        assert [item.meta.url for item in items] == [f"{fake.url}/acme/handbook/blob/trunk/docs/a.md"]
        assert "/repos/acme/handbook/git/trees/trunk" in fake.paths()
        with (
            connect(fake, branch="release/2.0") as connector,
            pytest.raises(SourceError, match=r"no branch .release/2\.0."),
        ):
            list(connector.walk({}))
    finally:
        fake.close()


def test_a_truncated_tree_is_read_folder_by_folder(github: FakeGitHub) -> None:
    github.truncate_recursive_at = 2
    with connect(github) as connector:
        items = by_key(connector.walk({}))
    assert set(items) == {"docs/guide/install.md", "docs/faq.txt", "docs/pricing.pdf"}
    tree_reads = [logged for logged in github.requests if "/git/trees/" in logged.path]
    assert tree_reads[0].query == {"recursive": ["1"]}
    assert all(logged.query == {} for logged in tree_reads[1:])
    assert len(tree_reads) == 4  # the recursive try, then the root, docs/ and docs/guide/ (not src/)


def test_a_repository_name_without_owner_is_refused_clearly() -> None:
    with pytest.raises(SourceError, match="owner/name"):
        GitHubConnector("handbook", token=None, token_env=TOKEN_ENV)
