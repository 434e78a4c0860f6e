"""Files of our media store sent by URL (Zenvia's `fileUrl`, Instagram's attachment URL): signed, expiring links
to the kind's webhook path; a changed id, type, expiry or signature, an expired link or an unknown hook → 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from otklik.adapters.db.models import Conversation
from otklik.clock import utcnow
from otklik.conversations.outbox import enqueue
from otklik.core.messages import Attachment, OutboundMessage
from otklik.platform.media_links import link_valid, media_link
from tests.channels.zenvia.conftest import USER, ZV

KEY = "k" * 40
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _parts(url: str) -> tuple[str, dict[str, str]]:
    split = urlsplit(url)
    return split.path, {k: v[0] for k, v in parse_qs(split.query).items()}


def test_a_link_is_valid_only_as_signed_and_until_it_expires() -> None:
    url = media_link("https://bot.example.com/", "/webhooks/zenvia/h/media", KEY, "a" * 64, "application/pdf", NOW, ttl=60)  # fmt: skip
    path, q = _parts(url)
    assert path == "/webhooks/zenvia/h/media/" + "a" * 64 and url.startswith("https://bot.example.com/webhooks/")
    assert link_valid(KEY, "a" * 64, q["t"], q["exp"], q["sig"], NOW)
    assert not link_valid(KEY, "b" * 64, q["t"], q["exp"], q["sig"], NOW)  # another file
    assert not link_valid(KEY, "a" * 64, "text/html", q["exp"], q["sig"], NOW)  # another type
    assert not link_valid(KEY, "a" * 64, q["t"], str(int(q["exp"]) + 3600), q["sig"], NOW)  # a longer life
    assert not link_valid("x" * 40, "a" * 64, q["t"], q["exp"], q["sig"], NOW)  # another install
    assert not link_valid(KEY, "a" * 64, q["t"], q["exp"], q["sig"], NOW + timedelta(seconds=61))  # expired
    for exp, sig in (("", q["sig"]), ("-1", q["sig"]), ("9" * 40, q["sig"]), (q["exp"], ""), (q["exp"], "0" * 64)):
        assert not link_valid(KEY, "a" * 64, q["t"], exp, sig, NOW)
    odd = media_link("https://b", "/p", KEY, "a" * 64, "not a type\n<script>", NOW)
    assert _parts(odd)[1]["t"] == "application/octet-stream"


async def test_a_pdf_from_the_media_store_goes_by_a_link_zenvia_can_fetch(zv: ZV) -> None:
    fake = zv.fake
    pdf = b"%PDF-1.4 pre-invoice"
    stored = await zv.app.ctx.media.save(pdf, "application/pdf", "proforma.pdf")
    await zv.post(fake.text_event(USER, "oi"))
    async with zv.app.db.write() as session:
        conversation = await session.scalar(select(Conversation.id))
        assert conversation is not None
        attachment = Attachment("file", media_id=stored.media_id, filename="proforma.pdf", content_type="application/pdf")  # fmt: skip
        await enqueue(session, conversation, zv.account, USER, OutboundMessage(text="Sua proforma", attachments=(attachment,)),
                      author="bot", now=utcnow())  # fmt: skip
    await zv.dispatch()
    file = next(c for c in fake.sent_to(USER) if c["type"] == "file")
    assert file["fileName"] == "proforma.pdf" and file["fileMimeType"] == "application/pdf"
    assert file["fileUrl"].startswith("https://bot.example.com/webhooks/zenvia/")
    path, q = _parts(file["fileUrl"])
    got = await zv.http.get(path, params=q)
    assert got.status_code == 200 and got.content == pdf and got.headers["content-type"] == "application/pdf"
    for changed in ({**q, "sig": "0" * 64}, {**q, "t": "text/html"}, {k: v for k, v in q.items() if k != "sig"}):
        assert (await zv.http.get(path, params=changed)).status_code == 404
    other = path.replace(f"/media/{stored.media_id}", "/media/" + "0" * 64)
    assert (await zv.http.get(other, params=q)).status_code == 404
    unknown_hook = "/webhooks/zenvia/unknown-hook/media/" + stored.media_id
    assert (await zv.http.get(unknown_hook, params=q)).status_code == 404
