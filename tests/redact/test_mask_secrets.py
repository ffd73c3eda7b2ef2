"""`redact.mask_secrets`: what counts as a credential in a URL inside a text, and that the rest of the text,
which says where and what failed, is kept."""

from __future__ import annotations

import pytest

from redact import mask_secrets
from store import mask_url


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "Reranker at http://user:s3cret@127.0.0.1:9/v1/rerank is unavailable",
            "Reranker at http://user:***@127.0.0.1:9/v1/rerank is unavailable",
        ),
        ("https://ghp_s3cret@github.com/org/repo", "https://***@github.com/org/repo"),  # a lone token is the secret
        ("clone https://u:p%40s3cret@host/x", "clone https://u:***@host/x"),
        ("https://u:p@s3cret@host:6333/", "https://u:***@host:6333/"),  # an unencoded @: the last one ends it
        ("'http://u:s3cret@qdrant:6333'", "'http://u:***@qdrant:6333'"),  # quoted by repr()
        ("<https://u:s3cret@h/p|the docs>", "<https://u:***@h/p|the docs>"),  # Slack's link markup
        ("GET http://h/v1?api_key=s3cret&q=sso", "GET http://h/v1?api_key=***&q=sso"),
        ("http://h/?x=1&access_token=s3cret#top", "http://h/?x=1&access_token=***#top"),
        ("https://h/?apiKey=s3cret;Password=s3cret", "https://h/?apiKey=***;Password=***"),
        ("https://b.s3.example/o?X-Amz-Credential=s3cret&X-Amz-Signature=s3cret", None),
        ("https://h/?client_secret=s3cret&sig=s3cret&pwd=s3cret", "https://h/?client_secret=***&sig=***&pwd=***"),
    ],
)
def test_credentials_in_urls_are_masked(text: str, masked: str | None) -> None:
    result = mask_secrets(text)
    assert "s3cret" not in result
    if masked is not None:
        assert result == masked


@pytest.mark.parametrize(
    "text",
    [
        "Connection refused",
        "write to bob@example.com about https://example.com/a?b=c&page=2",
        "http://qdrant:6333 and http://[::1]:8080/v1/rerank?top_n=3",
        "?keyword=sso&token=",  # an empty value has nothing to hide
        "",
    ],
)
def test_text_without_credentials_is_left_as_it_was(text: str) -> None:
    assert mask_secrets(text) == text


def test_masking_twice_changes_nothing_more() -> None:
    once = mask_secrets("http://u:s3cret@h/?token=s3cret")
    assert mask_secrets(once) == once == "http://u:***@h/?token=***"


def test_database_urls_mask_the_password_and_a_password_in_the_query() -> None:
    assert mask_url("postgresql+psycopg://bob:hunter2@db:5432/ragbot") == "postgresql+psycopg://bob:***@db:5432/ragbot"
    assert "hunter2" not in mask_url("postgresql+psycopg://db/ragbot?user=bob&password=hunter2")
