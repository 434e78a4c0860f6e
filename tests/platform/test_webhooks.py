"""Signed event webhooks: emit in the caller's transaction, delivery with retries against a real receiver on
loopback, ordering per subject, concurrent workers, give-up, resend, 410. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from otklik.adapters.db.engine import raw_write
from otklik.adapters.db.models import EventLog, WebhookDelivery, WebhookEndpoint, WebhookEvent
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.conversations.repo import RawWriter
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.webhooks import SignatureError, emit, verify_signature
from otklik.platform.webhooks.service import add_endpoint, list_deliveries, resend, send_test, set_active
from otklik.platform.webhooks.signing import signature, signed_headers
from otklik.platform.webhooks.worker import WebhookDispatcher, backoff
from otklik.testing.fake_webhook_receiver import FakeWebhookReceiver
from tests.conftest import make_settings

SECRET = "whsec_test-secret-0123456789"
FAST = {
    "webhook_backoff_base_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_timeout_seconds": 0.5,
    "webhook_poll_seconds": 0.05,
    "webhook_lease_seconds": 30.0,
}


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    otk = Otklik.build(make_settings(tmp_path, db_url, **FAST))
    await otk.start()
    try:
        yield otk
    finally:
        await otk.close()


@pytest.fixture
async def receiver() -> AsyncIterator[FakeWebhookReceiver]:
    async with FakeWebhookReceiver(SECRET) as fake:
        yield fake


async def _endpoint(app: Otklik, url: str, events: str = "order.*") -> int:
    return (await add_endpoint(app.db, app.vault, url, events, secret=SECRET, actor="test")).id


async def _emit(app: Otklik, event_type: str = "order.confirmed", subject: str | None = None, **data: object) -> str:
    async with app.db.write() as session:
        return await emit(session, event_type, data or {"number": "A-1"}, now=utcnow(), subject=subject)


async def _deliveries(app: Otklik) -> list[WebhookDelivery]:
    async with app.db.read() as session:
        return list((await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


async def _drain(dispatcher: WebhookDispatcher, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "deliveries did not finish in time"
        if not await dispatcher.run_once():
            await asyncio.sleep(0.03)


# --- signing ---------------------------------------------------------------------------------------


def test_the_signature_verifies_and_tampering_does_not() -> None:
    body = b'{"id":"e1","type":"order.paid","data":{"total":"10.00"}}'
    now = 1_760_000_000
    headers = signed_headers(SECRET, body, event_id="e1", event_type="order.paid", timestamp=now)
    assert verify_signature(SECRET, headers, body, now=now) == now
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify_signature(SECRET, lower, body, now=now + 299) == now  # header names in any case
    assert headers["X-Otklik-Signature"] == "v1=" + signature(SECRET, now, body)
    assert headers["Idempotency-Key"] == "e1"
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(SECRET, headers, body.replace(b"10.00", b"99.00"), now=now)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature("whsec_another-secret-000000", headers, body, now=now)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(SECRET, headers, body, now=now + 301)  # a replay five minutes later
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(SECRET, {"X-Otklik-Timestamp": str(now)}, body, now=now)
    forged_ts = dict(headers, **{"X-Otklik-Timestamp": str(now + 1)})
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(SECRET, forged_ts, body, now=now + 1)  # the timestamp is signed too
    rotated = dict(headers, **{"X-Otklik-Signature": "v1=deadbeef, " + headers["X-Otklik-Signature"]})
    assert verify_signature(SECRET, rotated, body, now=now) == now
    for hostile in ("v1=ümlaut", "v0=" + signature(SECRET, now, body), "", "v1=" + "0" * 10_000):
        with pytest.raises(SignatureError):
            verify_signature(SECRET, dict(headers, **{"X-Otklik-Signature": hostile}), body, now=now)
    for bad_ts in ("-5", "1e9", "١٢٣", "9" * 40):
        with pytest.raises(SignatureError, match="timestamp|missing"):
            verify_signature(SECRET, dict(headers, **{"X-Otklik-Timestamp": bad_ts}), body, now=now)


def test_backoff_doubles_is_capped_and_jittered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite+aiosqlite:///x.db")
    waits = [backoff(n, settings) for n in range(1, 12)]
    assert 24 <= waits[0] <= 36 and 48 <= waits[1] <= 72  # 30 s, then 60 s, ±20 %
    assert all(w <= 3600 * 1.2 for w in waits) and waits[-1] >= 3600 * 0.8
    assert len({round(backoff(3, settings), 6) for _ in range(20)}) > 1  # jitter


# --- emit ------------------------------------------------------------------------------------------


async def test_delivered_signed_with_the_envelope_and_headers(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url, "order.confirmed,order.paid")
    event_id = await _emit(app, number="A-17", total=Decimal("58900.00"), at=datetime(2026, 12, 5, 12, tzinfo=UTC))
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    got = receiver.requests[0]
    assert got.signature_ok and got.answered == 200
    envelope = receiver.accepted[event_id]
    assert envelope["id"] == event_id and envelope["type"] == "order.confirmed"
    assert envelope["data"] == {"number": "A-17", "total": "58900.00", "at": "2026-12-05T12:00:00.000Z"}
    assert envelope["created_at"].endswith("Z")
    assert got.headers["x-otklik-event-id"] == event_id == got.headers["idempotency-key"]
    assert got.headers["x-otklik-event-type"] == "order.confirmed" and got.headers["x-otklik-attempt"] == "1"
    assert got.headers["content-type"] == "application/json"
    [row] = await _deliveries(app)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200) and row.delivered_at
    # an event type nobody subscribes to writes nothing at all
    await _emit(app, "order.cancelled")
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


async def test_rollback_of_the_emitting_transaction_sends_nothing(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url, "*")
    with pytest.raises(RuntimeError):
        async with app.db.write() as session:
            await emit(session, "order.confirmed", {"number": "A-1"}, now=utcnow())
            raise RuntimeError("the order could not be saved")
    assert await app.webhooks.run_once() == 0
    assert await _deliveries(app) == [] and receiver.requests == []


async def test_emit_inside_a_hot_path_transaction(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    """A quick action's or a reaction's `ctx.tx` (plain SQL on the driver) works as well as a session."""
    await _endpoint(app, receiver.url, "conversation.*")
    async with raw_write(app.db) as tx:
        event_id = await emit(
            RawWriter(tx), "conversation.handoff", {"conversation_id": 7}, now=utcnow(), subject="c:7"
        )
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[event_id]["data"] == {"conversation_id": 7}


async def test_emit_refuses_what_it_cannot_send(app: Otklik) -> None:
    await _endpoint(app, "http://127.0.0.1:9/x", "*")
    async with app.db.write() as session:
        for bad in ("Order.Confirmed", "order", "order..paid", "order.paid ", "x" * 81, "order.*"):
            with pytest.raises(ValueError, match="event type"):
                await emit(session, bad, {}, now=utcnow())
        with pytest.raises(TypeError, match="bytes"):
            await emit(session, "order.paid", {"blob": b"\x00"}, now=utcnow())
        with pytest.raises(ValueError):
            await emit(session, "order.paid", {"x": float("nan")}, now=utcnow())
        with pytest.raises(ValueError, match="KiB"):
            await emit(session, "order.paid", {"x": "é" * 200_000}, now=utcnow())
        with pytest.raises(ValueError, match="subject"):
            await emit(session, "order.paid", {}, now=utcnow(), subject="a\nb")
    assert await _deliveries(app) == []


async def test_patterns_choose_the_endpoints(app: Otklik) -> None:
    exact = await _endpoint(app, "http://127.0.0.1:9/exact", "order.paid")
    prefix = await _endpoint(app, "http://127.0.0.1:9/prefix", "order.*")
    every = await _endpoint(app, "http://127.0.0.1:9/all", "*")
    off = await _endpoint(app, "http://127.0.0.1:9/off", "*")
    await set_active(app.db, off, False, actor="test")
    await _emit(app, "order.paid")
    await _emit(app, "order.confirmed")
    await _emit(app, "orders.paid")  # not under "order."
    rows = await _deliveries(app)
    by_endpoint: dict[int, int] = {}
    for row in rows:
        by_endpoint[row.endpoint_id] = by_endpoint.get(row.endpoint_id, 0) + 1
    assert by_endpoint == {exact: 1, prefix: 2, every: 3}


# --- delivery and retries ----------------------------------------------------------------------------


async def test_receiver_down_for_a_while_then_everything_arrives_once(
    app: Otklik, receiver: FakeWebhookReceiver
) -> None:
    await _endpoint(app, receiver.url)
    await receiver.down()
    ids = [await _emit(app, number=f"A-{n}") for n in range(5)]
    assert await app.webhooks.run_once() == 5
    rows = await _deliveries(app)
    assert {r.status for r in rows} == {"pending"} and all(r.attempts == 1 for r in rows)
    assert all("ConnectError" in (r.last_error or "") and r.last_status_code is None for r in rows)
    assert all(r.next_attempt_at > r.last_attempt_at for r in rows)  # backed off
    problems = await list_deliveries(app.db, problems=True)
    assert len(problems) == 5  # failing ones are visible while they are retried
    await asyncio.sleep(0.3)
    await app.webhooks.run_once()  # still down: a second failed attempt
    await receiver.up()
    receiver.fail(500)
    receiver.fail(429, retry_after=0.1)
    receiver.fail(503)
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 5)
    await asyncio.sleep(0.3)
    assert await app.webhooks.run_once() == 0
    assert sorted(receiver.accepted) == sorted(ids) and receiver.duplicates == 0 and receiver.bad_signatures == 0
    assert {r.status for r in await _deliveries(app)} == {"delivered"}
    attempts_per_event: dict[str, list[str]] = {}
    for request in receiver.requests:
        attempts_per_event.setdefault(request.event_id or "", []).append(request.headers["x-otklik-attempt"])
    assert all(a[-1] in {"3", "4", "5"} for a in attempts_per_event.values() if len(a) > 1)


async def test_timeouts_and_slow_answers(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url)
    receiver.delay(2.0)  # longer than webhook_timeout_seconds (0.5): a timeout
    receiver.delay(0.2)  # slow but in time
    event_id = await _emit(app)
    await app.webhooks.run_once()
    [row] = await _deliveries(app)
    assert row.status == "pending" and "timeout" in (row.last_error or "")
    await _drain(app.webhooks, lambda: len(receiver.requests) >= 2 and receiver.requests[1].answered == 200)
    [row] = await _deliveries(app)
    assert row.status == "delivered" and row.attempts == 2
    assert [r.event_id for r in receiver.requests] == [event_id, event_id]
    assert receiver.duplicates == 1  # the timed-out attempt was processed by the receiver: deduped by the id


async def test_a_receiver_that_trickles_its_answer_is_cut_at_the_attempts_timeout(app: Otklik) -> None:
    """httpx's timeout is per read: a byte every 0.2 s never trips it. The attempt as a whole is bounded, so a
    delivery cannot outlive its lease and be sent again by another worker while this one still waits."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 200\r\n\r\n")
        try:
            for _ in range(200):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await _endpoint(app, f"http://127.0.0.1:{port}/hook")
        await _emit(app)
        started = time.monotonic()
        await app.webhooks.run_once()
        took = time.monotonic() - started
    finally:
        server.close()
    [row] = await _deliveries(app)
    assert row.status == "pending" and "timeout after 0.5 s" in (row.last_error or "")
    assert took < 20, "the attempt waited for the whole trickle (40 s)"


