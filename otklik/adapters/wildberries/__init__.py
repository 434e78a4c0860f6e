"""Wildberries seller API adapter: an async client, payload schemas, token inspection, rate limits.

See docs/wildberries.md. The fake server for tests and offline demos is `otklik.testing.fake_wb`.
"""

from otklik.adapters.wildberries.client import (
    CARDS_MAX_LIMIT,
    FEEDBACKS_MAX_SKIP,
    FEEDBACKS_MAX_TAKE,
    WBClient,
)
from otklik.adapters.wildberries.errors import (
    WBAnswerNotConfirmed,
    WBAuthError,
    WBBadRequest,
    WBError,
    WBFilePending,
    WBFileRejected,
    WBForbidden,
    WBInvalidSignature,
    WBNotFound,
    WBProtocolError,
    WBRateLimited,
    WBUnavailable,
)
from otklik.adapters.wildberries.hosts import WBHosts
from otklik.adapters.wildberries.ratelimit import (
    BASE_TOKEN_LIMITS,
    DEFAULT_LIMITS,
    RateLimit,
    RateLimiters,
    RetryPolicy,
    TokenBucket,
)
from otklik.adapters.wildberries.schemas import (
    BarcodeMatch,
    Card,
    CardBarcodes,
    CardsCursor,
    CardSize,
    CardsPage,
    Feedback,
    FeedbacksPage,
    Ping,
    UnansweredCount,
)
from otklik.adapters.wildberries.token import (
    TokenInfo,
    TokenProblem,
    TokenType,
    explain_missing,
    inspect_token,
    token_problems,
)

__all__ = [
    "BASE_TOKEN_LIMITS",
    "CARDS_MAX_LIMIT",
    "DEFAULT_LIMITS",
    "FEEDBACKS_MAX_SKIP",
    "FEEDBACKS_MAX_TAKE",
    "BarcodeMatch",
    "Card",
    "CardBarcodes",
    "CardSize",
    "CardsCursor",
    "CardsPage",
    "Feedback",
    "FeedbacksPage",
    "Ping",
    "RateLimit",
    "RateLimiters",
    "RetryPolicy",
    "TokenBucket",
    "TokenInfo",
    "TokenProblem",
    "TokenType",
    "UnansweredCount",
    "WBAnswerNotConfirmed",
    "WBAuthError",
    "WBBadRequest",
    "WBClient",
    "WBError",
    "WBFilePending",
    "WBFileRejected",
    "WBForbidden",
    "WBHosts",
    "WBInvalidSignature",
    "WBNotFound",
    "WBProtocolError",
    "WBRateLimited",
    "WBUnavailable",
    "explain_missing",
    "inspect_token",
    "token_problems",
]
