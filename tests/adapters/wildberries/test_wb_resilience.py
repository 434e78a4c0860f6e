"""Rate limits, retries, auth failures and malformed responses, against the fake WB server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from otklik.adapters.wildberries import (
    RateLimit,
    RateLimiters,
    RetryPolicy,
    WBAuthError,
    WBBadRequest,
    WBClient,
    WBError,
    WBForbidden,
    WBHosts,
    WBProtocolError,
    WBRateLimited,
    WBUnavailable,
)
from otklik.testing.fake_wb import FakeWB, make_token, sample_cards, sample_feedbacks

MakeClient = Callable[..., WBClient]
FEEDBACK = "/api/v1/feedback"


@pytest.fixture
def one_feedback(fake: FakeWB) -> str:
    fake.add_feedbacks(sample_feedbacks(1))
    return next(iter(fake.feedbacks))


# --- 429 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"retry": 1}, {"retry": None, "retry_after": 1}, {"retry": None, "reset": 1}],
    ids=["X-Ratelimit-Retry", "Retry-After", "X-Ratelimit-Reset"],
)
async def test_429_wait_from_headers_is_honoured_then_succeeds(
    fake: FakeWB, client: WBClient, one_feedback: str, headers: dict[str, float | None]
) -> None:
    fake.rate_limit_next(1, **headers)  # type: ignore[arg-type]
    started = time.monotonic()
    feedback = await client.get_feedback(one_feedback)
    elapsed = time.monotonic() - started
    assert feedback.id == one_feedback
    first, second = fake.calls
    assert (first.status, second.status) == (429, 200)
    assert 1.0 <= second.at - first.at < 3.0, second.at - first.at  # not before WB said; not much later
    assert 1.0 <= elapsed < 3.5


async def test_429_until_attempts_run_out_raises_rate_limited(
    fake: FakeWB, make_client: MakeClient, one_feedback: str
) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, backoff_base=0.01))
    fake.rate_limit_next(10, retry=0.05)
    with pytest.raises(WBRateLimited) as info:
        await client.get_feedback(one_feedback)
    assert len(fake.calls) == 3 and info.value.retry_after == pytest.approx(0.05)
    assert "повторим" in info.value.user_message().lower()


async def test_429_asking_for_a_long_wait_raises_at_once_with_retry_after(
    fake: FakeWB, client: WBClient, one_feedback: str
) -> None:
    fake.rate_limit_next(1, retry=60)  # FAST_RETRY.max_retry_after is 5 s
    started = time.monotonic()
    with pytest.raises(WBRateLimited) as info:
        await client.get_feedback(one_feedback)
    assert info.value.retry_after == 60 and time.monotonic() - started < 0.5
    assert len(fake.calls) == 1
    assert 55 < client.limiters.bucket("feedbacks").blocked_for() <= 60  # the whole group now waits


async def test_answer_is_retried_after_429(fake: FakeWB, client: WBClient, one_feedback: str) -> None:
    fake.rate_limit_next(1, retry=0.1, path="/api/v1/feedbacks/answer")
    await client.answer_feedback(one_feedback, "Спасибо!")
    assert [c.status for c in fake.calls_to("/api/v1/feedbacks/answer")] == [429, 204]
    assert fake.feedbacks[one_feedback].answer == "Спасибо!"


# --- client-side limiter -----------------------------------------------------------------------------


async def test_feedbacks_calls_are_spaced_to_the_documented_limit(
    fake: FakeWB, make_client: MakeClient, one_feedback: str
) -> None:
    client = make_client(limiters=RateLimiters())  # documented limits: 3 req/s, burst 6
    await asyncio.gather(*(client.get_feedback(one_feedback) for _ in range(12)))
    times = [c.at for c in fake.calls]
    assert len(times) == 12 and all(c.status == 200 for c in fake.calls)
    tolerance = 0.08  # arrival jitter on a loaded machine
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            # requests in any window of length t: at most burst + rate * t
            assert j - i + 1 <= 6 + 3 * (times[j] - times[i] + tolerance), (i, j, times[j] - times[i])
    assert times[-1] - times[0] >= 2.0 - tolerance  # (12 - 6) / 3 s
    assert times[-1] - times[0] < 4.0


async def test_limits_hold_against_a_server_that_enforces_them(make_client: MakeClient) -> None:
    async with FakeWB(enforce_limits=True) as strict:
        strict.add_cards(sample_cards(3))
        client = make_client(strict.token, hosts=WBHosts.single(strict.url), limiters=RateLimiters())
        await asyncio.gather(*(client.list_cards(limit=10) for _ in range(7)))
        statuses = [c.status for c in strict.calls]
        # Without the client-side bucket, 7 concurrent calls against burst 5 draw at least two 429s; with
        # it, none (one at most if arrival jitter on a loaded machine beats the 10 % headroom).
        assert statuses.count(200) == 7 and statuses.count(429) <= 1, statuses


async def test_a_server_enforcing_limits_is_obeyed_by_retrying(make_client: MakeClient) -> None:
    limits = {"content": RateLimit(rate=2, burst=1)}
    async with FakeWB(enforce_limits=limits) as strict:
        client = make_client(strict.token, hosts=WBHosts.single(strict.url))  # no client-side limit
        await asyncio.gather(*(client.list_cards(limit=10) for _ in range(3)))
        statuses = [c.status for c in strict.calls]
        assert statuses.count(200) == 3 and 429 in statuses


# --- 5xx, timeouts, network --------------------------------------------------------------------------


async def test_5xx_twice_then_success(fake: FakeWB, client: WBClient, one_feedback: str) -> None:
    fake.fail_next(2, status=503)
    assert (await client.get_feedback(one_feedback)).id == one_feedback
    assert [c.status for c in fake.calls] == [503, 503, 200]


async def test_persistent_outage_raises_unavailable(fake: FakeWB, client: WBClient) -> None:
    fake.fail_next(100, status=500)
    with pytest.raises(WBUnavailable) as info:
        await client.list_cards()
    assert len(fake.calls) == 4 and not info.value.maybe_applied and info.value.status == 500
    assert "недоступно" in info.value.user_message() and "unavailable" in info.value.user_message("en")


async def test_slow_response_times_out_and_is_retried(fake: FakeWB, make_client: MakeClient, one_feedback: str) -> None:
    client = make_client(timeout=0.3)
    fake.slow_next(1, delay=1.5)
    assert (await client.get_feedback(one_feedback)).id == one_feedback
    assert len(fake.calls) == 2


async def test_persistent_timeouts_raise_unavailable(fake: FakeWB, make_client: MakeClient, one_feedback: str) -> None:
    client = make_client(timeout=0.2, retry=RetryPolicy(max_attempts=2, backoff_base=0.01))
    fake.slow_next(5, delay=1.0)
    with pytest.raises(WBUnavailable, match="ReadTimeout"):
        await client.get_feedback(one_feedback)
    assert len(fake.calls) == 2


async def test_answer_is_not_retried_after_5xx_or_timeout(
    fake: FakeWB, make_client: MakeClient, one_feedback: str
) -> None:
    client = make_client(timeout=0.3)
    fake.fail_next(1, status=500, path="/api/v1/feedbacks/answer")
    with pytest.raises(WBUnavailable) as info:
        await client.answer_feedback(one_feedback, "Спасибо!")
    assert info.value.maybe_applied
    fake.slow_next(1, delay=1.0, path="/api/v1/feedbacks/answer")
    with pytest.raises(WBUnavailable, match="may have been applied"):
        await client.answer_feedback(one_feedback, "Спасибо!")
    assert len(fake.calls_to("/api/v1/feedbacks/answer")) == 2  # one per call, no retries


async def test_connection_refused_is_retried_then_unavailable(make_client: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = make_client(hosts=WBHosts.single(f"http://127.0.0.1:{port}"))
    with pytest.raises(WBUnavailable, match="cannot connect") as info:
        await client.answer_feedback("id", "Спасибо!")  # nothing was sent: safe to retry even the answer
    assert not info.value.maybe_applied and "4 attempts" in str(info.value)


# --- auth --------------------------------------------------------------------------------------------


async def test_unknown_token_gets_401_auth_error_without_retries(fake: FakeWB, make_client: MakeClient) -> None:
    client = make_client(make_token())  # well-formed, not registered: revoked or another seller's
    with pytest.raises(WBAuthError) as info:
        await client.ping()
    assert info.value.status == 401 and "not valid" in info.value.reason
    assert len(fake.calls) == 1
    assert "токен" in info.value.user_message()


async def test_expired_and_malformed_tokens_get_401(fake: FakeWB, make_client: MakeClient) -> None:
    expired = fake.allow(make_token(expires_at=datetime.now(UTC) - timedelta(days=1)))
    with pytest.raises(WBAuthError, match="expired"):
        await make_client(expired).count_unanswered_feedbacks()
    with pytest.raises(WBAuthError, match="malformed"):
        await make_client("not-a-jwt").count_unanswered_feedbacks()


async def test_missing_category_is_forbidden_with_the_reason(fake: FakeWB, make_client: MakeClient) -> None:
    client = make_client(fake.allow(make_token(categories=["content"])))
    with pytest.raises(WBForbidden) as info:
        await client.count_unanswered_feedbacks()
    # WB documents the feedbacks' 403 as the data/error envelope with "Ошибка авторизации"
    assert info.value.status == 403 and info.value.reason == "Ошибка авторизации"
    assert isinstance(info.value, WBAuthError)


@pytest.mark.parametrize("scheme", ["bearer", "raw"])
async def test_token_goes_in_the_authorization_header(fake: FakeWB, make_client: MakeClient, scheme: str) -> None:
    client = make_client(auth_scheme=scheme)
    assert (await client.ping()).status == "OK"
    expected = f"Bearer {fake.token}" if scheme == "bearer" else fake.token
    assert fake.calls[0].authorization == expected and fake.calls[0].path == "/ping"


async def test_the_bare_token_is_the_default(fake: FakeWB, make_client: MakeClient) -> None:
    """WB's OpenAPI security scheme is an apiKey in `Authorization`: the token itself, no `Bearer`."""
    client = make_client()
    await client.ping()
    assert fake.calls[0].authorization == fake.token
    assert fake.token not in repr(client)


