"""Which exceptions are the user's to fix (one clear line, exit 1) and how each is worded: never with a
credential from a configured URL (`redact.mask_secrets`), since terminals and CI logs are shared."""

from __future__ import annotations

from typing import Any

from redact import mask_secrets


def unwrap(exc: BaseException) -> BaseException:
    """The original failure behind an `AnswerFailed` (the index went away, a missing collection), else `exc`."""
    from bot.answering import AnswerFailed

    while isinstance(exc, AnswerFailed) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def is_user_error(exc: BaseException) -> bool:
    """ragbot's own typed errors, settings that do not validate, a model or a collection that is missing."""
    import pydantic

    import store
    from admin.app import AdminConfigError
    from admin.users import UserError
    from bot.answering import AnswerError, AnswerFailed
    from bot.app.sources import SourceBusyError, SourceNotFoundError
    from bot.cli.eval import EvalRerankerError
    from bot.slack.app import SlackConfigError
    from evaluation.dataset import EvalSetError
    from rerank import RerankerLoadError
    from retrieval import RetrievalError

    known = (
        AnswerError,
        RetrievalError,
        RerankerLoadError,
        store.DatabaseError,
        SlackConfigError,
        AdminConfigError,
        UserError,
        pydantic.ValidationError,
        EvalSetError,
        EvalRerankerError,
        SourceNotFoundError,
        SourceBusyError,
        store.SourceExistsError,
    )
    return isinstance(exc, known) and not isinstance(exc, AnswerFailed)


def describe(exc: BaseException) -> str:
    """One line for the terminal, credentials masked."""
    import pydantic

    if isinstance(exc, pydantic.ValidationError):  # from Settings(): name the environment variables
        return mask_secrets("Invalid configuration: " + "; ".join(_problem(e) for e in exc.errors()))
    return mask_secrets(str(exc))


def _problem(error: Any) -> str:
    """One setting's problem as `NAME='value': what to do`; a check across settings (no location) names its
    variables in its own message. pydantic's "Value error, " prefix says nothing to a user."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"{'_'.join(str(p) for p in error['loc']).upper()}={error.get('input')!r}: {message}"
