"""The `/v1/rerank` wire format: pydantic models for the request, the response and the error body.

Validation is declared on `RerankRequest`; the per-app limits (`RequestLimits`: documents per request,
characters per query, instruction, document and request) come in through pydantic's validation context, so one
model serves apps with different settings:

    RerankRequest.model_validate(payload, context=RequestLimits(max_documents=50).context())

A limit missing from the context takes its default (`DEFAULT_LIMITS`). `describe_validation_error` turns a
`ValidationError` into the one message a client sees, naming the field ("'documents[3]' must be a string (or
{"text": string}), not a number"); `is_request_too_large` tells the one error that is a 413, not a 400.

The character limits are also where the body limit comes from (`RequestLimits.max_body_bytes`), so a body is
refused while it streams in, before it is parsed, and the limits stay in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "DEFAULT_LIMITS",
    "ErrorBody",
    "ErrorDetail",
    "RequestLimits",
    "RerankDocument",
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RerankUsage",
    "describe_validation_error",
    "is_request_too_large",
]

# JSON bytes one character may take: `\uXXXX` for any escaped character of the Basic Multilingual Plane (UTF-8
# itself takes at most 4). A client that escapes characters beyond it (`\ud83d\ude00`, 12 bytes for one
# character) can meet the body limit before the character limit.
_JSON_BYTES_PER_CHAR = 6
# Room for the JSON around the texts: per document (`{"text":""},`, whitespace) and per body (other fields).
_JSON_BYTES_PER_DOCUMENT = 64
_JSON_BYTES_PER_BODY = 64 * 1024


@dataclass(frozen=True)
class RequestLimits:
    """What one /v1/rerank request may send: documents, and characters per field and in all. `max_body_bytes`
    is derived from them (the largest JSON body a request within the limits can take), so the body limit
    never disagrees with the character limits."""

    max_documents: int = 1000
    max_query_chars: int = 4000
    max_instruction_chars: int = 2000
    max_document_chars: int = 50_000
    max_request_chars: int = 2_000_000

    @property
    def max_body_bytes(self) -> int:
        return (
            _JSON_BYTES_PER_CHAR * self.max_request_chars
            + _JSON_BYTES_PER_DOCUMENT * self.max_documents
            + _JSON_BYTES_PER_BODY
        )

    def context(self) -> dict[str, int]:
        """The validation context `RerankRequest.model_validate` reads its limits from."""
        return asdict(self)


DEFAULT_LIMITS: dict[str, int] = RequestLimits().context()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _limit(info: ValidationInfo, name: str) -> int:
    context = info.context if isinstance(info.context, dict) else {}
    return int(context.get(name, DEFAULT_LIMITS[name]))


def _document_text(value: Any) -> str:
    """A document is a string or a `{"text": string}` object (the Cohere / Jina form); both become the string."""
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        value = value["text"]
    if not isinstance(value, str):
        raise PydanticCustomError(
            "document_type", 'must be a string (or {"text": string}), not {kind}', {"kind": _json_type(value)}
        )
    return value


def _document_within_limit(value: str, info: ValidationInfo) -> str:
    limit = _limit(info, "max_document_chars")
    if len(value) > limit:
        raise _too_long(len(value), limit)
    return value


DocumentText = Annotated[str, BeforeValidator(_document_text), AfterValidator(_document_within_limit)]


def _too_long(length: int, limit: int) -> PydanticCustomError:
    return PydanticCustomError(
        "too_long_for_limit", "is {length} characters long; the limit is {limit}", {"length": length, "limit": limit}
    )


class RerankRequest(BaseModel):
    """The body of POST /v1/rerank. Strict types: a number is not a string, a boolean is not an integer.

    `documents` are the texts, whichever form they came in. `top_n` absent means every document; larger than
    the documents, it means every document too. `instruction` blank or absent means the model card's default.
    `model` is accepted and not checked (one model per server). Unknown fields are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")

    model: str | None = None
    query: str
    documents: list[DocumentText] = Field(min_length=1)
    top_n: int | None = Field(default=None, ge=1)
    instruction: str | None = None
    return_documents: bool | None = None

    @field_validator("query")
    @classmethod
    def _query_within_limits(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be empty")
        limit = _limit(info, "max_query_chars")
        if len(value) > limit:
            raise _too_long(len(value), limit)
        return value

    @field_validator("documents", mode="before")
    @classmethod
    def _not_too_many_documents(cls, value: Any, info: ValidationInfo) -> Any:
        # before the items are validated: an oversized list is refused without reading it
        limit = _limit(info, "max_documents")
        if isinstance(value, list) and len(value) > limit:
            raise PydanticCustomError(
                "too_many", "has {count} entries; the limit is {limit}", {"count": len(value), "limit": limit}
            )
        return value

    @field_validator("instruction")
    @classmethod
    def _instruction_within_limits(cls, value: str | None, info: ValidationInfo) -> str | None:
        limit = _limit(info, "max_instruction_chars")
        if value is not None and len(value) > limit:
            raise _too_long(len(value), limit)
        return value

    @model_validator(mode="after")
    def _request_within_limit(self, info: ValidationInfo) -> RerankRequest:
        # after the fields: each is within its own limit, so this adds up at most max_documents lengths
        limit = _limit(info, "max_request_chars")
        total = len(self.query) + len(self.instruction or "") + sum(len(d) for d in self.documents)
        if total > limit:
            raise PydanticCustomError(
                "request_too_large",
                "the query, instruction and documents together are {total} characters long; the limit is {limit}",
                {"total": total, "limit": limit},
            )
        return self


class RerankDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    """One scored document; `document` is set only when the request asked for `return_documents`."""

    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(BaseModel):
    """`total_tokens`: the templated sequences the engine scored (prefix + truncated body + suffix each)."""

    total_tokens: int


class RerankResponse(BaseModel):
    """`results` best score first (ties in input order), at most `top_n` of them."""

    model: str
    results: list[RerankResult]
    usage: RerankUsage

    def to_json(self) -> dict[str, Any]:
        """The JSON body, with `document` left out of results that do not carry one."""
        return self.model_dump(exclude_none=True)


class ErrorDetail(BaseModel):
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error response: `{"error": {"message", "type"}}`."""

    error: ErrorDetail


# Messages for pydantic's own error types, after the quoted field name.
_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "list_type": "must be a list of strings",
    "too_short": "must not be empty",
}


# Error types the validators above raise, already worded.
_OWN_TYPES = {"blank", "document_type", "too_long_for_limit", "too_many", "request_too_large"}


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def describe_validation_error(exc: ValidationError) -> str:
    """One message for a client: the first error, naming its field (`'documents[3]' must be ...`)."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "request_too_large":
        return str(error["msg"])
    if not loc:
        return "the request body must be a JSON object"
    if kind == "greater_than_equal":
        message = f"must be at least {error['ctx']['ge']}, not {error['input']}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind in _OWN_TYPES:
        message = error["msg"]
    else:
        message = f"is invalid ({error['msg']})"
    return f"'{_field_name(loc)}' {message}"


def is_request_too_large(exc: ValidationError) -> bool:
    """Whether the error `describe_validation_error` describes is the request's total size (a 413)."""
    return exc.errors(include_url=False)[0]["type"] == "request_too_large"
