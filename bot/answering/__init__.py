"""The answering core: the one place a question is answered, and the typed API the Slack app, the admin app,
the CLI and the evaluation use. It imports `retrieval`, `rerank` and `store`, and nothing that calls it."""

from bot.answering.conversation import Turn
from bot.answering.errors import (
    AnswerError,
    AnswerFailed,
    CompareError,
    QuestionError,
    RerankerUnavailableError,
    RerankRequiredError,
)
from bot.answering.presets import Presets, instruction_or_default
from bot.answering.progress import AnswerProgress
from bot.answering.questions import MAX_QUESTION_CHARS, validate_question
from bot.answering.ranking import RerankerSlot
from bot.answering.record import RankingRecorder
from bot.answering.results import (
    AnswerStatus,
    AskResult,
    Citation,
    CompareRow,
    Comparison,
    PresetSnapshot,
    RankedCandidate,
    RerankerStatus,
    RerankStatus,
    leg_fields,
)
from bot.answering.service import AnswerService
from bot.answering.writers import AnswerWriter, ExtractiveAnswerer, LLMAnswerer
from retrieval import RETRIEVAL_MODES, Candidate

__all__ = [
    "MAX_QUESTION_CHARS",
    "RETRIEVAL_MODES",
    "AnswerError",
    "AnswerFailed",
    "AnswerProgress",
    "AnswerService",
    "AnswerStatus",
    "AnswerWriter",
    "AskResult",
    "Candidate",
    "Citation",
    "CompareError",
    "CompareRow",
    "Comparison",
    "ExtractiveAnswerer",
    "LLMAnswerer",
    "PresetSnapshot",
    "Presets",
    "QuestionError",
    "RankedCandidate",
    "RankingRecorder",
    "RerankRequiredError",
    "RerankStatus",
    "RerankerSlot",
    "RerankerStatus",
    "RerankerUnavailableError",
    "Turn",
    "instruction_or_default",
    "leg_fields",
    "validate_question",
]
