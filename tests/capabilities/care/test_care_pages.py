"""Care admin pages over the real app (SQLite and PostgreSQL) with the fake WB server: the incidents
dashboard (numbers, filters, charts, CSV), review insights with "sync now", and the reply queue (guardrails,
approve + post + re-read, failures and retry, audit), with the role checks."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import EventLog
from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.bootstrap import Otklik
from otklik.capabilities.care.classify import ReviewClassifier
from otklik.capabilities.care.incidents import IncidentInput, record_incident
from otklik.capabilities.care.models import WBReviewReply
from otklik.capabilities.care.replies import create_drafts
from otklik.capabilities.care.reviews import import_feedbacks
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.platform.users import Role
from otklik.testing.fake_wb import FakeFeedback, FakeWB
from tests.capabilities.care.conftest import seller_cards
from tests.capabilities.care.test_incidents import conversations
from tests.conftest import make_settings

PACK = Path(__file__).resolve().parents[3] / "otklik" / "packs" / "care-ru"
TODAY = datetime.now(UTC).date()
NOON = datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def classifier() -> ReviewClassifier:
    return ReviewClassifier.for_pack(PACK)


@pytest.fixture
async def fake_wb() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        server.add_cards(seller_cards())
        yield server


@pytest.fixture
async def otklik(tmp_path: Path, db_url: str, fake_wb: FakeWB) -> AsyncIterator[Otklik]:
    """Overrides the shared fixture: every WB call goes to the fake server (`OTKLIK_WB_API_URL`)."""
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def account_id(otklik: Otklik, fake_wb: FakeWB) -> int:
    account, _problems = await add_wb_account(otklik.db, otklik.vault, fake_wb.token)
    return account


def k(html: str, key: str) -> str:
    match = re.search(rf'data-k="{key}">([^<]*)<', html)
    assert match, f"no tile {key}"
    return match.group(1)


def bars(html: str, chart: str) -> dict[str, int]:
    svg = re.search(rf'<svg[^>]*data-testid="{chart}".*?</svg>', html, re.S)
    assert svg, f"no chart {chart}"
    return {key: int(v) for key, v in re.findall(r'<g class="bar" data-key="([^"]*)" data-value="(\d+)"', svg.group(0))}


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


async def seed_incidents(otklik: Otklik) -> None:
    account, conv = await conversations(otklik, 5)
    cases = [  # (category, outcome, product, rating, phrase, needs_check, days ago)
        ("wrong_item", "resolved_by_bot", "123456789", 5, "прислали не тот размер", False, 2),
        ("wrong_item", "handed_off", "123456789", 3, "пришёл не тот размер", True, 3),
        ("defective_item", "resolved_by_bot", "234567890", 4, "флакон треснул <script>alert(1)</script>", False, 9),
        ("side_effect", "unresolved", "=cmd|'/C calc'!A0", 1, '=HYPERLINK("http://evil")', False, 9),
        ("delivery_issue", "resolved_by_bot", "", None, "долго везут", False, 45),
    ]
    for conversation_id, (category, outcome, product, rating, phrase, needs, ago) in zip(conv, cases, strict=True):
        data = IncidentInput(conversation_id, account, "case-1", category, outcome, product, rating=rating,
                             phrase=phrase, needs_check=needs)  # fmt: skip
        async with otklik.db.write() as session:
            await record_incident(session, data, NOON - timedelta(days=ago))


async def test_the_incident_dashboard_shows_the_seeded_numbers_and_filters(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await seed_incidents(otklik)
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get("/admin/care/incidents")  # default: the last 30 days
    assert page.status_code == 200
    html = page.text
    assert (k(html, "total"), k(html, "bot_share"), k(html, "average_rating"), k(html, "needs_check")) == (
        "4", "50.0%", "3.25", "1",
    )  # fmt: skip
    assert bars(html, "chart-category") == {"wrong_item": 2, "defective_item": 1, "side_effect": 1}
    assert bars(html, "chart-outcome") == {"resolved_by_bot": 2, "handed_off": 1, "unresolved": 1}
    assert bars(html, "chart-ratings") == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    assert bars(html, "chart-product")["123456789"] == 2
    series = re.search(r'<svg[^>]*data-testid="chart-series".*?</svg>', html, re.S)
    assert series and sum(int(n) for n in re.findall(r'data-total="(\d+)"', series.group(0))) == 4
    assert "Гель-смазка разогревающая" not in html or "123456789" in html  # titles come from the card cache
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # escaped
    assert len(re.findall(r"data-incident=", html)) == 4
    assert "размер" in re.search(r'data-testid="phrases".*?</ol>', html, re.S).group(0)  # type: ignore[union-attr]

    longer = await analyst.http.get("/admin/care/incidents", params={"from": day(-60), "to": day(0), "bucket": "week"})
    assert k(longer.text, "total") == "5" and 'data-key="delivery_issue"' in longer.text
    only = await analyst.http.get("/admin/care/incidents", params={"category": "wrong_item"})
    assert k(only.text, "total") == "2" and len(re.findall(r'data-category="wrong_item"', only.text)) == 2
    checks = await analyst.http.get("/admin/care/incidents", params={"needs_check": "1"})
    assert len(re.findall(r"data-incident=", checks.text)) == 1
    product = await analyst.http.get("/admin/care/incidents", params={"product": "234567890"})
    assert k(product.text, "total") == "1"
    empty = await analyst.http.get("/admin/care/incidents", params={"from": day(-400), "to": day(-300)})
    assert empty.status_code == 200 and k(empty.text, "total") == "0" and 'data-testid="no-incidents"' in empty.text


async def test_the_incident_csv_is_an_injection_safe_attachment(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await seed_incidents(otklik)
    moderator = await as_role(Role.MODERATOR)
    response = await moderator.http.get("/admin/care/incidents.csv", params={"from": day(-60), "to": day(0)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"incidents-{day(-60)}-{day(0)}.csv" in disposition
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["id", "created_at", "category"] and len(rows) == 6
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]  # a spreadsheet runs none of them
    assert '\'=HYPERLINK("http://evil")' in cells and "'=cmd|'/C calc'!A0" in cells
    one = await moderator.http.get("/admin/care/incidents.csv", params={"category": "wrong_item"})
    assert len(one.text.strip().splitlines()) == 3


BAD_QUERIES = [
    ({"from": "garbage"}, "from"),
    ({"from": "2026-13-45"}, "from"),
    ({"to": "2026-02-30"}, "to"),
    ({"from": day(0), "to": day(-5)}, "starts after it ends"),
    ({"from": day(-3650), "to": day(0)}, "too long"),
    ({"from": "1900-01-01", "to": "1900-01-02"}, "between"),
    ({"from": day(-500), "to": day(0), "bucket": "day"}, "by week or by month"),
    ({"bucket": "hour"}, "bucket"),
    ({"category": "<img src=x onerror=alert(1)>"}, "category"),
    ({"needs_check": "maybe"}, "needs_check"),
    ({"page": "-1"}, "page"),
    ({"page": "9" * 40}, "page"),
    ({"product": "x" * 5000}, "product"),
]


async def test_bad_periods_and_filters_get_a_clear_422(otklik: Otklik, as_role, account_id: int) -> None:  # type: ignore[no-untyped-def]
    await seed_incidents(otklik)
    analyst = await as_role(Role.ANALYST)
    for params, message in BAD_QUERIES:
        page = await analyst.http.get("/admin/care/incidents", params=params)
        assert page.status_code == 422, params
        assert message in page.text and 'data-testid="errors"' in page.text, params
        assert "<img src=x" not in page.text  # the typed value is shown escaped, if at all
        export = await analyst.http.get(
            "/admin/care/incidents.csv", params=params, headers={"accept": "application/json"}
        )
        assert export.status_code == 422 and message in export.json()["detail"], params
    for params in ({"bucket": "year"}, {"from": "x"}, {"nm_id": "12ab"}, {"account": "0"}, {"category": "nope"}):
        reviews = await analyst.http.get("/admin/care/reviews", params=params)
        assert reviews.status_code == 422 and 'data-testid="errors"' in reviews.text, params
        assert (await analyst.http.get("/admin/care/reviews.csv", params=params)).status_code == 422
    assert (await analyst.http.get("/admin/care/replies", params={"account": "x"})).status_code == 422
    ok = await analyst.http.get("/admin/care/incidents")  # nothing broke
    assert ok.status_code == 200 and k(ok.text, "total") == "4"


def review(fid: str, stars: int, text: str, *, days_ago: float, nm_id: int = 123456789, **kw: object) -> FakeFeedback:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    return FakeFeedback(id=fid, nm_id=nm_id, text=text, product_valuation=stars, created_date=created,
                        product_name="Гель разогревающий" if nm_id == 123456789 else "Масло массажное", **kw)  # type: ignore[arg-type]  # fmt: skip


def reviews() -> list[FakeFeedback]:
    """Fresh objects each time: the fake server mutates them (answers)."""
    return [
        review("fb-1", 1, "Пришёл не тот товар, заказывала другой размер", days_ago=3),
        review("fb-2", 2, "Флакон пришёл треснутый, брак", days_ago=10),
        review("fb-3", 1, "Ужасный запах химии", days_ago=20, nm_id=234567890),
        review("fb-4", 5, "Всё отлично, спасибо", days_ago=5),
        review("fb-5", 2, '=HYPERLINK("http://evil") коробка мятая', days_ago=4),
        review("fb-6", 1, "старый отзыв, брак", days_ago=200),
    ]


async def wait_sync(http, account: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for _ in range(300):
        body = (await http.get("/admin/care/reviews/sync-status")).json()
        (state,) = [a for a in body["accounts"] if a["id"] == account]
        if not state["running"]:
            return state  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("the sync did not finish")


async def test_review_insights_with_sync_now_and_csv(otklik: Otklik, as_role, account_id: int, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    fake_wb.add_feedbacks(reviews())
    analyst, admin = await as_role(Role.ANALYST), await as_role(Role.ADMIN)
    page = await analyst.http.get("/admin/care/reviews")
    assert page.status_code == 200 and k(page.text, "total") == "0" and "sync-now" not in page.text
    assert (await analyst.post("/admin/care/reviews/sync", {"account_id": str(account_id)})).status_code == 403

    fake_wb.slow_next(1, delay=1.0, path="/content/v2/get/cards/list")  # keeps the first run busy for a second
    started = await admin.post("/admin/care/reviews/sync", {"account_id": str(account_id)})
    assert started.status_code == 303 and "notice=sync_started" in started.headers["location"]
    again = await admin.post("/admin/care/reviews/sync", {"account_id": str(account_id)})
    assert again.status_code == 409 and "already running" in again.text
    assert (await admin.post("/admin/care/reviews/sync", {"account_id": "999"})).status_code == 422
    state = await wait_sync(admin.http, account_id)
    assert state["last_ok_at"] and not state["last_error"]

    html = (await analyst.http.get("/admin/care/reviews")).text  # last 90 days
    assert (k(html, "total"), k(html, "negative")) == ("5", "4")
    assert bars(html, "chart-category") == {"wrong_item": 1, "defective_item": 1, "smell": 1, "packaging": 1}
    assert 'data-testid="chart-series"' in html and 'data-testid="matrix"' in html
    assert "123456789 · Гель разогревающий" in html
    assert 'data-feedback="fb-2"' in html  # an example review
    drill = await analyst.http.get("/admin/care/reviews", params={"category": "smell"})
    assert 'data-testid="drill"' in drill.text and 'data-feedback="fb-3"' in drill.text
    product = await analyst.http.get("/admin/care/reviews", params={"nm_id": "234567890"})
    assert k(product.text, "negative") == "1"

    export = await analyst.http.get("/admin/care/reviews.csv")
    assert export.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert rows[0][0] == "feedback_id" and {r[0] for r in rows[1:]} == {"fb-1", "fb-2", "fb-3", "fb-5"}
    assert not [c for r in rows for c in r if c[:1] in ("=", "+", "-", "@")]
    everything = await analyst.http.get("/admin/care/reviews.csv", params={"all": "1", "from": day(-365)})
    assert len(list(csv.reader(io.StringIO(everything.text.lstrip("\ufeff"))))) == 7

    fake_wb.fail_next(30, status=503, path="/api/v1/feedbacks")  # WB down: the error is shown, nothing breaks
    await admin.post("/admin/care/reviews/sync", {"account_id": str(account_id)})
    failed = await wait_sync(admin.http, account_id)
    assert failed["last_error"]
    page = await analyst.http.get("/admin/care/reviews")
    assert page.status_code == 200 and 'data-field="last_error"' in page.text and k(page.text, "total") == "5"
    async with otklik.db.read() as session:
        kinds = list((await session.execute(select(EventLog.kind).where(EventLog.actor == "user:admin"))).scalars())
    assert kinds.count("review.sync_started") == 2


async def drafts(otklik: Otklik, fake_wb: FakeWB, account: int, classifier: ReviewClassifier) -> dict[str, int]:
    fake_wb.add_feedbacks(reviews()[:3])
    (wb_account,) = await wb_accounts(otklik.db, otklik.vault)
    async with client_for(wb_account, otklik.settings, limiters=otklik.ctx.wb_limiters) as client:
        await import_feedbacks(otklik.db, client, account, classifier=classifier)
    return {d.feedback_id: d.id for d in await create_drafts(otklik.db, account_id=account)}


async def reply(otklik: Otklik, reply_id: int) -> WBReviewReply:
    async with otklik.db.read() as session:
        row = await session.get(WBReviewReply, reply_id)
        assert row is not None
        return row


async def audit_kinds(otklik: Otklik) -> list[str]:
    async with otklik.db.read() as session:
        return list((await session.execute(select(EventLog.kind).where(EventLog.kind.like("review.%")))).scalars())


async def test_an_operator_edits_approves_and_posts_a_reply(  # type: ignore[no-untyped-def]
    otklik: Otklik, as_role, account_id: int, fake_wb: FakeWB, classifier: ReviewClassifier
) -> None:
    ids = await drafts(otklik, fake_wb, account_id, classifier)
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/care/replies")
    assert page.status_code == 200 and len(re.findall(r'data-reply="\d+" data-status="draft"', page.text)) == 3
    target = ids["fb-1"]
    original = (await reply(otklik, target)).text

    for hostile, reason in (
        ("Здравствуйте! Напишите нам в WhatsApp +7 999 123-45-67, всё решим", "rules"),
        ("Здравствуйте! Подробности на https://evil.example/shop, заходите", "rules"),
        ("ок", "at least 3 words"),
    ):
        refused = await operator.post(f"/admin/care/replies/{target}/edit", {"text": hostile, "back_status": "draft"})
        assert refused.status_code == 422 and 'data-testid="guardrail"' in refused.text and reason in refused.text
        assert hostile.replace('"', "&#34;").split(",")[0] in refused.text  # the typed text is kept in the form
        assert (await reply(otklik, target)).text == original  # nothing saved
    approve_bad = await operator.post(
        f"/admin/care/replies/{target}/approve", {"text": "Пишите на почту shop@mail.ru срочно"}
    )
    assert approve_bad.status_code == 422 and (await reply(otklik, target)).status == "draft"

    edited = "Здравствуйте! Жаль, что пришёл не тот размер. Оформите возврат в приложении Wildberries."
    saved = await operator.post(f"/admin/care/replies/{target}/edit", {"text": edited, "back_status": "draft"})
    assert saved.status_code == 303 and "notice=saved" in saved.headers["location"]
    assert ((await reply(otklik, target)).text, (await reply(otklik, target)).source) == (edited, "operator")
    approved = await operator.post(f"/admin/care/replies/{target}/approve", {"text": edited})
    assert approved.status_code == 303
    row = await reply(otklik, target)
    assert (row.status, row.approved_by) == ("approved", "operator")

    posted = await operator.post("/admin/care/replies/post", {"back_status": "approved"})
    assert posted.status_code == 303 and "ok=1" in posted.headers["location"]
    assert fake_wb.feedbacks["fb-1"].answer == edited  # reached the fake WB server
    assert fake_wb.calls_to("/api/v1/feedback")  # and was re-read to confirm
    row = await reply(otklik, target)
    assert (row.status, row.answer_state) == ("posted", "wbRu")
    page = await operator.http.get("/admin/care/replies?status=posted")
    assert f'data-reply="{target}" data-status="posted"' in page.text and 'data-testid="approve"' not in page.text
    again = await operator.post(f"/admin/care/replies/{target}/approve", {})
    assert again.status_code == 409  # a posted reply is not approved twice
    kinds = await audit_kinds(otklik)
    assert (
        kinds.count("review.reply_edited") == 1 and "review.reply_approved" in kinds and "review.reply_posted" in kinds
    )


async def test_a_failed_post_shows_the_error_and_retry_works(  # type: ignore[no-untyped-def]
    otklik: Otklik, as_role, account_id: int, fake_wb: FakeWB, classifier: ReviewClassifier
) -> None:
    ids = await drafts(otklik, fake_wb, account_id, classifier)
    owner = await as_role(Role.OWNER)
    target = ids["fb-2"]
    assert (await owner.post(f"/admin/care/replies/{target}/approve", {})).status_code == 303
    lost = fake_wb.feedbacks.pop("fb-2")  # WB answers 204 to an unknown id: only the re-read tells
    posted = await owner.post("/admin/care/replies/post", {})
    assert posted.status_code == 303 and "failed=1" in posted.headers["location"]
    page = await owner.http.get("/admin/care/replies?status=failed")
    assert 'data-testid="reply-error"' in page.text and "fb-2" in page.text and 'data-testid="retry"' in page.text
    assert re.search(r'data-count="failed">1<', page.text)
    fake_wb.feedbacks["fb-2"] = lost
    retried = await owner.post(f"/admin/care/replies/{target}/retry", {"back_status": "failed"})
    assert retried.status_code == 303 and "ok=1" in retried.headers["location"]
    row = await reply(otklik, target)
    assert (row.status, row.error, row.attempts) == ("posted", None, 2)
    assert fake_wb.feedbacks["fb-2"].answer == row.text
    assert (await owner.post(f"/admin/care/replies/{target}/retry", {})).status_code == 409
    kinds = await audit_kinds(otklik)
    assert {"review.reply_post_failed", "review.reply_retried", "review.reply_posted"} <= set(kinds)


async def test_roles_analysts_watch_operators_answer(  # type: ignore[no-untyped-def]
    otklik: Otklik, as_role, account_id: int, fake_wb: FakeWB, classifier: ReviewClassifier
) -> None:
    ids = await drafts(otklik, fake_wb, account_id, classifier)
    analyst, operator = await as_role(Role.ANALYST), await as_role(Role.OPERATOR)
    for path in ("/admin/care/incidents", "/admin/care/reviews", "/admin/care/replies"):
        assert (await analyst.http.get(path)).status_code == 200, path
    page = (await analyst.http.get("/admin/care/replies")).text
    assert 'data-testid="approve"' not in page and "<textarea" not in page and 'data-testid="post-approved"' not in page
    for action in ("edit", "approve", "retry"):
        refused = await analyst.post(
            f"/admin/care/replies/{ids['fb-1']}/{action}", {"text": "Здравствуйте, спасибо за отзыв"}
        )
        assert refused.status_code == 403, action
    assert (await analyst.post("/admin/care/replies/post", {})).status_code == 403
    assert (await reply(otklik, ids["fb-1"])).status == "draft"

    for path in ("/admin/care/incidents", "/admin/care/reviews", "/admin/care/incidents.csv", "/admin/settings"):
        assert (await operator.http.get(path, headers={"accept": "text/html"})).status_code == 403, path
    assert (await operator.post("/admin/care/reviews/sync", {"account_id": str(account_id)})).status_code == 403
    menu = (await operator.http.get("/admin")).text
    assert 'data-nav="/admin/care/replies"' in menu and 'data-nav="/admin/care/incidents"' not in menu
    ok = await operator.post(f"/admin/care/replies/{ids['fb-1']}/approve", {})
    assert ok.status_code == 303 and (await reply(otklik, ids["fb-1"])).status == "approved"
    assert date.fromisoformat(day(0)) == TODAY