# --- malformed responses -----------------------------------------------------------------------------


async def test_invalid_json_is_a_clear_protocol_error(fake: FakeWB, client: WBClient, one_feedback: str) -> None:
    fake.respond_next(1, body="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
    with pytest.raises(WBProtocolError, match="non-JSON response.*text/html.*502 Bad Gateway"):
        await client.get_feedback(one_feedback)


async def test_missing_fields_are_a_clear_protocol_error(fake: FakeWB, client: WBClient) -> None:
    fake.respond_next(1, body={"data": {"feedbacks": [{"text": "без id"}]}, "error": False})
    with pytest.raises(WBProtocolError, match=r"feedbacks\.0\.id: Field required"):
        await client.list_feedbacks(is_answered=False, take=10)


async def test_missing_envelope_and_error_flag(fake: FakeWB, client: WBClient) -> None:
    fake.respond_next(1, body={"feedbacks": []})
    with pytest.raises(WBProtocolError, match="no `data` envelope"):
        await client.list_feedbacks(is_answered=False, take=10)
    fake.respond_next(1, body={"data": None, "error": True, "errorText": "что-то пошло не так"})
    with pytest.raises(WBBadRequest, match="что-то пошло не так"):
        await client.count_unanswered_feedbacks()


async def test_cards_without_cursor_and_wrong_count_type(fake: FakeWB, client: WBClient) -> None:
    fake.respond_next(1, body={"cards": []})
    with pytest.raises(WBProtocolError, match="cursor: Field required"):
        await client.list_cards()
    fake.respond_next(1, body={"data": "много", "error": False})
    with pytest.raises(WBProtocolError, match="expected an integer"):
        await client.count_feedbacks()
    fake.respond_next(1, body=[1, 2, 3])
    with pytest.raises(WBError):
        await client.ping()
