"""Pure parts: rendering an `OutboundMessage` within WhatsApp's limits, and parsing Meta's webhook payloads."""

from __future__ import annotations

from otklik.channels.whatsapp.parse import MEDIA_PREFIX, parse_webhook, template_info
from otklik.channels.whatsapp.render import render, split_text, template_body
from otklik.core.messages import Attachment, Button, EventKind, OutboundMessage, TemplateRef
from otklik.testing.fake_whatsapp import FakeWhatsAppServer

PNID = FakeWhatsAppServer().phone_number_id


def _buttons(*titles: str) -> tuple[Button, ...]:
    return tuple(Button(t, f"p{i}") for i, t in enumerate(titles))


def test_text_is_split_at_4096_on_a_line_break() -> None:
    text = ("строка " * 100 + "\n") * 12
    chunks = split_text(text)
    assert all(len(c) <= 4096 and c.endswith("строка") for c in chunks) and len(chunks) == 3  # whole lines
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    steps = render(OutboundMessage(text="x" * 9000))
    assert [len(s.body["text"]["body"]) for s in steps] == [4096, 4096, 808]


def test_three_short_unique_buttons_are_reply_buttons() -> None:
    [step] = render(OutboundMessage(text="¿Confirmás?", buttons=_buttons("✅ Confirmar", "✏️ Cambiar", "❌ Cancelar")))
    interactive = step.body["interactive"]
    assert interactive["type"] == "button" and interactive["body"]["text"] == "¿Confirmás?"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "p0", "title": "✅ Confirmar"}, {"id": "p1", "title": "✏️ Cambiar"}, {"id": "p2", "title": "❌ Cancelar"}]  # fmt: skip


def test_four_buttons_or_long_or_repeated_titles_become_a_list() -> None:
    for buttons in (
        _buttons("a", "b", "c", "d"),
        _buttons("a title longer than twenty", "b"),
        _buttons("same", "same"),
    ):
        [step] = render(OutboundMessage(text="elegí", buttons=buttons), language="es")
        assert step.body["interactive"]["type"] == "list"
        assert step.body["interactive"]["action"]["button"] == "Elegir"
    [step] = render(
        OutboundMessage(text="elegí", buttons=_buttons("Cámara IP domo 4MP 3.6mm con micrófono incluido y más"))
    )
    [row] = step.body["interactive"]["action"]["sections"][0]["rows"]
    assert len(row["title"]) == 24 and row["title"].endswith("…") and len(row["description"]) <= 72


def test_more_than_ten_choices_are_numbered_text() -> None:
    [step] = render(OutboundMessage(text="¿cuál?", buttons=_buttons(*[f"opción {n}" for n in range(12)])))
    assert step.body["type"] == "text"
    assert "1. opción 0" in step.body["text"]["body"] and "12. opción 11" in step.body["text"]["body"]


def test_a_long_text_with_buttons_goes_first_as_text() -> None:
    steps = render(OutboundMessage(text="palabra " * 300, buttons=_buttons("sí", "no")))
    assert [s.body["type"] for s in steps] == ["text", "text", "interactive"]
    assert len(steps[-1].body["interactive"]["body"]["text"]) <= 1024


def test_attachments_caption_and_reply_context() -> None:
    photo = Attachment(kind="photo", media_id="abc", content_type="image/jpeg")
    [step] = render(OutboundMessage(text="su foto", attachments=(photo,), reply_to="wamid.X"))
    assert step.body["type"] == "image" and step.body["image"]["caption"] == "su foto" and step.media_kind == "image"
    assert step.body["context"] == {"message_id": "wamid.X"}
    pdf = Attachment(kind="file", media_id="def", filename="PV-000001.pdf", content_type="application/pdf")
    steps = render(OutboundMessage(text="x" * 2000, attachments=(pdf,)))
    assert [s.body["type"] for s in steps] == ["text", "document"]
    assert steps[1].body["document"]["filename"] == "PV-000001.pdf"
    webp = Attachment(kind="photo", media_id="w", content_type="image/webp")  # not an image type WhatsApp takes
    assert render(OutboundMessage(attachments=(webp,)))[0].body["type"] == "document"
    assert render(OutboundMessage()) == []


def test_template_body_parameters_in_order() -> None:
    body = template_body(TemplateRef("pedido_listo", "es_AR", ("Ana", "A-1")))
    assert body["template"]["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-1"}]}]  # fmt: skip
    assert "components" not in template_body(TemplateRef("hola", "es"))["template"]


def test_parse_every_kind_in_timestamp_order_and_skip_other_numbers() -> None:
    fake = FakeWhatsAppServer()
    wa = "5491100000001"
    items = [
        ({"type": "location", "location": {"latitude": -34.6, "longitude": -58.4, "name": "Oficina", "address": "Florida 1"}}, 30),
        ({"type": "contacts", "contacts": [{"name": {"formatted_name": "Juan"}, "phones": [{"phone": "+54 9 11", "wa_id": "54911"}]}]}, 20),
        ({"type": "reaction", "reaction": {"message_id": "wamid.out1", "emoji": "👍"}}, 40),
        ({"type": "button", "button": {"text": "Sí", "payload": "yes-payload"}, "context": {"from": "1", "id": "wamid.t"}}, 10),
        ({"type": "document", "document": {"id": "555", "filename": "f.pdf", "mime_type": "application/pdf"}}, 50),
    ]  # fmt: skip
    messages = [fake.inbound(wa, content, ts=1_700_000_000 + ts)["entry"][0]["changes"][0]["value"]["messages"][0]
                for content, ts in items]  # fmt: skip
    payload = fake.envelope({"messages": messages, "statuses": [{"id": "wamid.o", "status": "read", "timestamp": "1700000005", "recipient_id": wa}]})  # fmt: skip
    other = FakeWhatsAppServer(phone_number_id="999").text_message(wa, "not ours")
    payload["entry"] += other["entry"]
    events = parse_webhook(payload, 1, PNID)
    assert [e.kind for e in events] == [EventKind.STATUS, EventKind.BUTTON, EventKind.CONTACT, EventKind.TEXT, EventKind.EDITED, EventKind.FILE]  # fmt: skip
    status, button, contact, location, reaction, document = events
    assert status.external_id == "st:wamid.o:read" and status.data["provider_ts"] == 1_700_000_005
    assert button.payload == "yes-payload" and button.data["reply_to"] == "wamid.t"
    assert contact.phone == "54911" and contact.text == "Juan"
    assert location.text == "Oficina — Florida 1" and location.data["location"]["latitude"] == -34.6
    assert reaction.data["reaction"] == "👍"
    assert document.attachments[0].url == f"{MEDIA_PREFIX}555" and document.attachments[0].filename == "f.pdf"


def test_parse_ignores_junk_without_raising() -> None:
    for payload in ({}, {"entry": "x"}, {"entry": [None, 1, {"changes": [None, {"field": "messages", "value": []}]}]},
                    {"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"from": "not-a-number", "id": "x"}, {"from": "5491100000001"}]}}]}]}):  # fmt: skip
        assert parse_webhook(payload, 1, PNID) == []


def test_template_info_counts_body_parameters() -> None:
    info = template_info({"name": "n", "language": "es", "status": "APPROVED", "category": "UTILITY", "id": 5,
                          "components": [{"type": "HEADER", "text": "{{1}}"}, {"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}}"}]})  # fmt: skip
    assert info is not None and info.params == 2 and info.approved and info.provider_id == "5"
    assert template_info({"name": "", "language": "es"}) is None