def test_the_lease_must_outlive_an_attempt(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OTKLIK_WEBHOOK_LEASE_SECONDS must be at least"):
        make_settings(tmp_path, "sqlite+aiosqlite://", webhook_timeout_seconds=60.0, webhook_lease_seconds=60.0)


async def test_redelivery_after_an_error_answer_has_the_same_event_id(
    app: Otklik, receiver: FakeWebhookReceiver
) -> None:
    await _endpoint(app, receiver.url)
    receiver.accept_then_fail(502)
    event_id = await _emit(app)
    await _drain(app.webhooks, lambda: len(receiver.requests) == 2)
    first, second = receiver.requests
    assert first.event_id == second.event_id == event_id and first.body == second.body
    assert first.headers["x-otklik-timestamp"] <= second.headers["x-otklik-timestamp"]
    assert receiver.duplicates == 1 and list(receiver.accepted) == [event_id]


async def test_events_of_one_subject_arrive_in_order(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url)
    receiver.fail(500, times=2)  # the first event fails twice; the second must wait for it
    confirmed = await _emit(app, "order.confirmed", subject="order:A-1")
    paid = await _emit(app, "order.paid", subject="order:A-1")
    other = await _emit(app, "order.confirmed", subject="order:B-2")
    await app.webhooks.run_once()
    sent = [r.event_id for r in receiver.requests]
    assert confirmed in sent and other in sent and paid not in sent
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 3)
    assert receiver.order.index(confirmed) < receiver.order.index(paid)


