"""Cutting documents by characters before they are tokenized, so what a document costs follows the model's
`max_length`, not the document's size.

Tokenizers read a whole string before they truncate: a 20 MB document becomes millions of tokens (with their
offsets and strings) only to keep the first few thousand. A token stands for at most as many characters as its
vocabulary entry is long (a byte-level entry has one symbol per byte, and a character is at least one byte), so
a document cut to `char_budget(tokens, longest_token_chars(tokenizer))` characters still yields more than
`tokens` tokens, and those first tokens are the ones the whole document would get: the cut changes only the
tokens of the word it falls in, and `SLACK_TOKENS` more are read past the limit to keep that word out of the
kept ones. (Exceptions are tokenizers with an unknown token that swallows a long word, e.g. WordPiece's
`[UNK]`: there a document is read up to the budget and no further.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["SLACK_TOKENS", "char_budget", "longest_token_chars"]

# Tokens read past the limit, so that the word a cut falls in lies beyond the tokens kept.
SLACK_TOKENS = 32


def longest_token_chars(tokenizer: Any) -> int:
    """The most characters one token of `tokenizer` stands for: the length of its longest vocabulary entry
    (added tokens such as `<|im_end|>` included). Computed once per engine."""
    vocab = tokenizer.get_vocab()
    return max((len(entry) for entry in vocab), default=1) or 1


def char_budget(tokens: int, longest_token: int) -> int:
    """Characters that always hold more than `tokens` + `SLACK_TOKENS` tokens: a document cut there keeps the
    first `tokens` tokens of the whole one."""
    return (int(tokens) + SLACK_TOKENS + 1) * max(1, int(longest_token))