async def test_gives_up_visibly_and_resend_delivers(tmp_path: Path, db_url: str) -> None:
    otk = Otklik.build(make_settings(tmp_path, db_url, **FAST, webhook_retry_hours=0.0003))  # ~1 s of retries
    await otk.start()
    try:
        async with FakeWebhookReceiver(SECRET) as receiver:
            await _endpoint(otk, receiver.url)
            receiver.fail(500, times=1000)
            event_id = await _emit(otk)
            rows: list[WebhookDelivery] = []

            async def given_up() -> bool:
                rows[:] = await _deliveries(otk)
                return rows[0].status == "gave_up"

            deadline = time.monotonic() + 15
            while not await given_up():
                assert time.monotonic() < deadline
                if not await otk.webhooks.run_once():
                    await asyncio.sleep(0.03)
            assert rows[0].attempts >= 2 and rows[0].last_status_code == 500
            assert "scripted 500" in (rows[0].last_error or "")
            [shown] = await list_deliveries(otk.db, problems=True)
            assert shown.status == "gave_up" and shown.event_id == event_id
            await asyncio.sleep(0.1)
            assert await otk.webhooks.run_once() == 0  # given up means no more attempts

            receiver._script.clear()
            assert await resend(otk.db, event_id, actor="test", retry_hours=1) == 1
            await _drain(otk.webhooks, lambda: len(receiver.accepted) == 1)
            [row] = await _deliveries(otk)
            assert row.status == "delivered" and row.attempts == 1
            assert receiver.requests[-1].event_id == event_id
            # resending a delivered one sends it again with the same id (receivers dedupe)
            assert await resend(otk.db, str(row.id), actor="test", retry_hours=1) == 1
            await _drain(otk.webhooks, lambda: receiver.duplicates == 1)
            async with otk.db.read() as session:
                kinds = (await session.execute(select(EventLog.kind).where(EventLog.kind == "webhook.resend"))).all()
            assert len(kinds) == 2
    finally:
        await otk.close()


async def test_resend_refuses_bad_references(app: Otklik) -> None:
    for bad in ("", "abc", "-1", "1; DROP TABLE x", "0x10", "9" * 40):
        with pytest.raises(InvalidInput):
            await resend(app.db, bad, actor="test", retry_hours=1)
    with pytest.raises(NotFound):
        await resend(app.db, "999999", actor="test", retry_hours=1)
    with pytest.raises(NotFound):
        await resend(app.db, "7a1c5a7e-0000-4000-8000-000000000000", actor="test", retry_hours=1)
    endpoint = await _endpoint(app, "http://127.0.0.1:9/x")
    await _emit(app)
    await app.webhooks.claim()  # now `sending`
    [row] = await _deliveries(app)
    with pytest.raises(Conflict):
        await resend(app.db, str(row.id), actor="test", retry_hours=1)
    with pytest.raises(NotFound):
        await send_test(app.db, endpoint + 1000, actor="test")


async def test_410_gone_fails_and_disables_the_endpoint(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    endpoint = await _endpoint(app, receiver.url)
    receiver.fail(410)
    await _emit(app)
    await app.webhooks.run_once()
    [row] = await _deliveries(app)
    assert row.status == "failed" and row.last_status_code == 410
    async with app.db.read() as session:
        ep = await session.get(WebhookEndpoint, endpoint)
        audited = await session.scalar(select(EventLog).where(EventLog.kind == "webhook.disable"))
    assert ep is not None and not ep.active and "410" in (ep.disabled_reason or "")
    assert audited is not None and audited.actor == "webhooks"
    await _emit(app)  # nothing is queued for a disabled endpoint
    assert len(await _deliveries(app)) == 1


async def test_a_disabled_endpoint_keeps_its_pending_deliveries(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    endpoint = await _endpoint(app, receiver.url)
    event_id = await _emit(app)
    await set_active(app.db, endpoint, False, actor="test")
    assert await app.webhooks.run_once() == 0
    await set_active(app.db, endpoint, True, actor="test")
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    assert list(receiver.accepted) == [event_id]


async def test_test_event(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    endpoint = await _endpoint(app, receiver.url, "order.paid")
    event_id = await send_test(app.db, endpoint, actor="owner")
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[event_id]["type"] == "webhook.test"


# --- several workers, crashes -------------------------------------------------------------------------


async def test_two_concurrent_dispatchers_send_each_delivery_once(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url, "*")
    second = await _endpoint(app, receiver.url, "order.paid")
    ids = []
    for n in range(40):
        ids.append(await _emit(app, "order.paid" if n % 2 else "order.confirmed", number=f"N-{n}"))
    expected = 40 + 20
    patient = app.settings.model_copy(update={"webhook_timeout_seconds": 30.0})  # a busy machine is no failure here
    workers = [WebhookDispatcher(app.db, app.vault, patient, worker_id=f"w{i}") for i in range(2)]
    receiver.delay(0.05, times=10)  # slow answers while both claim
    try:
        handled = [0, 0]

        async def work(i: int) -> None:
            deadline = time.monotonic() + 20
            while sum(1 for r in receiver.requests if r.answered == 200) < expected:
                assert time.monotonic() < deadline
                n = await workers[i].run_once()
                handled[i] += n
                if not n:
                    await asyncio.sleep(0.01)

        await asyncio.gather(work(0), work(1))
    finally:
        for w in workers:
            await w.aclose()
    assert len(receiver.requests) == expected  # not one POST more: no delivery was claimed twice
    assert sorted(receiver.accepted) == sorted(ids) and receiver.duplicates == 20  # the "*" and "order.paid" copies
    assert handled[0] + handled[1] == expected
    async with app.db.read() as session:
        per_second = await session.scalar(
            select(func.count()).where(WebhookDelivery.endpoint_id == second, WebhookDelivery.status == "delivered")
        )
    assert per_second == 20


async def test_a_worker_that_died_mid_send_is_taken_over(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url)
    event_id = await _emit(app)
    dead = WebhookDispatcher(app.db, app.vault, app.settings, worker_id="dead")
    [claimed] = await dead.claim()
    assert await app.webhooks.run_once() == 0  # claimed by the dead worker: not sent twice
    async with app.db.write() as session:  # its claim runs out
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    assert list(receiver.accepted) == [event_id]
    from otklik.platform.webhooks.worker import Outcome

    assert await dead.record(claimed, Outcome(200, None)) == "lost"  # the old claim cannot overwrite
    [row] = await _deliveries(app)
    assert row.status == "delivered" and row.attempts == 2
    await dead.aclose()


async def test_the_worker_job_runs_in_the_container(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url)
    app.start_worker()
    assert "webhooks" in app.supervisor.names()
    await _emit(app)
    await receiver.wait_for(1, timeout=10)


async def test_purge_keeps_recent_and_unfinished_rows(app: Otklik) -> None:
    await _endpoint(app, "http://127.0.0.1:9/x")
    await _emit(app)
    await _emit(app)
    rows = await _deliveries(app)
    old = utcnow() - timedelta(days=40)
    async with app.db.write() as session:
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == rows[0].id).values(status="delivered", updated_at=old)
        )
        await session.execute(update(WebhookEvent).values(created_at=old))
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == rows[1].id).values(updated_at=old))
    assert await app.webhooks.purge() == 1
    left = await _deliveries(app)
    assert [r.id for r in left] == [rows[1].id]  # pending stays however old
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


async def test_payload_is_stored_as_sent(app: Otklik, receiver: FakeWebhookReceiver) -> None:
    await _endpoint(app, receiver.url)
    event_id = await _emit(app, text="¿Recibieron mi pago? ✓", n=3, nested={"a": [1, 2.5, None, True]})
    await _drain(app.webhooks, lambda: len(receiver.accepted) == 1)
    body = receiver.requests[0].body
    assert "¿Recibieron".encode() in body  # UTF-8, not \u escapes
    async with app.db.read() as session:
        stored = await session.scalar(select(WebhookEvent.payload).where(WebhookEvent.event_id == event_id))
    assert json.loads(body) == stored
